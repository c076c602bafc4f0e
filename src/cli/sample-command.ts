import type { ArgumentsCamelCase, Argv, CommandModule } from 'yargs';
import { type BackendChoice, type DeviceChoice, selectBackend } from '../backend/select.js';
import { loadModelFile } from '../modelfile/contents.js';
import { UsageError } from '../errors.js';
import { encodeText } from '../data/encoder.js';
import { generate } from '../sample/generate.js';
import { validateSampling } from '../sample/sampler.js';
import { requirePositiveInteger } from '../util/checks.js';
import { freshSeed } from '../util/random.js';
import { readAllText } from '../data/corpus-decoder.js';
import { openCorpus } from '../data/source.js';
import { MODEL_FILE, BACKEND, DEVICE, INVALID_UTF8 } from './shared-options.js';

interface SampleArgs {
  model: string;
  length: number;
  temp: number;
  topK: number;
  topP: number;
  prime?: string;
  primeFile?: string;
  seed?: number;
  n: number;
  separator: string;
  unknown: 'error' | 'skip' | 'unk';
  invalidUtf8: 'error' | 'replace';
  backend: BackendChoice;
  device: DeviceChoice;
  quiet: boolean;
}

function options(y: Argv): Argv<SampleArgs> {
  return y
    .option('model', MODEL_FILE)
    .option('length', { alias: 'l', type: 'number', default: 500, describe: 'tokens per sample; -1 = endless until stopped' })
    .option('temp', { type: 'number', default: 1, describe: 'softmax temperature; 0 = always the most likely token' })
    .option('top-k', { type: 'number', default: 0, describe: 'sample among the k most likely tokens only (0 = all)' })
    .option('top-p', { type: 'number', default: 1, describe: 'sample among the most likely tokens covering probability p (1 = all)' })
    .option('prime', { type: 'string', describe: 'text to condition on (printed first)' })
    .option('prime-file', { type: 'string', describe: 'read the prime from a file; - = stdin' })
    .option('seed', { type: 'number', describe: 'random seed: the same seed and model give the same text [default: random, printed]' })
    .option('n', { type: 'number', default: 1, describe: 'number of samples' })
    .option('separator', { type: 'string', default: '\n\n', describe: 'printed between samples' })
    .option('unknown', { type: 'string', choices: ['error', 'skip', 'unk'] as const, default: 'error' as const, describe: 'prime tokens outside the vocabulary' })
    .option('invalid-utf8', INVALID_UTF8)
    .option('backend', BACKEND)
    // One token at a time is latency, not arithmetic: on an H100's machine 2,000 characters of
    // a 2x128 LSTM took 4.4 s on the GPU and 0.52 s on the CPU. So the CPU unless asked.
    .option('device', { ...DEVICE, default: 'cpu' as DeviceChoice })
    .option('quiet', { alias: 'q', type: 'boolean', default: false, describe: 'print nothing on stderr but errors (not even the random seed)' })
    .example('$0 sample -m arithmetic.charnn --prime "12+7=" --length 20', 'continue a prime')
    .example('$0 sample -m shakespeare.charnn --temp 0.7 --length -1 | head -c 1000', 'stream until head has enough')
    .conflicts('prime', 'prime-file') as unknown as Argv<SampleArgs>;
}

/**
 * The prime, decoded as every text charnn reads is (readAllText): `--prime`'s argument as its
 * UTF-8 bytes, `--prime-file` from a file or stdin, with the same BOM, --invalid-utf8 and
 * binary rules as a corpus.
 */
async function primeText(a: SampleArgs): Promise<string> {
  if (a.prime !== undefined) return readAllText([Buffer.from(a.prime, 'utf8')], a.invalidUtf8, '--prime');
  if (a.primeFile === undefined) return '';
  const source = openCorpus(a.primeFile, 'prime');
  return readAllText(source, a.invalidUtf8, a.primeFile === '-' ? 'stdin' : `prime file ${a.primeFile}`);
}

/** Write to stdout, waiting when the pipe is full so an endless sample uses constant memory. */
async function writeOut(text: string): Promise<void> {
  if (!process.stdout.write(text)) await new Promise((r) => process.stdout.once('drain', r));
}

async function run(a: ArgumentsCamelCase<SampleArgs>): Promise<void> {
  if (!Number.isSafeInteger(a.length) || (a.length < 1 && a.length !== -1)) throw new UsageError(`--length must be a positive integer or -1, got ${a.length}`);
  requirePositiveInteger('-n', a.n);
  if (a.seed !== undefined && !(Number.isInteger(a.seed) && a.seed >= 0 && a.seed <= 0xffffffff)) throw new UsageError(`--seed must be an integer in [0, 2^32), got ${a.seed}`);
  const sampling = { temperature: a.temp, topK: a.topK, topP: a.topP };
  validateSampling(sampling);
  const { backend, notice } = await selectBackend(a.backend, a.device);
  if (notice && !a.quiet) process.stderr.write(`charnn: ${notice}\n`);
  const loaded = await loadModelFile(a.model, backend);
  const prime = await primeText(a);
  // Unknown prime tokens fail here, before anything is printed (generate encodes it again).
  encodeText(loaded.vocabulary, prime, a.unknown);
  const seed = a.seed ?? freshSeed();
  // Only a seed the user did not choose is worth printing; it goes to stderr whether or not
  // stdout is a pipe, so `charnn sample | head` can still be repeated exactly.
  if (a.seed === undefined && !a.quiet) process.stderr.write(`seed ${seed} (pass --seed ${seed} to repeat this sample)\n`);
  await generate(loaded.model, loaded.vocabulary, {
    prime,
    unknown: a.unknown,
    length: a.length,
    count: a.n,
    separator: a.separator,
    seed,
    sampling,
    write: writeOut,
  });
}

export const sampleCommand: CommandModule<object, SampleArgs> = {
  command: 'sample',
  describe: 'generate text from a trained model, streamed to stdout',
  builder: options,
  handler: run,
};
