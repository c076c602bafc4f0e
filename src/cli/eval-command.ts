import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { type BackendChoice, type DeviceChoice, selectBackend } from '../backend/select.js';
import { loadModelFile } from '../modelfile/contents.js';
import { defaultUnknownPolicy, describeUnknownRule, summarizeUnknown, topUnknown } from '../data/encoder.js';
import { openCorpus } from '../data/source.js';
import type { UnknownTokenPolicy } from '../data/vocabulary.js';
import { UsageError } from '../errors.js';
import { type EvalSplit, evaluateText } from '../inspect/eval.js';
import { openDataOut } from '../inspect/output.js';
import { requirePositiveInteger } from '../util/checks.js';
import { MODEL_FILE, INVALID_UTF8, UNKNOWN_IN_TEXT, BACKEND, DEVICE } from './shared-options.js';

/** Unknown tokens `--json` lists by name (the most frequent); `count` and `distinct` count them all. */
const EVAL_JSON_UNKNOWN_TOKENS = 20;

interface EvalArgs {
  model: string;
  text?: string;
  seq?: number;
  batch?: number;
  split: EvalSplit;
  valFrac?: number;
  unknown?: UnknownTokenPolicy;
  invalidUtf8: 'error' | 'replace';
  json: boolean;
  backend: BackendChoice;
  device: DeviceChoice;
  quiet: boolean;
}

function options(y: Argv): Argv<EvalArgs> {
  return y
    .positional('text', { type: 'string', describe: "UTF-8 text to score; - reads stdin [with --split val, for a run trained with --val FILE: that file]" })
    .option('model', MODEL_FILE)
    .option('seq', { alias: 't', type: 'number', describe: 'window length T [default: the training --seq]' })
    .option('batch', { alias: 'b', type: 'number', describe: 'parallel streams B, each continuous text [default: the training --batch]' })
    .option('split', {
      type: 'string',
      choices: ['all', 'val', 'train'] as const,
      default: 'all' as const,
      describe: 'score all of the text, or only the tail charnn train held out (val) or the rest (train); for a run trained with --val FILE, val scores FILE',
    })
    .option('val-frac', { type: 'number', describe: 'with --split: the held-out fraction [default: the training --val-frac]' })
    .option('unknown', UNKNOWN_IN_TEXT)
    .option('invalid-utf8', INVALID_UTF8)
    .option('json', { type: 'boolean', default: false, describe: 'print one JSON line instead of text' })
    .option('backend', BACKEND)
    .option('device', DEVICE)
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no notices on stderr' })
    .example('$0 eval -m shakespeare.charnn test.txt', 'bits per character on a held-out text')
    .example('$0 eval -m shakespeare.charnn input.txt --split val', "the trainer's validation loss, recomputed")
    .example('$0 eval -m ptb.charnn --split val', 'the same for a run trained with --val FILE (scores FILE)')
    .example('cat *.txt | $0 eval -m words.charnn - --json', 'one JSON line') as unknown as Argv<EvalArgs>;
}

