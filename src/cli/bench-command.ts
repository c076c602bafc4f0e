import { statSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';
import { packageRoot } from '../backend/native.js';
import { BACKEND_CHOICES, type BackendChoice, DEVICE_CHOICES, type DeviceChoice, type Precision, applyPrecision, selectBackend } from '../backend/select.js';
import { BENCH_CONFIG_IDS, type BenchConfig, selectConfigs } from '../bench/configs.js';
import { runQualityBench } from '../bench/quality.js';
import { runBench } from '../bench/run.js';
import { defaultCacheDir } from '../data/token-cache.js';
import { CharnnError, UsageError } from '../errors.js';
import { requireNonNegativeInteger, requireNonNegativeNumber, requirePositiveInteger } from '../util/checks.js';
import { EXIT } from './exit-codes.js';
import { PRECISION } from './shared-options.js';

interface BenchArgs {
  only?: string;
  iters?: number;
  warmup?: number;
  seconds: number;
  peers: boolean;
  json: boolean;
  backend: BackendChoice;
  device: DeviceChoice;
  precision: Precision;
  corpus?: string;
  peersDir?: string;
  python: string;
  repeat: number;
  seed: number;
  threads?: number;
  cacheDir?: string;
  quiet: boolean;
  profile: boolean;
  quality: boolean;
}

/** `<package root>/../<rel>`: the shared folder beside the checkout (corpora, peers). */
function besideRoot(rel: string): string {
  const root = packageRoot() ?? process.cwd();
  return resolve(root, '..', rel);
}

function options(y: Argv): Argv<BenchArgs> {
  return y
    .option('only', { type: 'string', describe: `comma-separated configurations to run: ${BENCH_CONFIG_IDS.join(', ')} [default: all]` })
    .option('iters', { type: 'number', describe: 'measured iterations per configuration [default: each configuration\'s own, a fiftieth of it on --backend ts or a software GPU]' })
    .option('warmup', { type: 'number', describe: 'unmeasured iterations before them [default: each configuration\'s own]' })
    .option('seconds', { type: 'number', default: 0, describe: 'measure each run for this long instead of a number of iterations (0 = use --iters)' })
    .option('peers', { type: 'boolean', default: false, describe: 'also run the PyTorch and numpy trainers of ../shared/peers and print charnn/peer, and measure the machine\'s float32 GEMM roofline (numpy sgemm 2048^3 with --python) for each configuration\'s fraction of it' })
    .option('json', { type: 'boolean', default: false, describe: 'one JSON object per configuration (a line each) instead of the table' })
    .option('backend', { type: 'string', choices: BACKEND_CHOICES, default: 'auto' as BackendChoice, describe: 'arithmetic: native SIMD addon, or TypeScript' })
    .option('device', { type: 'string', choices: DEVICE_CHOICES, default: 'cpu' as DeviceChoice, describe: 'where to run: cpu, gpu (WebGPU; measures the gpu backend), or auto (the GPU when a hardware adapter is present)' })
    .option('precision', PRECISION)
    .option('corpus', { type: 'string', describe: 'text to train on [default: ../shared/corpora/tinyshakespeare.txt beside the package]' })
    .option('peers-dir', { type: 'string', describe: 'folder of the peer scripts [default: ../shared/peers beside the package]' })
    .option('python', { type: 'string', default: 'python3', describe: 'Python with numpy for min_char_rnn.py (PyTorch\'s comes from torch-env.sh)' })
    .option('repeat', { type: 'number', default: 1, describe: 'runs per configuration, charnn and peer alternating; medians are reported' })
    .option('seed', { type: 'number', default: 1, describe: 'random seed of every run' })
    .option('threads', { type: 'number', describe: 'threads (native, or the TypeScript GEMM\'s) for every configuration [default: the pool, 1 for min-char-rnn as its numpy peer]' })
    .option('cache-dir', { type: 'string', describe: 'where tokenized corpora are cached [default: $XDG_CACHE_HOME/charnn]' })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'no progress on stderr' })
    .option('quality', { type: 'boolean', default: false, describe: 'instead of speed, the model each trainer gives in the same wall time: charnn with its defaults, charnn with the PyTorch peer\'s recipe and the PyTorch peer, --seconds each (default 300), validation loss on the last 10%; --repeat N runs seeds --seed .. --seed+N-1' })
    .option('profile', { type: 'boolean', default: false, describe: 'time every backend op and print, per configuration, where the time goes (stderr)' })
    .example('$0 bench', 'time every configuration with charnn')
    .example('$0 bench --peers', 'and PyTorch / numpy on the same configurations, with charnn/peer ratios')
    .example('$0 bench --quality --seconds 300 --repeat 3', 'validation loss after 5 minutes: charnn defaults, charnn with PyTorch\'s recipe, PyTorch; seeds 1-3')
    .example('$0 bench --only lstm128,min-char-rnn --seconds 10 --json', 'two configurations for 10 s each, as JSON lines') as unknown as Argv<BenchArgs>;
}

