import { homedir } from 'node:os';
import { basename, extname } from 'node:path';
import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { BACKEND_CHOICES, type BackendChoice, selectBackend } from '../backend/select.js';
import { type TokenizerConfig, canonicalTokenizerConfig } from '../data/config.js';
import { statCorpusFile } from '../data/source.js';
import { defaultCacheDir } from '../data/token-cache.js';
import { UsageError } from '../errors.js';
import { CELL_TYPES, type CellType, validateModelConfig } from '../model/config.js';
import { type TrainConfig, validateTrainConfig } from '../train/config.js';
import { OPTIMIZERS, type OptimizerName, defaultOptimizerConfig } from '../train/optimizer.js';
import { TrainingSession, bestPathFor } from '../train/session.js';
import { freshSeed } from '../util/random.js';
import { parseDuration } from './durations.js';
import { EXIT } from './exit-codes.js';
import { withSpinner } from './spinner.js';
import { TrainProgress } from './train-progress.js';

interface TrainArgs {
  corpus: string;
  out?: string;
  level: 'char' | 'word';
  model: CellType;
  hidden: number;
  layers: number;
  embed?: number;
  dropout: number;
  batch: number;
  seq: number;
  optim: OptimizerName;
  lr?: number;
  lrDecay: number;
  lrDecayEvery: number;
  clip: number;
  clipNorm: number;
  seed?: number;
  iters: number;
  epochs?: number;
  time?: string;
  evalEvery: number;
  sampleLength: number;
  saveEvery: number;
  valFrac: number;
  vocabSize?: number;
  minCount?: number;
  wordSplit: 'punct' | 'space';
  invalidUtf8: 'error' | 'replace';
  cacheDir?: string;
  backend: BackendChoice;
  quiet: boolean;
  logJson: boolean;
  printEvery: number;
}

