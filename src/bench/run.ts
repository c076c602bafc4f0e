import { cpus, loadavg } from 'node:os';
import type { Backend } from '../backend/backend.js';
import { type CharnnRunResult, runCharnn } from './charnn-run.js';
import type { BenchConfig, PeerKind } from './configs.js';
import { gflops } from './flops.js';
import { OpTimer } from './op-timer.js';
import { type PeerReport, peerInvocation, peerPython, runPeer } from './peers.js';
import { type BenchMachine, type BenchRecord, type PeerRecord, formatGflops, formatJsonLine, formatRate, formatRatio, formatReport, median } from './report.js';
import { measureRoofline, rooflineFraction } from './roofline.js';

export interface BenchOptions {
  configs: readonly BenchConfig[];
  corpus: string;
  cacheDir: string;
  backend: Backend;
  /** Measured iterations and warm-up for every configuration (undefined = each one's own). */
  iters?: number;
  warmup?: number;
  /** Measure each run for this many seconds instead of a number of iterations (0 = off). */
  seconds: number;
  /** Run the peers too. */
  peers: boolean;
  peersDir: string;
  /** Python for the numpy peer (PyTorch's comes from torch-env.sh). */
  python: string;
  /** Runs per configuration (charnn and peer alternating); the medians are reported. */
  repeat: number;
  seed: number;
  /** Native threads for every configuration (undefined = each one's own: the pool, or 1 for min-char-rnn). */
  threads?: number;
  json: boolean;
  /** A peer run longer than this is stopped (ms). */
  peerTimeoutMs?: number;
  /** Time every backend op and print where each configuration's time goes (stderr). */
  profile?: boolean;
}

export interface BenchIO {
  /** The report: JSON lines as each configuration finishes, or the table at the end. */
  out(text: string): void;
  /** Progress lines (stderr). */
  progress(line: string): void;
}

export interface BenchOutcome {
  records: BenchRecord[];
  /** Configurations whose peer failed. */
  peerFailures: number;
}

/** Where the benchmark runs: the CPU, the backend and the load on the machine. */
export function describeMachine(backend: Backend): BenchMachine {
  const info = (backend as { info?: { isa: string; threads: number } }).info;
  const cpuList = cpus();
  return {
    cpu: cpuList[0]?.model.trim() ?? 'unknown CPU',
    cores: cpuList.length,
    node: process.version,
    backend: backend.name,
    device: (backend as { adapterName?: string | null }).adapterName ?? null,
    isa: info?.isa ?? null,
    precision: (backend as { gemmPrecision?: 'fp32' | 'bf16' }).gemmPrecision ?? 'fp32',
    threads: info?.threads ?? null,
    loadStart: loadavg().map((x) => Math.round(x * 100) / 100),
  };
}

function peerRecord(kind: PeerKind, reports: PeerReport[], flopsPerChar: number, command: string): PeerRecord {
  const runs = reports.map((r) => r.trainCharsPerSecond);
  const cps = median(runs);
  return { kind, name: reports[reports.length - 1].peer, charsPerSecond: cps, gflops: gflops(cps, flopsPerChar), runs, command };
}

/**
 * Run the benchmark: every configuration with charnn (in this process) and, with `peers`, its
 * peer right after it (alternating, with `repeat` > 1), then report. JSON lines are written as
 * each configuration finishes; the table at the end.
 */
