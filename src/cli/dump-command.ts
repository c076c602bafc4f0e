import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { type BackendChoice, type DeviceChoice, selectBackend } from '../backend/select.js';
import { loadModelFile } from '../modelfile/contents.js';
import { defaultUnknownPolicy, describeUnknownRule, summarizeUnknown } from '../data/encoder.js';
import { openCorpus } from '../data/source.js';
import type { UnknownTokenPolicy } from '../data/vocabulary.js';
import { UsageError } from '../errors.js';
import { CELLS, cellSpec } from '../model/cells/index.js';
import { dumpOutputs, requireDirectory, runDump } from '../inspect/dump.js';
import { DUMP_FORMATS, DUMP_FORMAT_TABLE, type DumpFormat, STATE_ONLY_GROUPS, dumpFormat } from '../inspect/dump-formats.js';
import { guardOutputs } from '../util/output-guard.js';
import { STATE_GROUPS, type StateGroup, quantitiesFor } from '../inspect/states.js';
import { requireNonNegativeInteger, requirePositiveInteger } from '../util/checks.js';
import { MODEL_FILE, INVALID_UTF8, UNKNOWN_IN_TEXT, BACKEND, DEVICE } from './shared-options.js';

interface DumpArgs {
  model: string;
  text: string;
  format: DumpFormat;
  out?: string;
  what?: string;
  layers?: string;
  seq: number;
  maxTokens: number;
  pattern?: string;
  unknown?: UnknownTokenPolicy;
  invalidUtf8: 'error' | 'replace';
  backend: BackendChoice;
  device: DeviceChoice;
  quiet: boolean;
}

function options(y: Argv): Argv<DumpArgs> {
  return y
    .positional('text', { type: 'string', demandOption: true, describe: 'UTF-8 text to run the model over; - reads stdin' })
    .option('model', MODEL_FILE)
    .option('format', { alias: 'f', type: 'string', choices: DUMP_FORMATS, default: DUMP_FORMATS[0], describe: DUMP_FORMAT_TABLE.map((f) => `${f.name} (${f.describe})`).join(', ') })
    .option('out', { alias: 'o', type: 'string', describe: `${formatsWhere((f) => !f.directory)}: a file [default: stdout]; ${formatsWhere((f) => f.directory)}: a directory (required)` })
    .option('what', { type: 'string', describe: `comma-separated, of h (hidden state), c (cell state), gates and what else a cell records; ${CELLS.map((c) => `${c.name}: ${[...new Set(c.quantities.map((q) => q.group))].join(' ')}`).join(', ')} [default: all the model has; ${formatsWhere((f) => f.defaultGroups !== null)}: ${STATE_ONLY_GROUPS.join(',')}]` })
    .option('layers', { type: 'string', describe: 'comma-separated layer numbers, from 0 [default: all]' })
    .option('seq', { type: 'number', default: 256, describe: 'tokens per forward window, at most 4096 (the values do not depend on it)' })
    .option('max-tokens', { type: 'number', default: 0, describe: 'stop after N tokens (0 = the whole text)' })
    .option('pattern', { type: 'string', describe: 'html: rank cells by correlation with this regex (or @column) when the page opens' })
    .option('unknown', UNKNOWN_IN_TEXT)
    .option('invalid-utf8', INVALID_UTF8)
    .option('backend', BACKEND)
    .option('device', DEVICE)
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no summary or notices on stderr' })
    .example('$0 dump -m linux.charnn kernel.c --format html --out cells.html --pattern \'\\([^()]*\\)\'', 'a page to find the cell that tracks parentheses')
    .example('$0 dump -m model.charnn text.txt --format npy --out states/', 'NumPy arrays, one per layer and quantity')
    .example('$0 dump -m model.charnn text.txt --format lstmvis --out lstmvis/project', 'files for LSTMVis')
    .example('$0 dump -m model.charnn text.txt --what h --max-tokens 100', 'JSON lines on stdout') as unknown as Argv<DumpArgs>;
}

/** "html and lstmvis": the formats that `test` holds for, for the help. */
function formatsWhere(test: (f: (typeof DUMP_FORMAT_TABLE)[number]) => boolean): string {
  const names = DUMP_FORMAT_TABLE.filter(test).map((f) => f.name);
  return names.length > 1 ? `${names.slice(0, -1).join(', ')} and ${names[names.length - 1]}` : names.join('');
}