async function run(a: ArgumentsCamelCase<EvalArgs>): Promise<void> {
  if (a.seq !== undefined) requirePositiveInteger('--seq', a.seq);
  if (a.batch !== undefined) requirePositiveInteger('--batch', a.batch);
  if (a.valFrac !== undefined && !(a.valFrac > 0 && a.valFrac < 1)) throw new UsageError(`--val-frac must be above 0 and below 1, got ${a.valFrac}`);
  let source = a.text !== undefined ? openCorpus(a.text) : null;
  const { backend, notice } = await selectBackend(a.backend, a.device);
  if (notice && !a.quiet) process.stderr.write(`charnn: ${notice}\n`);
  const loaded = await loadModelFile(a.model, backend);
  const trained = loaded.meta.training?.config;
  const seq = a.seq ?? trained?.seq ?? 50;
  const batch = a.batch ?? trained?.batch ?? 1;
  // A run trained with --val FILE held no tail out: its validation text is FILE, and all of
  // its corpus trained. An explicit --val-frac asks for a tail all the same.
  const valFile = a.valFrac === undefined ? trained?.valFile : undefined;
  const split = valFile !== undefined ? 'all' : a.split;
  if (valFile !== undefined && a.split === 'val') {
    if (a.text !== undefined && a.text !== valFile) {
      throw new UsageError(
        `${a.model} validated on ${valFile}, a file of its own, not on a part of ${a.text}`,
        `score ${valFile}: charnn eval -m ${a.model} --split val; or all of ${a.text} without --split`,
      );
    }
    source ??= openCorpus(valFile);
  }
  if (source === null) throw new UsageError('name the text to score', `charnn eval -m ${a.model} FILE (or - for stdin)`);
  const valFrac = a.valFrac ?? trained?.valFrac;
  if (split !== 'all' && !(valFrac !== undefined && valFrac > 0)) {
    throw new UsageError(`--split ${a.split} needs the fraction held out for validation, and ${a.model} records none`, 'pass --val-frac');
  }
  const vocab = loaded.vocabulary;
  const unknown = a.unknown ?? defaultUnknownPolicy(vocab);
  const r = await evaluateText(loaded.model, vocab, source, { seq, batch, split, valFrac: valFrac ?? 0, unknown, invalidUtf8: a.invalidUtf8 });
  const unit = vocab.level === 'char' ? 'character' : 'token';
  const out = openDataOut(undefined);
  if (a.json) {
    await out.write(
      JSON.stringify({
        model: a.model,
        text: source.description,
        level: vocab.level,
        tokens: r.tokens,
        tokensRead: r.tokensRead,
        split: a.split,
        region: r.region,
        scored: r.scored,
        nats: r.nats,
        bits: r.bits,
        bitsPer: unit,
        perplexity: r.perplexity,
        seq: r.seq,
        batch: r.batch,
        // Counts in full; the tokens themselves capped at the most frequent (see topUnknown).
        unknown: { rule: unknown, description: describeUnknownRule(unknown, vocab), count: r.unknown.count, ...topUnknown(r.unknown, EVAL_JSON_UNKNOWN_TOKENS) },
      }) + '\n',
    );
    return;
  }
  const group = (n: number) => n.toLocaleString('en-US');
  const noun = vocab.level === 'char' ? 'characters' : 'tokens';
  const scope =
    a.split === 'all'
      ? ''
      : valFile !== undefined
        ? a.split === 'val'
          ? ` (--split val: the run's validation file)`
          : ` (--split train: all of it, as the run validated on ${valFile})`
        : `, scoring the ${a.split === 'val' ? 'held-out tail' : 'training part'} [${group(r.region[0])}, ${group(r.region[1])}) (--split ${a.split}, --val-frac ${valFrac})`;
  const lines = [
    `text        ${source.description}: ${group(r.tokensRead)} ${noun}${r.tokens !== r.tokensRead ? ` (${group(r.tokens)} after dropping unknown ones)` : ''}${scope}`,
    `scored      ${group(r.scored)} predictions, ${r.batch} stream${r.batch === 1 ? '' : 's'} in windows of ${r.seq}, state carried throughout`,
    `unknown     ${r.unknown.count === 0 ? `none (rule: ${unknown})` : `${group(r.unknown.count)} ${noun} outside the vocabulary: ${summarizeUnknown(r.unknown)}`}`,
  ];
  if (r.unknown.count > 0) lines.push(`            rule ${unknown}: ${describeUnknownRule(unknown, vocab)}`);
  lines.push(
    `loss        ${r.nats.toFixed(6)} nats per ${unit} (mean cross-entropy)`,
    `bits        ${r.bits.toFixed(6)} bits per ${unit}`,
    `perplexity  ${r.perplexity.toFixed(4)}`,
  );
  await out.write(lines.join('\n') + '\n');
}

export const evalCommand: CommandModule<object, EvalArgs> = {
  command: 'eval [text]',
  describe: 'measure a model on a text: cross-entropy, bits per token, perplexity',
  builder: options,
  handler: run,
};
