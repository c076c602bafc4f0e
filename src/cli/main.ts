import yargs, { type Argv, type CommandModule } from 'yargs';
import { keepLastOccurrences } from './repeated-options.js';
import { stopSignals } from './stop-signals.js';
import { CharnnError, UsageError } from '../errors.js';
import { EXIT } from './exit-codes.js';
import { CHARNN_VERSION } from '../modelfile/contents.js';
import { dumpCommand } from './dump-command.js';
import { evalCommand } from './eval-command.js';
import { exportCommand } from './export-command.js';
import { importCommand } from './import-command.js';
import { infoCommand } from './info-command.js';
import { sampleCommand } from './sample-command.js';
import { trainCommand } from './train-command.js';
import { benchCommand } from './bench-command.js';
import { escapeInvisible } from '../util/visible-text.js';
import { CELLS } from '../model/cells/index.js';


/**
 * Run the charnn CLI with the given arguments; resolves to the exit code. Commands parse
 * options and call the library; errors the user can act on become one line on stderr.
 */
export async function main(args: string[]): Promise<number> {
  handleClosedStdout();
  // Ctrl-C and SIGTERM: exit 130/143 without leaving temp files (train arms it to save first).
  stopSignals();
  let exitCode: number = EXIT.ok;
  const commands: CommandModule<any, any>[] = [
    trainCommand((code) => (exitCode = code)),
    sampleCommand,
    evalCommand,
    dumpCommand,
    infoCommand,
    exportCommand,
    importCommand,
    benchCommand((code) => (exitCode = code)),
  ];
  const builders = new Map(commands.map((c) => [String(c.command).split(' ')[0]!, c.builder as (y: Argv) => unknown]));
  // An option given twice: the last one wins (see keepLastOccurrences); one without its value is an error.
  let kept: string[];
  try {
    kept = keepLastOccurrences(args, builders);
  } catch (err) {
    return reportError(err);
  }
  let cli: Argv = yargs(kept.map((a) => (a === '-' ? DASH : a)))
    .middleware(restoreDash, true)
    .scriptName('charnn')
    .usage(`$0 <command> [options]\n\nTrain, sample and measure character- and word-level ${CELLS.map((c) => c.title).join('/')} language models.`)
    .demandCommand(1, 'name a command: train, sample, eval, dump, info, bench, export, import')
    .strict()
    .recommendCommands()
    .help()
    .alias('h', 'help')
    // Named, not looked up: yargs searches package.json from the working directory, which
    // under npx is the user's folder ("unknown").
    .version(CHARNN_VERSION)
    .wrap(Math.min(110, process.stderr.columns || 100))
    .fail((msg, err) => {
      if (err) throw err;
      // yargs spreads some messages ("Invalid values: ...") over lines: errors are one line.
      throw new UsageError(withoutCamelCaseTwins(msg).replace(/\s*\n\s*/g, ' '), 'see charnn --help');
    });
  for (const c of commands) cli = cli.command(c);
  try {
    await cli.parseAsync();
  } catch (err) {
    return reportError(err);
  }
  return exitCode;
}

/**
 * yargs turns a lone "-" (stdin, by Unix convention) into an empty string
 * (yargs/yargs-parser#381), so it is passed through as a stand-in and restored before any
 * command sees its options.
 */
const DASH = '\u0000stdin';

function restoreDash(argv: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(argv)) {
    if (value === DASH) argv[key] = '-';
  }
}

/** yargs names an unknown --foo-bar twice ("foo-bar, fooBar"): keep the spelling the user typed. */
function withoutCamelCaseTwins(msg: string): string {
  const m = /^(Unknown arguments?): (.*)$/.exec(msg);
  if (!m) return msg;
  const names = m[2].split(', ');
  const kept = names.filter((n) => !(/[A-Z]/.test(n) && names.includes(n.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`))));
  return `${kept.length > 1 ? 'Unknown arguments' : 'Unknown argument'}: ${kept.join(', ')}`;
}

/** One line for errors the user can act on; a stack only for bugs or with CHARNN_DEBUG=1. */
export function reportError(err: unknown): number {
  const debug = !!process.env.CHARNN_DEBUG && process.env.CHARNN_DEBUG !== '0';
  if (err instanceof CharnnError) {
    // Messages quote tokens with quoteText; paths and other text from outside can still hold a
    // line break or an invisible character, and an error must stay one readable line.
    process.stderr.write(`charnn: ${escapeInvisible(err.message)}${err.hint ? ` (${escapeInvisible(err.hint)})` : ''}\n`);
    if (debug && err.stack) process.stderr.write(`${err.stack}\n`);
    return err.exitCode;
  }
  const e = err as NodeJS.ErrnoException;
  if (e && e.code === 'EPIPE') return EXIT.ok;
  process.stderr.write(`charnn: internal error: ${escapeInvisible(e?.message ?? String(err))} (please report it; CHARNN_DEBUG=1 shows details)\n`);
  if (debug && e?.stack) process.stderr.write(`${e.stack}\n`);
  return EXIT.failure;
}

/**
 * `charnn sample | head` closes stdout early: end quietly with status 0, as Unix tools do.
 * stderr closed early (`charnn train ... 2>&1 | head`) only silences the logs: the run goes on
 * and saves as it would (before, the unhandled EPIPE ended it at once, exit 1, leaving a
 * checkpoint's temp file behind).
 */
function handleClosedStdout(): void {
  process.stdout.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(EXIT.ok);
    throw err;
  });
  process.stderr.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code !== 'EPIPE') throw err;
    process.stderr.write = (() => true) as typeof process.stderr.write;
  });
}
