import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { exportTorchModel, sidecarPathFor } from '../modelfile/torch-export.js';
import { guardOutputs } from '../util/output-guard.js';

interface ExportArgs {
  out: string;
  model: string;
  format: 'safetensors';
  quiet: boolean;
}

function options(y: Argv): Argv<ExportArgs> {
  return y
    .positional('out', { type: 'string', demandOption: true, describe: 'file to write, e.g. model.safetensors; the description goes beside it as model.json' })
    .option('model', { alias: 'm', type: 'string', demandOption: true, describe: 'model file (charnn train or charnn import wrote it)' })
    // One format today; the option is there so that others can be added without breaking scripts.
    .option('format', { type: 'string', choices: ['safetensors'] as const, default: 'safetensors' as const, describe: 'output format' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print nothing on stderr but errors' })
    .example('$0 export -m shakespeare.charnn shakespeare.safetensors', 'writes shakespeare.safetensors and shakespeare.json')
    .epilog(
      'Writes the parameters as float32 safetensors named as in a PyTorch state_dict (encoder / rnn / decoder, as ' +
        "PyTorch's word_language_model), loadable with python/charnn_torch.py's load(). The model description " +
        '(configuration, tokenizer, vocabulary) goes in the file\'s metadata under "charnn" and in a sidecar JSON file: ' +
        'OUT with .safetensors replaced by .json (or OUT.json). Optimizer and carried state are not exported.',
    ) as unknown as Argv<ExportArgs>;
}

async function run(a: ArgumentsCamelCase<ExportArgs>): Promise<void> {
  guardOutputs('export', [{ path: a.model, role: 'model' }], [
    { path: a.out, kind: 'safetensors' },
    { path: sidecarPathFor(a.out), kind: 'torch-description' },
  ]);
  const r = await exportTorchModel(a.model, a.out);
  if (!a.quiet) process.stderr.write(`wrote ${a.out} (${r.tensors} tensors, ${r.parameters.toLocaleString('en-US')} parameters) and ${r.sidecar}\n`);
}

export const exportCommand: CommandModule<object, ExportArgs> = {
  command: 'export <out>',
  describe: 'write a model as PyTorch-loadable safetensors (+ a JSON description) for python/charnn_torch.py',
  builder: options,
  handler: run,
};