function options(y: Argv): Argv<TrainArgs> {
  return y
    .positional('corpus', { type: 'string', describe: 'UTF-8 text to train on; - reads stdin', demandOption: true })
    .option('out', { alias: 'o', type: 'string', describe: 'checkpoint path [default: <corpus name>.charnn]' })
    .option('level', { type: 'string', choices: ['char', 'word'] as const, default: 'char' as const, describe: 'tokens: Unicode code points or words' })
    .option('model', { alias: 'm', type: 'string', choices: CELL_TYPES, default: 'lstm' as CellType, describe: 'recurrent cell' })
    .option('hidden', { type: 'number', default: 128, describe: 'hidden units per layer' })
    .option('layers', { type: 'number', default: 2, describe: 'stacked recurrent layers' })
    .option('embed', { type: 'number', describe: 'learned embedding size; 0 = one-hot input [default: 0 for char, --hidden for word]' })
    .option('dropout', { type: 'number', default: 0, describe: 'dropout between layers and before the output' })
    .option('batch', { alias: 'b', type: 'number', default: 50, describe: 'parallel streams per step (1 = min-char-rnn)' })
    .option('seq', { alias: 't', type: 'number', default: 50, describe: 'truncated-BPTT window length' })
    .option('optim', { type: 'string', choices: OPTIMIZERS, default: 'adagrad' as OptimizerName, describe: 'optimizer' })
    .option('lr', { type: 'number', describe: 'learning rate [default: 0.1 adagrad, 0.002 rmsprop/adam]' })
    .option('lr-decay', { type: 'number', default: 1, describe: 'multiply the learning rate by this ...' })
    .option('lr-decay-every', { type: 'number', default: 0, describe: '... every N iterations (0 = every epoch)' })
    .option('clip', { type: 'number', default: 5, describe: 'clip each gradient element to [-clip, clip] (0 = off)' })
    .option('clip-norm', { type: 'number', default: 0, describe: 'rescale gradients to this global L2 norm at most (0 = off)' })
    .option('seed', { type: 'number', describe: 'random seed; the same seed and options repeat a run exactly [default: random, printed]' })
    .option('iters', { type: 'number', default: 0, describe: 'stop after N iterations' })
    .option('epochs', { type: 'number', describe: 'stop after N passes over the training text [default: 10 unless --iters/--time]' })
    .option('time', { type: 'string', describe: 'stop after this long, e.g. 90s, 20m, 1.5h' })
    .option('eval-every', { type: 'number', default: 500, describe: 'validate and print a sample every N iterations (0 = at the end only)' })
    .option('sample-length', { type: 'number', default: 200, describe: 'tokens in the sample printed at validation (0 = none)' })
    .option('save-every', { type: 'number', default: 1000, describe: 'write a checkpoint every N iterations (0 = at the end only)' })
    .option('val-frac', { type: 'number', default: 0.05, describe: 'fraction at the end of the text held out for validation' })
    .option('vocab-size', { type: 'number', describe: 'word level: keep the N most frequent tokens (<unk> for the rest)' })
    .option('min-count', { type: 'number', describe: 'word level: tokens seen fewer times become <unk>' })
    .option('word-split', { type: 'string', choices: ['punct', 'space'] as const, default: 'punct' as const, describe: 'word level: split punctuation off words, or whitespace only' })
    .option('invalid-utf8', { type: 'string', choices: ['error', 'replace'] as const, default: 'error' as const, describe: 'on bytes that are not UTF-8: stop, or decode as U+FFFD' })
    .option('cache-dir', { type: 'string', describe: 'where tokenized corpora are cached [default: $XDG_CACHE_HOME/charnn]' })
    .option('backend', { type: 'string', choices: BACKEND_CHOICES, default: 'auto' as BackendChoice, describe: 'arithmetic: native SIMD addon, or TypeScript' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print nothing but errors' })
    .option('log-json', { type: 'boolean', default: false, describe: 'progress as JSON lines on stderr' })
    .option('print-every', { type: 'number', default: 100, describe: 'without a terminal: a progress line every N iterations' })
    .example('$0 train corpora/arithmetic.txt --iters 2000', 'train the default 2x128 LSTM for 2000 iterations')
    .example('$0 train input.txt --model rnn --hidden 100 --seq 25 --batch 1 --lr 0.1', "min-char-rnn's setup")
    .example('cat *.txt | $0 train - --level word --out words.charnn --time 30m', 'word level, from stdin, for 30 minutes') as unknown as Argv<TrainArgs>;
}

function defaultOut(corpus: string): string {
  if (corpus === '-') return 'model.charnn';
  return `${basename(corpus, extname(corpus))}.charnn`;
}

/** Map parsed options to library configs (and reject combinations that cannot work). */
function configsFrom(a: TrainArgs) {
  const tokenizer: TokenizerConfig = {
    level: a.level,
    invalidUtf8: a.invalidUtf8,
    wordSplit: a.wordSplit,
    vocabSize: a.vocabSize,
    minCount: a.minCount,
  };
  const optimizer = defaultOptimizerConfig(a.optim);
  if (a.lr !== undefined) optimizer.lr = a.lr;
  const timeSeconds = a.time !== undefined ? parseDuration(a.time) : 0;
  const epochs = a.epochs ?? (a.iters > 0 || timeSeconds > 0 ? 0 : 10);
  if (!(Number.isInteger(a.printEvery) && a.printEvery > 0)) throw new UsageError(`--print-every must be a positive integer, got ${a.printEvery}`);
  const train: TrainConfig = {
    batch: a.batch,
    seq: a.seq,
    optimizer,
    clip: a.clip,
    clipNorm: a.clipNorm,
    lrDecay: a.lrDecay,
    lrDecayEvery: a.lrDecayEvery,
    seed: a.seed ?? freshSeed(),
    iters: a.iters,
    epochs,
    timeSeconds,
    evalEvery: a.evalEvery,
    sampleLength: a.sampleLength,
    saveEvery: a.saveEvery,
    valFrac: a.valFrac,
  };
  const model = {
    cell: a.model,
    hidden: a.hidden,
    layers: a.layers,
    embed: a.embed ?? (a.level === 'word' ? a.hidden : 0),
    dropout: a.dropout,
  };
  return { tokenizer, train, model };
}

async function run(a: ArgumentsCamelCase<TrainArgs>, setExit: (code: number) => void): Promise<void> {
  const { tokenizer, train, model } = configsFrom(a);
  // Reject bad options and a missing corpus before printing anything else.
  validateTrainConfig(train);
  validateModelConfig({ ...model, vocabSize: 1 });
  canonicalTokenizerConfig(tokenizer);
  if (a.corpus !== '-') statCorpusFile(a.corpus);
  const out = a.out ?? defaultOut(a.corpus);
  const log = (line: string) => {
    if (!a.quiet) process.stderr.write(`${line}\n`);
  };
  const { backend, notice } = await selectBackend(a.backend);
  if (notice) log(`charnn: ${notice}`);
  if (a.seed === undefined) log(`seed ${train.seed} (pass --seed ${train.seed} to repeat this run)`);

  const session = await withSpinner(
    `reading and tokenizing ${a.corpus === '-' ? 'stdin' : a.corpus}`,
    { enabled: !a.quiet && !a.logJson },
    (report) =>
      TrainingSession.create({
        corpus: a.corpus,
        tokenizer,
        model,
        train,
        out,
        cacheDir: a.cacheDir ?? defaultCacheDir(homedir()),
        backend,
        onTokenizeProgress: (bytes) => report(`${(bytes / 1e6).toFixed(1)} MB read`),
      }),
  );
  try {
    const tr = session.trainer;
    const itersPerEpoch = tr.data.batcher.windowsPerEpoch;
    const m = tr.model.config;
    log(
      `${m.layers}x${m.hidden} ${m.cell}, ${tr.model.params.count().toLocaleString('en-US')} parameters, ` +
        `vocabulary ${session.vocabulary.size} ${tokenizer.level === 'char' ? 'characters' : 'words'}; ` +
        `${session.trainTokens.toLocaleString('en-US')} training and ${session.valTokens.toLocaleString('en-US')} validation tokens; ` +
        `${itersPerEpoch} iterations per epoch; backend ${backend.name}`,
    );
    const totalIterations = train.iters > 0 ? train.iters : train.epochs > 0 ? train.epochs * itersPerEpoch : null;
    const progress = new TrainProgress({
      quiet: a.quiet,
      json: a.logJson,
      printEvery: a.printEvery,
      totalIterations,
      totalSeconds: train.timeSeconds || null,
      seq: train.seq,
    });

    // First Ctrl-C (or SIGTERM): finish the step, save, exit 130 (143). A second: exit at once,
    // leaving the last checkpoint on disk as it was (writes are atomic, so it is whole).
    let signalled: NodeJS.Signals | null = null;
    const onSignal = (sig: NodeJS.Signals) => {
      if (signalled) process.exit(sig === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted);
      signalled = sig;
      progress.log(`${sig === 'SIGINT' ? 'interrupted' : 'terminated'}: saving a checkpoint (press Ctrl-C again to quit without saving)`);
      tr.requestStop(sig);
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
    let reason;
    try {
      reason = await tr.run({
        step: (r) => progress.step(r),
        eval: (r) => progress.eval(r),
        diverged: (msg) => progress.diverged(msg),
        save: async (why) => {
          const path = await session.save(why === 'best' ? 'best' : 'current');
          if (why !== 'periodic') progress.log(`saved ${path}`);
        },
      });
    } finally {
      process.off('SIGINT', onSignal);
      process.off('SIGTERM', onSignal);
      progress.stop();
    }
    const s = tr.state;
    if (reason === 'diverged') {
      setExit(EXIT.failure);
      return;
    }
    const best = Number.isFinite(s.bestValLoss) ? `; best validation loss ${s.bestValLoss.toFixed(4)} at iteration ${s.bestValIteration} (${bestPathFor(out)})` : '';
    log(`${reason === 'interrupted' ? 'stopped' : 'done'} at iteration ${s.iteration}, ${s.elapsedSeconds.toFixed(1)} s; checkpoint ${out}${best}`);
    if (reason === 'interrupted') setExit(signalled === 'SIGTERM' ? EXIT.terminated : EXIT.interrupted);
  } finally {
    session.close();
  }
}

export function trainCommand(setExit: (code: number) => void): CommandModule<object, TrainArgs> {
  return {
    command: 'train <corpus>',
    describe: 'train a model on a text file (or - for stdin) and write checkpoints',
    builder: options,
    handler: (a) => run(a, setExit),
  };
}