async function run(a: BenchArgs, setExit: (code: number) => void): Promise<void> {
  if (a.iters !== undefined) requirePositiveInteger('--iters', a.iters);
  if (a.warmup !== undefined) requireNonNegativeInteger('--warmup', a.warmup);
  requireNonNegativeNumber('--seconds', a.seconds);
  requirePositiveInteger('--repeat', a.repeat);
  if (a.threads !== undefined) requirePositiveInteger('--threads', a.threads);
  if (!Number.isInteger(a.seed) || a.seed < 0 || a.seed > 0xffffffff) throw new UsageError(`--seed must be an integer in [0, 2^32), got ${a.seed}`);
  let configs: BenchConfig[] = selectConfigs(a.only);

  const corpus = a.corpus ?? besideRoot(join('shared', 'corpora', 'tinyshakespeare.txt'));
  try {
    if (!statSync(corpus).isFile()) throw new UsageError(`the benchmark corpus ${corpus} is not a file`, 'pass --corpus FILE');
  } catch (err) {
    if (err instanceof CharnnError) throw err;
    throw new CharnnError(
      `the benchmark corpus ${corpus} was not found`,
      a.corpus === undefined ? 'the default is tinyshakespeare.txt in ../shared/corpora beside the package; pass --corpus FILE for another text' : 'pass --corpus FILE',
    );
  }
  const peersDir = a.peersDir ?? besideRoot(join('shared', 'peers'));
  if (a.peers || a.quality) {
    try {
      statSync(peersDir);
    } catch {
      throw new CharnnError(`the peers folder ${peersDir} was not found`, 'pass --peers-dir, the folder holding torch_charlstm.py and min_char_rnn.py');
    }
  }

  if (a.quality) {
    if (a.only !== undefined || a.profile || a.peers) throw new UsageError('--quality runs its own three trainers', 'leave out --only, --peers and --profile');
    const root = packageRoot() ?? process.cwd();
    const progress = (line: string) => {
      if (!a.quiet) process.stderr.write(`${line}\n`);
    };
    await runQualityBench(
      {
        corpus,
        seconds: a.seconds > 0 ? a.seconds : 300,
        seeds: Array.from({ length: a.repeat }, (_, i) => a.seed + i),
        charnnBin: join(root, 'bin', 'charnn.js'),
        peersDir,
        cacheDir: a.cacheDir ?? defaultCacheDir(homedir()),
        json: a.json,
      },
      { out: (text) => process.stdout.write(text), progress },
    );
    return;
  }
  const selected = await selectBackend(a.backend, a.device, a.precision);
  const { notice } = selected;
  const backend = await applyPrecision(selected.backend, a.precision);
  const progress = (line: string) => {
    if (!a.quiet) process.stderr.write(`${line}\n`);
  };
  if (notice) progress(`charnn: ${notice}`);
  const gpu = backend as { name: string; software?: boolean };
  const slow = gpu.name === 'gpu' ? gpu.software === true : backend.name !== 'native';
  if (slow && a.iters === undefined && a.seconds === 0) {
    // The TypeScript backend (and a software GPU) is some 20-200x slower: a fiftieth of the iterations keeps runs short.
    configs = configs.map((c) => ({ ...c, iters: Math.max(2, Math.ceil(c.iters / 50)), warmup: Math.min(c.warmup, 1) }));
  }
  const outcome = await runBench(
    {
      configs,
      corpus,
      cacheDir: a.cacheDir ?? defaultCacheDir(homedir()),
      backend,
      iters: a.iters,
      warmup: a.warmup,
      seconds: a.seconds,
      peers: a.peers,
      peersDir,
      python: a.python,
      repeat: a.repeat,
      seed: a.seed,
      threads: a.threads,
      json: a.json,
      profile: a.profile,
    },
    { out: (text) => process.stdout.write(text), progress },
  );
  if (outcome.peerFailures > 0) {
    process.stderr.write(`charnn: the peer failed for ${outcome.peerFailures} configuration${outcome.peerFailures > 1 ? 's' : ''} (see above)\n`);
    setExit(EXIT.failure);
  }
}

export function benchCommand(setExit: (code: number) => void): CommandModule<object, BenchArgs> {
  return {
    command: 'bench',
    describe: 'measure training speed (chars/s, GFLOP/s) on fixed configurations, optionally against PyTorch and numpy',
    builder: options,
    handler: (a) => run(a, setExit),
  };
}
