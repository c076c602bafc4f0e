import type { InvalidUtf8Mode } from '../data/config.js';
import { VocabularyEncoder, type UnknownTally } from '../data/encoder.js';
import type { UnknownTokenPolicy } from '../data/vocabulary.js';
import { CharnnError, UsageError } from '../errors.js';
import type { GuardedOutput } from '../util/output-guard.js';
import { type DumpFormat, dumpFormat } from './dump-formats.js';
import type { DumpContext, DumpWriter } from './dump-writer.js';
import { ensureDirectory } from './output.js';
import { type Quantity, StateStreamer } from './states.js';

export type { DumpContext, DumpWriter } from './dump-writer.js';
export { DUMP_FORMATS, type DumpFormat } from './dump-formats.js';

/** The longest forward window dump runs (tokens); a larger --seq runs windows of this length. */
export const MAX_DUMP_WINDOW = 4096;

export interface DumpOptions {
  format: DumpFormat;
  /** jsonl, html: a file or stdout (undefined / '-'); npy, lstmvis: a directory (required). */
  out: string | undefined;
  /** Tokens per forward window (B = 1; the results do not depend on it). */
  seq: number;
  /** Stop after this many tokens (0 = the whole text). */
  maxTokens: number;
  unknown: UnknownTokenPolicy;
  invalidUtf8: InvalidUtf8Mode;
  /** html: the regex (or @column) whose correlation ranks the cells when the page opens. */
  pattern?: string;
}

export interface DumpResult {
  tokens: number;
  tokensRead: number;
  tally: UnknownTally;
  files: string[];
  /** True when --max-tokens cut the text short. */
  truncated: boolean;
}

/** Every file a dump in `format` to `out` writes, with its kind, for guardOutputs. */
export function dumpOutputs(format: DumpFormat, out: string | undefined, quantities: readonly Quantity[]): GuardedOutput[] {
  return dumpFormat(format).outputs(out, quantities);
}

/**
 * Reads a text, runs the model over it with state carried throughout, and writes every token's
 * states in the chosen format, a window at a time (memory does not grow with the text, except
 * for an HTML page's own size, which a browser must hold anyway).
 */
export async function runDump(ctx: DumpContext, source: AsyncIterable<Uint8Array> & { description?: string }, o: DumpOptions): Promise<DumpResult> {
  const writer = await openWriter(ctx, o);
  // The values do not depend on the window, only memory does: a window longer than the tokens
  // wanted, or than MAX_DUMP_WINDOW, would only allocate more (--seq 1e9 asked for 68 GB).
  const window = Math.min(o.seq, o.maxTokens > 0 ? o.maxTokens : Infinity, MAX_DUMP_WINDOW);
  const streamer = new StateStreamer(ctx.model, window, ctx.quantities, (b) => writer.block(b));
  let ids: number[] = [];
  let tokens: string[] = [];
  const encoder = new VocabularyEncoder(ctx.vocab, { unknown: o.unknown, invalidUtf8: o.invalidUtf8, sourceName: ctx.sourceName }, (id, token) => {
    ids.push(id);
    tokens.push(token);
  });
  const limit = o.maxTokens > 0 ? o.maxTokens : Infinity;
  let taken = 0;
  let truncated = false;
  const drain = async () => {
    for (let i = 0; i < ids.length; i++) {
      if (taken >= limit) {
        truncated = true;
        break;
      }
      await streamer.push(ids[i], tokens[i]);
      taken++;
    }
    ids = [];
    tokens = [];
  };
  for await (const chunk of source) {
    encoder.push(chunk);
    await drain();
    if (truncated || taken >= limit) break;
  }
  if (!truncated && taken < limit) {
    encoder.end();
    await drain();
  }
  await streamer.end();
  truncated ||= taken >= limit;
  if (streamer.tokensDone === 0) {
    throw new CharnnError(`${ctx.sourceName} has no tokens the model knows`, 'dump some text the model was trained on');
  }
  const files = await writer.finish(streamer.tokensDone);
  return { tokens: streamer.tokensDone, tokensRead: encoder.tokensRead, tally: encoder.tally, files, truncated };
}

/** The format's writer; a directory format's directory is made first (--out is required for it). */
async function openWriter(ctx: DumpContext, o: DumpOptions): Promise<DumpWriter> {
  const format = dumpFormat(o.format);
  if (format.directory) ensureDirectory(requireDirectory(o.format, o.out));
  return format.open(ctx, { out: o.out, pattern: o.pattern });
}

/**
 * The --out directory a directory format needs.
 * @throws UsageError (exit 2) when --out is missing or stdout
 */
export function requireDirectory(format: DumpFormat, out: string | undefined): string {
  if (out === undefined || out === '-') throw new UsageError(`--format ${format} writes several files`, 'name a directory with --out DIR');
  return out;
}
