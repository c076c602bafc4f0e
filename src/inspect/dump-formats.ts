import { join } from 'node:path';
import type { GuardedOutput } from '../util/output-guard.js';
import type { DumpContext, DumpWriter, DumpWriterOptions } from './dump-writer.js';
import { HtmlWriter } from './html.js';
import { JsonlWriter } from './jsonl.js';
import { LSTMVIS_FILES, LstmVisWriter } from './lstmvis.js';
import { NPY_MANIFEST, NPY_TOKENS, NpyWriter, npyFileName } from './npy.js';
import { openDataOut } from './output.js';
import type { Quantity } from './states.js';

/**
 * The formats `charnn dump` writes, one row each: the command's options (choices, defaults,
 * which combinations are refused) and runDump read this table and nothing else about a format.
 */
export interface DumpFormatSpec {
  readonly name: string;
  /** How messages name what it writes. */
  readonly title: string;
  /** For --format's help. */
  readonly describe: string;
  /** Several files in a directory that --out must name (else one file, or stdout). */
  readonly directory: boolean;
  /** The --what groups when none are given; null = every quantity the model's cell has. */
  readonly defaultGroups: readonly string[] | null;
  /** Records states only (h, c), not gate activations or other per-step quantities. */
  readonly statesOnly: boolean;
  /** Takes --pattern. */
  readonly pattern: boolean;
  /** Every file it writes for guardOutputs (the directory first for a directory format). */
  outputs(out: string | undefined, quantities: readonly Quantity[]): GuardedOutput[];
  /** A writer for a run, the directory (if any) existing already. */
  open(ctx: DumpContext, o: DumpWriterOptions): Promise<DumpWriter>;
}

/** The groups a states-only format accepts. */
export const STATE_ONLY_GROUPS: readonly string[] = ['h', 'c'];

export const DUMP_FORMAT_TABLE: readonly DumpFormatSpec[] = [
  {
    name: 'jsonl',
    title: 'JSON lines',
    describe: 'a line per token',
    directory: false,
    defaultGroups: null,
    statesOnly: false,
    pattern: false,
    outputs: (out) => [{ path: out, kind: 'jsonl' }],
    open: async (ctx, o) => new JsonlWriter(ctx, openDataOut(o.out)),
  },
  {
    name: 'npy',
    title: 'NumPy files',
    describe: 'a file per layer and quantity',
    directory: true,
    defaultGroups: null,
    statesOnly: false,
    pattern: false,
    outputs: (out, quantities) =>
      out === undefined
        ? []
        : [
            { path: out, kind: 'directory' },
            { path: join(out, NPY_TOKENS), kind: 'npy' },
            ...quantities.map((q) => ({ path: join(out, npyFileName(q)), kind: 'npy' as const })),
            { path: join(out, NPY_MANIFEST), kind: 'npy-manifest' },
          ],
    open: async (ctx, o) => new NpyWriter(ctx, o.out!),
  },
  {
    name: 'html',
    title: 'the HTML viewer',
    describe: 'one page to look at',
    directory: false,
    defaultGroups: STATE_ONLY_GROUPS,
    statesOnly: false,
    pattern: true,
    outputs: (out) => [{ path: out, kind: 'html' }],
    open: (ctx, o) => HtmlWriter.open(ctx, openDataOut(o.out), o.pattern),
  },
  {
    name: 'lstmvis',
    title: 'LSTMVis',
    describe: 'LSTMVis project files',
    directory: true,
    defaultGroups: STATE_ONLY_GROUPS,
    statesOnly: true,
    pattern: false,
    outputs: (out) =>
      out === undefined
        ? []
        : [
            { path: out, kind: 'directory' },
            { path: join(out, LSTMVIS_FILES.states), kind: 'hdf5' },
            { path: join(out, LSTMVIS_FILES.words), kind: 'hdf5' },
            { path: join(out, LSTMVIS_FILES.dict), kind: 'lstmvis-dict' },
            { path: join(out, LSTMVIS_FILES.config), kind: 'lstmvis-config' },
          ],
    open: (ctx, o) => LstmVisWriter.open(ctx, o.out!),
  },
];

export type DumpFormat = string;
export const DUMP_FORMATS: readonly DumpFormat[] = DUMP_FORMAT_TABLE.map((f) => f.name);

/** The row of a format by name (names come from DUMP_FORMATS: an unknown one is a bug). */
export function dumpFormat(name: DumpFormat): DumpFormatSpec {
  const f = DUMP_FORMAT_TABLE.find((x) => x.name === name);
  if (!f) throw new Error(`unknown dump format ${name}`);
  return f;
}
