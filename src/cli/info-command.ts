import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { describeModelFile, lossCurveSvg, renderInfoJSON, renderInfoText } from '../inspect/info.js';
import { openDataOut } from '../inspect/output.js';
import { requireNonNegativeInteger } from '../util/checks.js';
import { guardOutputs } from '../util/output-guard.js';
import { MODEL_FILE } from './shared-options.js';

interface InfoArgs {
  model: string;
  json: boolean;
  svg?: string;
  vocab: number;
}

function options(y: Argv): Argv<InfoArgs> {
  return y
    .option('model', MODEL_FILE)
    .option('json', { type: 'boolean', default: false, describe: 'one JSON line (the whole vocabulary and loss history included)' })
    .option('svg', { type: 'string', describe: 'also draw the loss curves as an SVG file (- = stdout, instead of the text)' })
    .option('vocab', { type: 'number', default: 40, describe: 'vocabulary tokens to list in the text output' })
    .example('$0 info -m shakespeare.charnn', 'configuration, size, training state, loss sparklines')
    .example('$0 info -m shakespeare.charnn --svg loss.svg', 'and a loss plot to open in a browser') as unknown as Argv<InfoArgs>;
}

async function run(a: ArgumentsCamelCase<InfoArgs>): Promise<void> {
  requireNonNegativeInteger('--vocab', a.vocab);
  guardOutputs('info', [{ path: a.model, role: 'model' }], [{ path: a.svg, kind: 'svg' }]);
  const info = await describeModelFile(a.model);
  if (a.svg !== undefined) {
    const svg = openDataOut(a.svg);
    await svg.write(lossCurveSvg(info));
    await svg.close();
    if (a.svg === '-') return;
  }
  const out = openDataOut(undefined);
  await out.write(a.json ? renderInfoJSON(info) : renderInfoText(info, { vocabLimit: a.vocab }));
}

export const infoCommand: CommandModule<object, InfoArgs> = {
  command: 'info',
  describe: 'describe a model file: configuration, parameters, vocabulary, training state, loss history',
  builder: options,
  handler: run,
};