function parseGroups(what: string | undefined, format: DumpFormat): StateGroup[] {
  const f = dumpFormat(format);
  if (what === undefined) return [...(f.defaultGroups ?? STATE_GROUPS)];
  const groups = what.split(',').map((s) => s.trim()).filter(Boolean);
  const known = STATE_GROUPS.join(', ');
  for (const g of groups) {
    if (!STATE_GROUPS.includes(g)) throw new UsageError(`--what: unknown quantity '${g}'`, `use ${known}, comma-separated`);
  }
  if (groups.length === 0) throw new UsageError('--what names nothing', `use ${known}, comma-separated`);
  const others = groups.filter((g) => !STATE_ONLY_GROUPS.includes(g));
  if (f.statesOnly && others.length > 0) {
    throw new UsageError(`${f.title} shows hidden and cell states, not ${others.join(' or ')}`, `use --what ${STATE_ONLY_GROUPS.join(',')} with --format ${format}`);
  }
  return groups;
}

function parseLayers(spec: string | undefined, count: number): number[] {
  if (spec === undefined) return Array.from({ length: count }, (_, l) => l);
  const layers = spec.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  for (const l of layers) {
    if (!Number.isInteger(l) || l < 0 || l >= count) throw new UsageError(`--layers: no layer ${l}`, `the model has layers 0 to ${count - 1}`);
  }
  if (layers.length === 0) throw new UsageError('--layers names no layer');
  return [...new Set(layers)].sort((x, y) => x - y);
}

async function run(a: ArgumentsCamelCase<DumpArgs>): Promise<void> {
  requirePositiveInteger('--seq', a.seq);
  requireNonNegativeInteger('--max-tokens', a.maxTokens);
  const format = dumpFormat(a.format);
  if (a.pattern !== undefined && !format.pattern) throw new UsageError(`--pattern applies to --format ${formatsWhere((f) => f.pattern)} only`);
  if (format.directory) requireDirectory(a.format, a.out);
  const groups = parseGroups(a.what, a.format);
  const source = openCorpus(a.text);
  const { backend, notice } = await selectBackend(a.backend, a.device);
  if (notice && !a.quiet) process.stderr.write(`charnn: ${notice}\n`);
  const loaded = await loadModelFile(a.model, backend);
  const config = loaded.model.config;
  const layers = parseLayers(a.layers, config.layers);
  const cell = cellSpec(config.cell);
  const quantities = quantitiesFor(cell, layers, groups);
  // Every group --what names must be the cell's (a GRU's --what gates,m is not its gates alone);
  // a format's default groups (html's h,c) keep those the cell has.
  const has = [...new Set(cell.quantities.map((q) => q.group))];
  const missing = a.what === undefined ? (quantities.length === 0 ? groups : []) : groups.filter((g) => !has.includes(g));
  if (missing.length > 0) {
    throw new UsageError(`a ${cell.title} has no ${missing.join(' or ')} to dump`, `it has ${has.join(', ')}`);
  }
  // The directory itself must not be an input either (--out text.txt with --format npy).
  guardOutputs('dump', [{ path: a.model, role: 'model' }, { path: a.text, role: 'text' }], dumpOutputs(a.format, a.out, quantities));
  const vocab = loaded.vocabulary;
  const unknown = a.unknown ?? defaultUnknownPolicy(vocab);
  const r = await runDump(
    { model: loaded.model, vocab, meta: loaded.meta, quantities, layers, modelPath: a.model, sourceName: source.description },
    source,
    { format: a.format, out: a.out, seq: a.seq, maxTokens: a.maxTokens, unknown, invalidUtf8: a.invalidUtf8, pattern: a.pattern },
  );
  if (a.quiet) return;
  const noun = vocab.level === 'char' ? 'characters' : 'tokens';
  const names = [...new Set(quantities.map((q) => q.name))].join(', ');
  const where = r.files.length === 1 ? r.files[0] : `${r.files.length} files in ${a.out}`;
  let msg = `dumped ${r.tokens.toLocaleString('en-US')} tokens × ${layers.length} layer${layers.length === 1 ? '' : 's'} (${names}) to ${where}${r.truncated ? ` (stopped at --max-tokens ${a.maxTokens})` : ''}\n`;
  if (r.tally.count > 0) msg += `${r.tally.count.toLocaleString('en-US')} ${noun} outside the vocabulary (${summarizeUnknown(r.tally)}); rule ${unknown}: ${describeUnknownRule(unknown, vocab)}\n`;
  process.stderr.write(msg);
}

export const dumpCommand: CommandModule<object, DumpArgs> = {
  command: 'dump <text>',
  describe: "record every token's hidden states (and cell states and gates): JSON lines, NumPy, an HTML viewer, LSTMVis",
  builder: options,
  handler: run,
};
