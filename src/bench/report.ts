import type { PeerKind } from './configs.js';
import type { Roofline } from './roofline.js';

/** Where the benchmark ran. */
export interface BenchMachine {
  /** `lscpu`'s model name (os.cpus()[0].model). */
  cpu: string;
  /** Logical CPUs. */
  cores: number;
  node: string;
  /** `native` (with its instruction set) or `reference` (TypeScript). */
  backend: string;
  /** The GPU the gpu backend ran on (null or absent on the CPU backends). */
  device?: string | null;
  isa: string | null;
  /** The matrix products' input precision (--precision): fp32, or bf16 on the native backend. */
  precision: 'fp32' | 'bf16';
  /** The native pool's or the TypeScript GEMM's threads (null on the gpu backend). */
  threads: number | null;
  /** 1-, 5- and 15-minute load averages when the benchmark started. */
  loadStart: number[];
  /** The float32 GEMM roofline measured at the start (with --peers; null when it could not be, absent without --peers). */
  roofline?: Roofline | null;
}

/** The peer's side of one configuration. */
export interface PeerRecord {
  kind: PeerKind;
  /** The peer's self-description, e.g. "torch_charlstm.py (torch 2.13.0+cpu, 2 threads)". */
  name: string;
  /** Its train_chars_per_s (the median over --repeat runs). */
  charsPerSecond: number;
  /** charsPerSecond x charnn's FLOP count of the configuration (not the peer's own count). */
  gflops: number;
  /** Each run's chars/s. */
  runs: number[];
  /** The command line of the (last) run. */
  command: string;
}

/**
 * One configuration's result: what `--json` prints, one object per line, and what a table
 * row shows.
 */
export interface BenchRecord {
  config: string;
  title: string;
  model: { cell: string; hidden: number; layers: number; embed: number; vocabSize: number };
  batch: number;
  seq: number;
  optimizer: string;
  backend: string;
  /** Threads charnn used, native or TypeScript (null on the gpu backend). */
  threads: number | null;
  warmup: number;
  /** Measured iterations and their seconds (of the run whose rate is the median). */
  iters: number;
  seconds: number;
  /** charnn's training throughput: characters (tokens) per second, median over --repeat runs. */
  charsPerSecond: number;
  /** Forward + backward FLOPs per character (see flopsPerToken). */
  flopsPerChar: number;
  gflops: number;
  /** Each run's chars/s. */
  runs: number[];
  /** Loss of the last measured window, nats per char. */
  lastLoss: number;
  /** null without --peers. */
  peer: PeerRecord | null;
  /** Set when --peers was given and the peer failed. */
  peerError: string | null;
  /** The machine's float32 GEMM roofline in GFLOP/s (roofline.ts), null without --peers or numpy. */
  rooflineGflops: number | null;
  /** gflops / rooflineGflops, or null without a roofline. */
  rooflineFraction: number | null;
  /** charnn / peer chars/s, or null without a peer result. */
  ratio: number | null;
  /** The ratio this configuration should reach, and whether it did (null without a peer). */
  target: number;
  targetMet: boolean | null;
  /** 1-minute load average when the configuration finished. */
  loadAfter: number;
  machine: BenchMachine;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const int = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });

export function formatRate(x: number): string {
  return Number.isFinite(x) ? int.format(x) : '-';
}

export function formatGflops(x: number): string {
  return Number.isFinite(x) ? (x >= 100 ? x.toFixed(0) : x >= 10 ? x.toFixed(1) : x.toFixed(2)) : '-';
}

export function formatRatio(x: number | null): string {
  if (x === null || !Number.isFinite(x)) return '-';
  return `${x >= 10 ? x.toFixed(1) : x.toFixed(2)}x`;
}

/** A short peer name for the table: "PyTorch 2.13.0+cpu" or "numpy 2.4.6". */
export function shortPeerName(p: PeerRecord): string {
  const torch = /torch ([^\s,)]+)/.exec(p.name);
  if (p.kind === 'torch') return torch ? `PyTorch ${torch[1]}` : 'PyTorch';
  const np = /numpy ([^\s,)]+)/.exec(p.name);
  return np ? `numpy ${np[1]}` : 'numpy';
}

/** Left-aligned first column(s), right-aligned numbers; columns two spaces apart. */
export function formatTable(header: string[], rows: string[][], rightAligned: boolean[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (rightAligned[i] ? c.padStart(widths[i]) : c.padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

function describeMachine(m: BenchMachine): string {
  const be = m.isa ? `${m.backend} (${m.isa}, ${m.threads} thread${m.threads === 1 ? '' : 's'}${m.precision === 'bf16' ? ', bf16 products' : ''})` : m.device ? `${m.backend} on ${m.device}` : m.backend;
  return `${m.cpu}, ${m.cores} cores; node ${m.node}; backend ${be}; load average ${m.loadStart.map((x) => x.toFixed(2)).join(' ')} at start`;
}

/** The human-readable report: a line about the machine, the table, and notes. */
export function formatReport(records: readonly BenchRecord[], machine: BenchMachine): string {
  const withPeers = records.some((r) => r.peer !== null || r.peerError !== null);
  const withRoofline = records.some((r) => r.rooflineFraction !== null);
  const header = ['config', 'model', 'iters', 'chars/s', 'GFLOP/s'];
  const right = [false, false, true, true, true];
  if (withRoofline) {
    header.push('of roofline');
    right.push(true);
  }
  if (withPeers) {
    header.push('peer', 'peer chars/s', 'peer GFLOP/s', 'charnn/peer', 'target');
    right.push(false, true, true, true, false);
  }
  const rows = records.map((r) => {
    const row = [r.config, r.title, String(r.iters), formatRate(r.charsPerSecond), formatGflops(r.gflops)];
    if (withRoofline) row.push(r.rooflineFraction === null ? '-' : `${(r.rooflineFraction * 100).toFixed(0)}%`);
    if (withPeers) {
      if (r.peer) {
        const met = r.targetMet === null ? '' : r.targetMet ? ' met' : ' MISSED';
        row.push(shortPeerName(r.peer), formatRate(r.peer.charsPerSecond), formatGflops(r.peer.gflops), formatRatio(r.ratio), `>= ${formatRatio(r.target)}${met}`);
      } else {
        row.push(r.peerError ? 'failed' : '-', '-', '-', '-', `>= ${formatRatio(r.target)}`);
      }
    }
    return row;
  });
  const notes: string[] = [];
  if (machine.roofline) notes.push(`roofline: ${formatGflops(machine.roofline.gflops)} GFLOP/s (${machine.roofline.source}); of roofline: charnn's GFLOP/s as a fraction of it`);
  else if (machine.roofline === null) notes.push('roofline: not measured (the Python with numpy failed; stderr says why)');
  for (const r of records) if (r.peerError) notes.push(`${r.config}: peer failed: ${r.peerError}`);
  const loads = records.map((r) => r.loadAfter);
  if (loads.length > 0) notes.push(`load average (1 min) after each configuration: ${loads.map((x) => x.toFixed(2)).join(', ')}`);
  notes.push('chars/s: training characters per second after warm-up; GFLOP/s: chars/s x forward+backward matrix FLOPs per char (one-hot input counted as a lookup), the same count for charnn and its peer');
  return [`charnn bench: ${describeMachine(machine)}`, '', formatTable(header, rows, right), '', ...notes].join('\n') + '\n';
}

/** `--json`: one line per configuration. */
export function formatJsonLine(r: BenchRecord): string {
  return `${JSON.stringify(r, (_k, v: unknown) => (typeof v === 'number' && !Number.isFinite(v) ? null : v))}\n`;
}
