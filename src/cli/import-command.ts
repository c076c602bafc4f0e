import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { importTorchModel, sidecarPathFor } from '../modelfile/torch-export.js';
import { guardOutputs } from '../util/output-guard.js';
import { describeConfig } from '../modelfile/torch-layout.js';

interface ImportArgs {
  file: string;
  out: string;
  config?: string;
  quiet: boolean;
}

function options(y: Argv): Argv<ImportArgs> {
  return y
    .positional('file', { type: 'string', demandOption: true, describe: 'safetensors file from charnn export or charnn_torch.save' })
    .option('out', { alias: 'o', type: 'string', demandOption: true, describe: 'charnn model file to write' })
    .option('config', { type: 'string', describe: 'the JSON description to use [default: the file\'s metadata, else FILE.json beside it]' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print nothing on stderr but errors' })
    .example('$0 import tuned.safetensors -o tuned.charnn', 'then charnn sample -m tuned.charnn')
    .epilog(
      'Checks every tensor\'s name and shape against the description and writes a model file without training ' +
        'state (charnn sample, eval, dump and info use it; charnn train cannot resume it). Nothing is written ' +
        'unless the whole file checks.',
    ) as unknown as Argv<ImportArgs>;
}

async function run(a: ArgumentsCamelCase<ImportArgs>): Promise<void> {
  guardOutputs(
    'import',
    [
      { path: a.file, role: 'safetensors file' },
      { path: a.config ?? sidecarPathFor(a.file), role: 'description' },
    ],
    [{ path: a.out, kind: 'checkpoint' }],
  );
  const r = await importTorchModel(a.file, a.out, a.config);
  if (!a.quiet) {
    process.stderr.write(`wrote ${a.out}: ${describeConfig(r.config)}, ${r.parameters.toLocaleString('en-US')} parameters (description from ${r.descriptionFrom})\n`);
  }
}

export const importCommand: CommandModule<object, ImportArgs> = {
  command: 'import <file>',
  describe: 'turn a safetensors file from charnn export or PyTorch (python/charnn_torch.py) into a model file',
  builder: options,
  handler: run,
};
