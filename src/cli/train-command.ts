import { existsSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { basename, dirname, extname, join } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import type { Backend } from '../backend/backend.js';
import { type BackendChoice, type DeviceChoice, type Precision, applyPrecision, selectBackend } from '../backend/select.js';
import { type TrainingFile, readTrainingFile } from '../modelfile/contents.js';
import { describeFsError, errorCode } from '../util/fs-errors.js';
import { tempPathTagged } from '../util/temp-file.js';
import { LINE_ENDINGS, type LineEndings, type TokenizerConfig, canonicalTokenizerConfig } from '../data/config.js';
import { statCorpusFile } from '../data/source.js';
import { defaultCacheDir } from '../data/token-cache.js';
import { CharnnError, UsageError } from '../errors.js';
import { CELLS, CELL_NAMES, DEFAULT_CELL, defaultLayers } from '../model/cells/index.js';
import { type CellType, type ModelConfig, validateModelConfig } from '../model/config.js';
import { type TrainConfig, validateTrainConfig, valSourcesConflict } from '../train/config.js';
import { OPTIMIZERS, type OptimizerName, defaultOptimizerConfig } from '../train/optimizer.js';
import { CONSTANT_SCHEDULE, type LrSchedule, SCHEDULE_KINDS, type ScheduleKind } from '../train/schedule.js';
import { NEW_TOKEN_POLICIES, type NewTokenPolicy, TrainingSession, bestPathFor, checkModelSize } from '../train/session.js';
import type { Divergence } from '../train/trainer.js';
import { describeValidation } from '../train/session.js';
import { requirePositiveInteger } from '../util/checks.js';
import { guardOutputs } from '../util/output-guard.js';
import { freshSeed } from '../util/random.js';
import { parseDuration } from './durations.js';
import { EXIT } from './exit-codes.js';
import { type StopSignals, signalExitCode, stopSignals } from './stop-signals.js';
import { withSpinner } from './spinner.js';
import { TrainProgress } from './train-progress.js';
import { BACKEND, DEVICE, PRECISION } from './shared-options.js';

/**
 * Parsed options. Options that define a run have no yargs default (DEFAULTS supplies them), so
 * that with --resume an option the user typed can be told from one left out.
 */
interface TrainArgs {
  corpus?: string;
  resume?: string;
  newTokens?: NewTokenPolicy;
  out?: string;
  level?: 'char' | 'word';
  model?: CellType;
  hidden?: number;
  layers?: number;
  embed?: number;
  tie?: boolean;
  dropout?: number;
  batch?: number;
  seq?: number;
  optim?: OptimizerName;
  lr?: number;
  lrDecay?: number;
  lrDecayEvery?: number;
  plateauDecay?: number;
  plateauPatience?: number;
  lrSchedule?: ScheduleKind;
  warmup?: number;
  lrFloor?: number;
  clip?: number;
  clipNorm?: number;
  seed?: number;
  iters?: number;
  epochs?: number;
  time?: string;
  evalEvery?: number;
  sampleLength?: number;
  saveEvery?: number;
  valFrac?: number;
  val?: string;
  vocabSize?: number;
  minCount?: number;
  wordSplit?: 'punct' | 'space';
  lineEndings?: LineEndings;
  invalidUtf8?: 'error' | 'replace';
  cacheDir?: string;
  backend: BackendChoice;
  device: DeviceChoice;
  precision: Precision;
  quiet: boolean;
  logJson: boolean;
  printEvery: number;
}

const DEFAULTS = {
  level: 'char',
  model: DEFAULT_CELL,
  hidden: 128,
  layers: 2,
  // 0.1: without it the 2x128 LSTM overfits tinyshakespeare within a 5-minute run (validation
  // 1.625 after 10,668 iterations against 1.531 with it at 10,000; README, Model quality).
  dropout: 0.1,
  batch: 50,
  seq: 50,
  optim: 'adagrad',
  lrDecay: 1,
  lrDecayEvery: 0,
  plateauDecay: 1,
  plateauPatience: 0,
  lrSchedule: 'cosine',
  warmup: 100,
  lrFloor: 0.1,
  clip: 0,
  /** The default --clip-norm per step of the window: PyTorch's usual clip of 5 on the per-token mean loss. */
  clipNormPerStep: 5,
  iters: 0,
  evalEvery: 500,
  sampleLength: 200,
  saveEvery: 1000,
  valFrac: 0.05,
  wordSplit: 'punct',
  // New character-level runs read \r\n and a lone \r as \n (a model that learned \r emits
  // it, and a lone \r overwrites the line on a terminal); word level always did.
  lineEndings: 'lf',
  invalidUtf8: 'error',
} as const;

function options(y: Argv): Argv<TrainArgs> {
  const d = (text: string, value: unknown) => `${text} [default: ${value}]`;
  return y
    .positional('corpus', { type: 'string', describe: 'UTF-8 text to train on; - reads stdin [with --resume: the run\'s own corpus]' })
    .option('resume', { type: 'string', describe: 'continue the run a checkpoint holds, exactly where it stopped' })
    .option('new-tokens', { type: 'string', choices: NEW_TOKEN_POLICIES, describe: d('with --resume: corpus tokens the model lacks: stop, read as <unk> (word level), or grow the vocabulary', 'error') })
    .option('out', { alias: 'o', type: 'string', describe: 'checkpoint path [default: <corpus name>.charnn; with --resume: the resumed file]' })
    .option('level', { type: 'string', choices: ['char', 'word'] as const, describe: d('tokens: Unicode code points or words', DEFAULTS.level) })
    .option('model', { alias: 'm', type: 'string', choices: CELL_NAMES, describe: d(`recurrent cell: ${CELLS.map((c) => `${c.name} (${c.summary})`).join(', ')}`, DEFAULTS.model) })
    .option('hidden', { type: 'number', describe: d('hidden units per layer', DEFAULTS.hidden) })
    .option('layers', { type: 'number', describe: `stacked recurrent layers [default: ${DEFAULTS.layers}${CELLS.filter((c) => c.defaultLayers).map((c) => `; ${c.defaultLayers} for --model ${c.name}`).join('')}]` })
    .option('embed', { type: 'number', describe: 'learned embedding size; 0 = one-hot input [default: 0 for char, --hidden for word]' })
    .option('tie', { type: 'boolean', describe: 'tie the output layer to the embedding table (needs --embed = --hidden) [default: false]' })
    .option('dropout', { type: 'number', describe: d('dropout between layers and before the output', DEFAULTS.dropout) })
    .option('batch', { alias: 'b', type: 'number', describe: d('parallel streams per step (1 = min-char-rnn)', DEFAULTS.batch) })
    .option('seq', { alias: 't', type: 'number', describe: d('truncated-BPTT window length', DEFAULTS.seq) })
    .option('optim', { type: 'string', choices: OPTIMIZERS, describe: d('optimizer', DEFAULTS.optim) })
    .option('lr', { type: 'number', describe: 'learning rate [default: 0.3 adagrad, 0.002 rmsprop/adam, 1 sgd]' })
    .option('lr-decay', { type: 'number', describe: d('multiply the learning rate by this ...', DEFAULTS.lrDecay) })
    .option('lr-decay-every', { type: 'number', describe: d('... every N iterations (0 = every epoch)', DEFAULTS.lrDecayEvery) })
    .option('plateau-decay', { type: 'number', describe: d('multiply the learning rate by this when validation stops improving (1 = off)', DEFAULTS.plateauDecay) })
    .option('plateau-patience', { type: 'number', describe: d('... after this many validations in a row without a new best', DEFAULTS.plateauPatience) })
    .option('lr-schedule', { type: 'string', choices: SCHEDULE_KINDS, describe: d('after the warm-up, decay the learning rate to --lr-floor × --lr by the run\'s end (--iters, --epochs or --time), or keep it', DEFAULTS.lrSchedule) })
    .option('warmup', { type: 'number', describe: d('raise the learning rate linearly over the first N iterations', DEFAULTS.warmup) })
    .option('lr-floor', { type: 'number', describe: d('the fraction of --lr the schedule ends at', DEFAULTS.lrFloor) })
    .option('clip', { type: 'number', describe: d('clip each gradient element to [-clip, clip] (0 = off)', DEFAULTS.clip) })
    .option('clip-norm', { type: 'number', describe: `rescale gradients to this global L2 norm at most (0 = off) [default: ${DEFAULTS.clipNormPerStep} × --seq, PyTorch's usual ${DEFAULTS.clipNormPerStep} on the per-token mean loss]` })
    .option('seed', { type: 'number', describe: 'random seed; the same seed and options repeat a run exactly [default: random, printed]' })
    .option('iters', { type: 'number', describe: 'stop after N iterations (counted from the start of the run, across resumes; 0 = no limit)' })
    .option('epochs', { type: 'number', describe: 'stop after N passes over the training text (0 = no limit) [default: 10 unless --iters/--time]' })
    .option('time', { type: 'string', describe: 'stop after this long in this invocation, e.g. 90s, 20m, 1.5h' })
    .option('eval-every', { type: 'number', describe: d('validate and print a sample every N iterations (0 = at the end only)', DEFAULTS.evalEvery) })
    .option('sample-length', { type: 'number', describe: d('tokens in the sample printed at validation (0 = none)', DEFAULTS.sampleLength) })
    .option('save-every', { type: 'number', describe: d('write a checkpoint every N iterations (0 = at the end only)', DEFAULTS.saveEvery) })
    .option('val-frac', { type: 'number', describe: d('fraction at the end of the text held out for validation', DEFAULTS.valFrac) })
    .option('val', { type: 'string', describe: 'validate on this text file instead (read with the training vocabulary, as charnn eval reads text); the whole corpus trains' })
    .option('vocab-size', { type: 'number', describe: 'word level: keep the N most frequent tokens (<unk> for the rest)' })
    .option('min-count', { type: 'number', describe: 'word level: tokens seen fewer times become <unk>' })
    .option('word-split', { type: 'string', choices: ['punct', 'space'] as const, describe: d('word level: split punctuation off words, or whitespace only', DEFAULTS.wordSplit) })
    .option('line-endings', { type: 'string', choices: LINE_ENDINGS, describe: d('char level: read \\r\\n and a lone \\r as \\n (lf), or keep \\r as a character (keep)', DEFAULTS.lineEndings) })
    .option('invalid-utf8', { type: 'string', choices: ['error', 'replace'] as const, describe: d('on bytes that are not UTF-8: stop, or decode as U+FFFD', DEFAULTS.invalidUtf8) })
    .option('cache-dir', { type: 'string', describe: 'where tokenized corpora are cached [default: $XDG_CACHE_HOME/charnn]' })
    .option('backend', BACKEND)
    .option('device', DEVICE)
    .option('precision', PRECISION)
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print nothing but errors' })
    .option('log-json', { type: 'boolean', default: false, describe: 'progress as JSON lines on stderr' })
    .option('print-every', { type: 'number', default: 100, describe: 'without a terminal: a progress line every N iterations' })
    .example('$0 train corpora/arithmetic.txt --iters 2000', 'train the default 2x128 LSTM for 2000 iterations')
    .example('$0 train input.txt --model rnn --hidden 100 --seq 25 --batch 1 --lr 0.1 --clip 5 --clip-norm 0 --warmup 0 --lr-schedule constant --dropout 0', "min-char-rnn's setup, exactly")
    .example('cat *.txt | $0 train - --level word --out words.charnn --time 30m', 'word level, from stdin, for 30 minutes')
    .example('$0 train --resume input.charnn --iters 20000', 'continue a stopped run up to iteration 20000') as unknown as Argv<TrainArgs>;
}

function defaultOut(corpus: string): string {
  if (corpus === '-') return 'model.charnn';
  return `${basename(corpus, extname(corpus))}.charnn`;
}

/** Stop conditions from the options; `null` when none was given. */
function stopConditions(a: TrainArgs): Pick<TrainConfig, 'iters' | 'epochs' | 'timeSeconds'> | null {
  if (a.iters === undefined && a.epochs === undefined && a.time === undefined) return null;
  const iters = a.iters ?? 0;
  const timeSeconds = a.time !== undefined ? parseDuration(a.time) : 0;
  const epochs = a.epochs ?? (iters > 0 || timeSeconds > 0 ? 0 : 10);
  // 0 means "no limit" for each; with all three at 0 the run would never end (nor write its
  // end-of-run checkpoint). The library allows it (a caller may drive the trainer step by step).
  if (iters === 0 && epochs === 0 && timeSeconds === 0) {
    throw new UsageError('--iters 0 and --epochs 0 without --time leave the run no end', 'give --iters N, --epochs N or --time DURATION');
  }
  return { iters, epochs, timeSeconds };
}

/** Map parsed options to library configs for a new run. */
function freshConfigs(a: TrainArgs) {
  const level = a.level ?? DEFAULTS.level;
  const tokenizer: TokenizerConfig = {
    level,
    invalidUtf8: a.invalidUtf8 ?? DEFAULTS.invalidUtf8,
    wordSplit: a.wordSplit ?? DEFAULTS.wordSplit,
    vocabSize: a.vocabSize,
    minCount: a.minCount,
    lineEndings: a.lineEndings ?? DEFAULTS.lineEndings,
  };
  const optimizer = defaultOptimizerConfig(a.optim ?? DEFAULTS.optim);
  if (a.lr !== undefined) optimizer.lr = a.lr;
  const seq = a.seq ?? DEFAULTS.seq;
  const train: TrainConfig = {
    batch: a.batch ?? DEFAULTS.batch,
    seq,
    optimizer,
    clip: a.clip ?? DEFAULTS.clip,
    // The objective sums the loss over the window's T steps, so a norm clip of 5 per token is 5T.
    clipNorm: a.clipNorm ?? DEFAULTS.clipNormPerStep * seq,
    lrDecay: a.lrDecay ?? DEFAULTS.lrDecay,
    lrDecayEvery: a.lrDecayEvery ?? DEFAULTS.lrDecayEvery,
    plateauDecay: a.plateauDecay ?? DEFAULTS.plateauDecay,
    plateauPatience: a.plateauPatience ?? DEFAULTS.plateauPatience,
    schedule: scheduleFrom(a, { kind: DEFAULTS.lrSchedule, warmup: DEFAULTS.warmup, floor: DEFAULTS.lrFloor }),
    seed: a.seed ?? freshSeed(),
    ...(stopConditions(a) ?? { iters: 0, epochs: 10, timeSeconds: 0 }),
    evalEvery: a.evalEvery ?? DEFAULTS.evalEvery,
    sampleLength: a.sampleLength ?? DEFAULTS.sampleLength,
    saveEvery: a.saveEvery ?? DEFAULTS.saveEvery,
    valFrac: a.val !== undefined ? 0 : (a.valFrac ?? DEFAULTS.valFrac),
    ...(a.val !== undefined ? { valFile: a.val } : {}),
  };
  const hidden = a.hidden ?? DEFAULTS.hidden;
  const cell = a.model ?? DEFAULTS.model;
  const model = {
    cell,
    hidden,
    // A cell may have a default of its own (the vanilla RNN's one layer: see cells/rnn.ts).
    layers: a.layers ?? defaultLayers(cell, DEFAULTS.layers),
    embed: a.embed ?? (level === 'word' ? hidden : 0),
    dropout: a.dropout ?? DEFAULTS.dropout,
    tie: a.tie ?? false,
  };
  return { tokenizer, train, model };
}

/**
 * The options a resumed run must share with the run it continues, each with the stored value:
 * an option given with --resume that differs from it is an error naming it. (Stop conditions,
 * frequencies, the learning rate, its schedule and clipping may change.)
 */
function conflictsWithRun(a: TrainArgs, m: ModelConfig, tok: TokenizerConfig, t: TrainConfig): string[] {
  const fixed: Array<[string, unknown, unknown]> = [
    ['--level', a.level, tok.level],
    ['--word-split', a.wordSplit, tok.level === 'word' ? tok.wordSplit : a.wordSplit],
    ['--vocab-size', a.vocabSize, tok.vocabSize],
    ['--min-count', a.minCount, tok.minCount ?? 1],
    // A run from before the setting existed kept \r: absent is `keep`.
    ['--line-endings', a.lineEndings, tok.level === 'char' ? (tok.lineEndings ?? 'keep') : a.lineEndings],
    ['--model', a.model, m.cell],
    ['--hidden', a.hidden, m.hidden],
    ['--layers', a.layers, m.layers],
    ['--embed', a.embed, m.embed],
    ['--tie', a.tie, m.tie ?? false],
    ['--dropout', a.dropout, m.dropout],
    ['--batch', a.batch, t.batch],
    ['--seq', a.seq, t.seq],
    ['--val-frac', a.valFrac, t.valFrac],
    // A run that validates on a file may name it again at another path; one that validates on
    // its corpus tail cannot switch.
    ['--val', t.valFile === undefined ? a.val : undefined, t.valFile],
    ['--optim', a.optim, t.optimizer.name],
    ['--seed', a.seed, t.seed],
  ];
  return fixed
    .filter(([, given, stored]) => given !== undefined && given !== stored)
    .map(([name, given, stored]) => `${name} ${given} (the run has ${stored ?? 'none'})`);
}

/** The learning-rate schedule: `base` with what the options change. */
function scheduleFrom(a: TrainArgs, base: LrSchedule): LrSchedule {
  return { kind: a.lrSchedule ?? base.kind, warmup: a.warmup ?? base.warmup, floor: a.lrFloor ?? base.floor };
}

/** The configs of a resumed run: the stored ones with the changes the options may make. */
function resumedConfigs(a: TrainArgs, from: TrainingFile) {
  const stored = from.meta.training;
  const storedTokenizer = canonicalTokenizerConfig(from.meta.tokenizer);
  const conflicts = conflictsWithRun(a, from.meta.model, storedTokenizer, stored.config);
  if (conflicts.length > 0) {
    throw new UsageError(
      `${conflicts.join(', ')}: --resume continues ${from.path} with the settings it was started with`,
      'leave these options out, or start a new run without --resume',
    );
  }
  const t = stored.config;
  const train: TrainConfig = {
    ...t,
    optimizer: { ...t.optimizer, ...(a.lr !== undefined ? { lr: a.lr } : {}) },
    clip: a.clip ?? t.clip,
    clipNorm: a.clipNorm ?? t.clipNorm,
    lrDecay: a.lrDecay ?? t.lrDecay,
    lrDecayEvery: a.lrDecayEvery ?? t.lrDecayEvery,
    plateauDecay: a.plateauDecay ?? t.plateauDecay ?? DEFAULTS.plateauDecay,
    plateauPatience: a.plateauPatience ?? t.plateauPatience ?? DEFAULTS.plateauPatience,
    schedule: scheduleFrom(a, t.schedule ?? CONSTANT_SCHEDULE),
    ...(stopConditions(a) ?? { iters: t.iters, epochs: t.epochs, timeSeconds: t.timeSeconds }),
    evalEvery: a.evalEvery ?? t.evalEvery,
    sampleLength: a.sampleLength ?? t.sampleLength,
    saveEvery: a.saveEvery ?? t.saveEvery,
    ...(a.val !== undefined ? { valFile: a.val } : {}),
  };
  const tokenizer: TokenizerConfig = { ...storedTokenizer, invalidUtf8: a.invalidUtf8 ?? storedTokenizer.invalidUtf8 };
  return { train, tokenizer };
}

/** The corpus of a resumed run: as given, or the one stored in the checkpoint. */
function resumedCorpus(a: TrainArgs, from: TrainingFile): string {
  if (a.corpus !== undefined) return a.corpus;
  const source = from.meta.training.corpus.source;
  if (source === '-') {
    throw new UsageError(`${from.path} was trained on stdin, which cannot be read again by itself`, `pipe the same text in and pass -: charnn train - --resume ${from.path}`);
  }
  try {
    statSync(source);
  } catch {
    throw new CharnnError(`the run's corpus ${source} (named in ${from.path}) was not found`, `pass the corpus: charnn train CORPUS --resume ${from.path}`);
  }
  return source;
}

/**
 * Fail before any work when the validation file cannot be used: stdin (a resumed run must read
 * it again), a directory, or a missing file (`from` names the checkpoint that named it).
 */
function checkValFile(path: string, from: TrainingFile | null): void {
  if (path === '-') throw new UsageError('--val needs a file, not stdin (a resumed run reads it again)', 'save the validation text to a file and pass its path');
  let directory: boolean;
  try {
    directory = statSync(path).isDirectory();
  } catch (err) {
    const what = from ? `the run's validation file ${path} (named in ${from.path})` : `validation file ${path}`;
    throw new CharnnError(
      `${what} cannot be read: ${describeFsError(err)}`,
      from ? `pass the file: charnn train --resume ${from.path} --val FILE` : 'check the --val path',
    );
  }
  if (directory) throw new UsageError(`--val ${path} is a directory, not a text file`, 'pass one text file');
}

/**
 * Fail before any work when checkpoints could not be written to `out`: a directory, a missing
 * or read-only directory, one of the run's inputs (the corpus, the --val text; the resumed checkpoint, except
 * as `out` itself, which --resume writes back to by design) or an existing file that is not a
 * charnn checkpoint (see guardOutputs). A probe file is created and removed beside it, the way
 * saves write.
 */
function checkOutput(out: string, corpus: string, resume: string | undefined, valFile: string | undefined): void {
  for (const path of [out, bestPathFor(out)]) {
    try {
      if (statSync(path).isDirectory()) {
        throw new CharnnError(`cannot write checkpoint ${path}: it is a directory`, `pass a file path, e.g. --out ${join(out, 'model.charnn')}`);
      }
    } catch (err) {
      if (err instanceof CharnnError) throw err;
      if (errorCode(err) !== 'ENOENT') throw new CharnnError(`cannot write checkpoint ${path}: ${describeFsError(err)}`, 'choose another --out');
    }
  }
  guardOutputs(
    'train',
    [
      { path: corpus, role: 'corpus' },
      { path: resume, role: 'checkpoint' },
      { path: valFile, role: 'validation text' },
    ],
    [
      { path: out, kind: 'checkpoint', replaces: resume },
      { path: bestPathFor(out), kind: 'checkpoint' },
    ],
  );
  const dir = dirname(out);
  const probe = tempPathTagged(out, 'probe');
  try {
    writeFileSync(probe, '', { flag: 'wx' });
    rmSync(probe, { force: true });
  } catch (err) {
    let cause = describeFsError(err);
    if (errorCode(err) === 'ENOENT') {
      try {
        statSync(dir);
      } catch {
        cause = `directory ${dir} does not exist`;
      }
    }
    throw new CharnnError(`cannot write checkpoint ${out}: ${cause}`, 'check that the directory exists and is writable, or choose another --out');
  }
}

/** What the pre-flight checks settle: the run to continue (if any), its corpus, output and configs. */
interface RunPlan {
  from: TrainingFile | null;
  corpus: string;
  out: string;
  tokenizer: TokenizerConfig;
  train: TrainConfig;
  /** A fresh run's model (a resumed run has the file's). */
  model?: Omit<ModelConfig, 'vocabSize'>;
}

/**
 * Reject bad options, a missing corpus, an unreadable checkpoint and an unwritable output
 * before any work.
 */
async function preflight(a: TrainArgs): Promise<RunPlan> {
  requirePositiveInteger('--print-every', a.printEvery);
  if (a.newTokens !== undefined && a.resume === undefined) throw new UsageError('--new-tokens only applies with --resume');
  if (a.val !== undefined && a.valFrac !== undefined) throw valSourcesConflict();
  let plan: RunPlan;
  if (a.resume !== undefined) {
    const from = await readTrainingFile(a.resume);
    const configs = resumedConfigs(a, from);
    validateTrainConfig(configs.train);
    plan = { from, corpus: resumedCorpus(a, from), out: a.out ?? a.resume, ...configs };
  } else {
    if (a.corpus === undefined) {
      throw new UsageError('name the corpus to train on', 'charnn train FILE (or - for stdin), or continue a run with charnn train --resume MODEL');
    }
    const configs = freshConfigs(a);
    validateTrainConfig(configs.train);
    validateModelConfig({ ...configs.model, vocabSize: 1 });
    checkModelSize({ ...configs.model, vocabSize: 2 }, false);
    plan = { from: null, corpus: a.corpus, out: a.out ?? defaultOut(a.corpus), ...configs };
  }
  canonicalTokenizerConfig(plan.tokenizer);
  if (plan.corpus !== '-') statCorpusFile(plan.corpus);
  checkOutput(plan.out, plan.corpus, a.resume, plan.train.valFile);
  if (plan.train.valFile !== undefined) checkValFile(plan.train.valFile, a.val === undefined ? plan.from : null);
  return plan;
}

/** Tokenize the corpus (or reuse its cache) and set up the run, with a spinner meanwhile. */
function openSession(a: TrainArgs, p: RunPlan, backend: Backend): Promise<TrainingSession> {
  return withSpinner(`reading and tokenizing ${p.corpus === '-' ? 'stdin' : p.corpus}`, { enabled: !a.quiet && !a.logJson }, (report) => {
    const common = {
      corpus: p.corpus,
      tokenizer: p.tokenizer,
      train: p.train,
      out: p.out,
      cacheDir: a.cacheDir ?? defaultCacheDir(homedir()),
      backend,
      onTokenizeProgress: (bytes: number) => report(`${(bytes / 1e6).toFixed(1)} MB read`),
    };
    return p.from
      ? TrainingSession.resume({ ...common, from: p.from, newTokens: a.newTokens ?? 'error', lr: a.lr, newStopConditions: stopConditions(a) !== null })
      : TrainingSession.create({ ...common, model: p.model! });
  });
}

/**
 * The lines that open a run: the model, the data, the validation text, and for a resumed run
 * where it stands. Returns false when a resumed run has already reached its stop condition.
 */
function announce(session: TrainingSession, train: TrainConfig, backend: Backend, precision: Precision, log: (line: string) => void): boolean {
  const tr = session.trainer;
  const itersPerEpoch = tr.data.batcher.windowsPerEpoch;
  const m = tr.model.config;
  log(
    `${m.layers}x${m.hidden} ${m.cell}, ${tr.model.params.count().toLocaleString('en-US')} parameters, ` +
      `vocabulary ${session.vocabulary.size} ${session.vocabulary.level === 'char' ? 'characters' : 'words'}; ` +
      `${session.trainTokens.toLocaleString('en-US')} training and ${session.valTokens.toLocaleString('en-US')} validation tokens; ` +
      `${itersPerEpoch} iterations per epoch; backend ${backend.name}${precision === 'bf16' ? ' (bf16 products)' : ''}`,
  );
  if (session.validation) log(describeValidation(session.validation, session.vocabulary));
  const r = session.resumed;
  if (!r) return true;
  const parts = [`resuming ${r.from} at iteration ${r.iteration} (epoch ${(r.iteration / itersPerEpoch).toFixed(2)})`];
  if (r.addedTokens.length > 0) parts.push(`added ${r.addedTokens.length} new tokens to the vocabulary`);
  if (r.unknownTokens.length > 0) parts.push(`reading ${r.unknownTokens.length} unseen tokens as <unk>`);
  if (!r.sameCorpus) parts.push("the corpus is not the run's: training goes on from its beginning with fresh hidden state");
  if (session.validation && !r.sameValidation) parts.push("the validation tokens are not the run's: the best validation loss so far was measured on other text");
  log(parts.join('; '));
  if (!tr.reachedStop()) return true;
  const limit = train.iters > 0 && tr.state.iteration >= train.iters ? `--iters ${train.iters}` : `--epochs ${train.epochs}`;
  log(`the run has already reached ${limit}; nothing to do (pass a larger --iters or --epochs, or --time, to train on)`);
  return false;
}

/**
 * The trainer's save hook: writes the current or best checkpoint and remembers the last saved
 * iteration. A save that fails on a CharnnError (a full disk, a vanished directory) is rethrown
 * saying which checkpoint is still good.
 */
class CheckpointSaver {
  /** The iteration of the last current checkpoint written, if any. */
  lastSaved: number | null = null;

  constructor(
    private readonly session: TrainingSession,
    private readonly out: string,
    private readonly progress: TrainProgress,
  ) {}

  readonly save = async (why: 'periodic' | 'best' | 'final'): Promise<void> => {
    const out = this.out;
    let path;
    try {
      path = await this.session.save(why === 'best' ? 'best' : 'current');
    } catch (err) {
      if (!(err instanceof CharnnError)) throw err;
      const target = why === 'best' ? bestPathFor(out) : out;
      const kept =
        why !== 'best' && this.lastSaved !== null
          ? `${out} still holds iteration ${this.lastSaved}`
          : existsSync(target)
            ? `${target} is as it was`
            : 'no checkpoint was written';
      throw new CharnnError(`${err.message}; ${kept}`, err.hint, err.exitCode);
    }
    if (why !== 'best') this.lastSaved = this.session.trainer.state.iteration;
    if (why !== 'periodic') this.progress.log(`saved ${path}`);
  };
}

async function run(a: ArgumentsCamelCase<TrainArgs>, setExit: (code: number) => void): Promise<void> {
  const log = (line: string) => {
    if (!a.quiet) process.stderr.write(`${line}\n`);
  };
  // Listening from the start (main installed it): a signal while the corpus is tokenized
  // removes the cache's temp files and exits; armed once training starts.
  const signals = stopSignals();
  try {
    await runListening(a, setExit, log, signals);
  } finally {
    signals.disarm();
  }
}

async function runListening(a: ArgumentsCamelCase<TrainArgs>, setExit: (code: number) => void, log: (line: string) => void, signals: StopSignals): Promise<void> {
  const p = await preflight(a);
  const { from, corpus, out, train } = p;
  const selected = await selectBackend(a.backend, a.device, a.precision);
  if (selected.notice) log(`charnn: ${selected.notice}`);
  // Not stored in the checkpoint, like --backend: an arithmetic choice; a resumed bf16 run is
  // continued exactly only with --precision bf16 again.
  const backend = await applyPrecision(selected.backend, a.precision);
  if (!from && a.seed === undefined) log(`seed ${train.seed} (pass --seed ${train.seed} to repeat this run)`);

  const session = await openSession(a, p, backend);
  try {
    if (!announce(session, train, backend, a.precision, log)) return;
    const tr = session.trainer;
    const itersPerEpoch = tr.data.batcher.windowsPerEpoch;
    const progress = new TrainProgress({
      quiet: a.quiet,
      json: a.logJson,
      printEvery: a.printEvery,
      totalIterations: train.iters > 0 ? train.iters : train.epochs > 0 ? train.epochs * itersPerEpoch : null,
      totalSeconds: train.timeSeconds || null,
      seq: train.seq,
      startIteration: tr.state.iteration,
    });
    // First Ctrl-C (or SIGTERM): finish the step, save, exit 130 (143). A second: exit at once.
    signals.arm(
      (sig) => progress.log(`${sig === 'SIGINT' ? 'interrupted' : 'terminated'}: saving a checkpoint (press Ctrl-C again to quit without saving)`),
      (sig) => tr.requestStop(sig),
    );
    const saver = new CheckpointSaver(session, out, progress);
    let reason;
    try {
      reason = await tr.run({
        step: (s) => progress.step(s),
        eval: (e) => progress.eval(e),
        diverged: (_msg, d) => progress.diverged(divergenceLine(d, out, saver.lastSaved, from, corpus)),
        save: saver.save,
      });
    } finally {
      progress.stop();
    }
    const s = tr.state;
    if (reason === 'diverged') {
      setExit(EXIT.failure);
      return;
    }
    const best = Number.isFinite(s.bestValLoss) ? `; best validation loss ${s.bestValLoss.toFixed(4)} at iteration ${s.bestValIteration} (${bestPathFor(out)})` : '';
    log(`${reason === 'interrupted' ? 'stopped' : 'done'} at iteration ${s.iteration}, ${s.elapsedSeconds.toFixed(1)} s; checkpoint ${out}${best}`);
    // A signal that came during the final validation and save still ends with its exit code.
    if (signals.signal) setExit(signalExitCode(signals.signal));
  } finally {
    session.close();
  }
}

/** The one line that reports divergence: what happened, which checkpoint is kept, what to try. */
function divergenceLine(d: Divergence, out: string, lastSaved: number | null, from: TrainingFile | null, corpus: string): string {
  let kept: string;
  let resumable: string | null;
  if (lastSaved !== null) {
    kept = `the last checkpoint from before that, ${out} (iteration ${lastSaved}), is kept`;
    resumable = out;
  } else if (from) {
    kept = `no checkpoint was written; ${from.path} is as it was`;
    resumable = from.path;
  } else {
    kept = 'no checkpoint was written';
    resumable = null;
  }
  const again = resumable ? `, e.g. charnn train${corpus === '-' ? ' -' : ''} --resume ${resumable} --lr <lower>` : '';
  return `training diverged at iteration ${d.iteration}: ${d.why}; ${kept} (${d.hint}${again})`;
}

export function trainCommand(setExit: (code: number) => void): CommandModule<object, TrainArgs> {
  return {
    command: 'train [corpus]',
    describe: 'train a model on a text file (or - for stdin) and write checkpoints, or continue one with --resume',
    builder: options,
    handler: (a) => run(a, setExit),
  };
}