export async function runBench(o: BenchOptions, io: BenchIO): Promise<BenchOutcome> {
  const machine = describeMachine(o.backend);
  if (machine.loadStart[0] > Math.max(1, machine.cores * 0.75)) {
    io.progress(`note: load average ${machine.loadStart[0].toFixed(2)} on ${machine.cores} cores: other processes are running and the numbers will be noisy`);
  }
  // The CPU's limit says nothing about a GPU backend's rate: measured on the CPU backends only.
  if (o.peers && !o.backend.name.startsWith('gpu')) {
    // Before any configuration, so that it is measured on the same machine state as them.
    io.progress(`roofline: float32 GEMM through ${o.python} and numpy ...`);
    const m = await measureRoofline(o.python);
    machine.roofline = 'roofline' in m ? m.roofline : null;
    io.progress('roofline' in m ? `roofline: ${formatGflops(m.roofline.gflops)} GFLOP/s (${m.roofline.source})` : `roofline: not measured: ${m.error}`);
  }
  const rooflineGflops = machine.roofline ? Math.round(machine.roofline.gflops * 1000) / 1000 : null;
  const pythons = new Map<PeerKind, Promise<string>>();
  const records: BenchRecord[] = [];
  let peerFailures = 0;
  for (const cfg of o.configs) {
    const iters = o.iters ?? cfg.iters;
    const warmup = o.warmup ?? cfg.warmup;
    const threads = o.threads ?? cfg.threads;
    const what = o.seconds > 0 ? `${warmup} warm-up iterations + ${o.seconds} s` : `${warmup} warm-up + ${iters} iterations`;
    const charnnRuns: CharnnRunResult[] = [];
    const peerRuns: PeerReport[] = [];
    let peerError: string | null = null;
    let command = '';
    for (let rep = 0; rep < o.repeat; rep++) {
      const tag = o.repeat > 1 ? ` (run ${rep + 1}/${o.repeat})` : '';
      io.progress(`${cfg.id}: charnn, ${cfg.title}, ${what}${tag} ...`);
      const timer = o.profile ? new OpTimer() : undefined;
      const r = await runCharnn(cfg, { corpus: o.corpus, cacheDir: o.cacheDir, backend: o.backend, iters, warmup, seconds: o.seconds, seed: o.seed, threads: threads ?? null, timer });
      charnnRuns.push(r);
      io.progress(`${cfg.id}: charnn ${formatRate(r.charsPerSecond)} chars/s, ${(gflops(r.charsPerSecond, r.flopsPerChar)).toFixed(1)} GFLOP/s (${r.iters} iterations in ${r.seconds.toFixed(2)} s, loss ${r.lastLoss.toFixed(3)})`);
      if (r.profile) io.progress(`${cfg.id}: where the time of a measured iteration goes (timed per op; timing itself slows tiny ops):\n${r.profile}`);
      if (o.peers && peerError === null) {
        const inv = peerInvocation(cfg, { iters, warmup, seconds: o.seconds, seed: o.seed, corpus: o.corpus }, o.peersDir);
        try {
          if (!pythons.has(cfg.peer)) pythons.set(cfg.peer, peerPython(cfg.peer, o.peersDir, o.python));
          const python = await pythons.get(cfg.peer)!;
          const env = Object.entries(inv.env).map(([k, v]) => `${k}=${v} `).join('');
          command = `${env}${python} ${inv.script} ${inv.args.join(' ')}`;
          io.progress(`${cfg.id}: peer: ${command}`);
          const p = await runPeer(python, inv, o.peerTimeoutMs ?? 30 * 60_000);
          peerRuns.push(p);
          io.progress(`${cfg.id}: ${p.peer}: ${formatRate(p.trainCharsPerSecond)} chars/s (${p.steps} steps, ${p.seconds} s); charnn/peer ${formatRatio(r.charsPerSecond / p.trainCharsPerSecond)}`);
        } catch (err) {
          peerError = (err as Error).message;
          io.progress(`${cfg.id}: peer failed: ${peerError}`);
        }
      }
    }
    // The run whose rate is the median (the lower middle one for an even count) supplies the details.
    const rates = charnnRuns.map((r) => r.charsPerSecond);
    const cps = median(rates);
    const mid = charnnRuns.reduce((best, r) => (Math.abs(r.charsPerSecond - cps) < Math.abs(best.charsPerSecond - cps) ? r : best));
    const peer = peerRuns.length > 0 && peerError === null ? peerRecord(cfg.peer, peerRuns, mid.flopsPerChar, command) : null;
    if (peerError !== null) peerFailures++;
    const ratio = peer ? cps / peer.charsPerSecond : null;
    const fraction = rooflineFraction(gflops(cps, mid.flopsPerChar), rooflineGflops);
    const record: BenchRecord = {
      config: cfg.id,
      title: cfg.title,
      model: { cell: cfg.cell, hidden: cfg.hidden, layers: cfg.layers, embed: cfg.embed, vocabSize: mid.vocabSize },
      batch: cfg.batch,
      seq: cfg.seq,
      optimizer: cfg.optimizer,
      backend: o.backend.name,
      threads: mid.threads,
      warmup,
      iters: mid.iters,
      seconds: Math.round(mid.seconds * 1000) / 1000,
      charsPerSecond: Math.round(cps * 10) / 10,
      flopsPerChar: mid.flopsPerChar,
      gflops: Math.round(gflops(cps, mid.flopsPerChar) * 1000) / 1000,
      runs: rates.map((x) => Math.round(x * 10) / 10),
      lastLoss: Math.round(mid.lastLoss * 1e4) / 1e4,
      peer,
      peerError,
      rooflineGflops,
      rooflineFraction: fraction === null ? null : Math.round(fraction * 1e4) / 1e4,
      ratio: ratio === null ? null : Math.round(ratio * 1000) / 1000,
      target: cfg.target,
      targetMet: ratio === null ? null : ratio >= cfg.target,
      loadAfter: Math.round(loadavg()[0] * 100) / 100,
      machine,
    };
    records.push(record);
    if (o.json) io.out(formatJsonLine(record));
  }
  if (!o.json) io.out(formatReport(records, machine));
  return { records, peerFailures };
}
