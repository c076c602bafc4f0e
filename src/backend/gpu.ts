import { type Backend, type DType, type HostArray, type PackedMatrix, type Tensor, asMatrix, checkRowVector, checkRowsOfTable, gemmDims } from './backend.js';
import * as K from './gpu/kernels.js';
import { GpuLauncher, GpuTensor, type Storage, checkedSize, gt } from './gpu/launcher.js';
import { HostMemory, WebGpuMemory } from './gpu/memory.js';
import { loadGpuJs } from './gpu/gpujs.js';
import { type AdapterFound, installNavigatorGpu } from './gpu/webgpu.js';

/**
 * The gpu backend: every op a gpu.js kernel. In gpu.js's `webgpu` mode the kernels are WGSL
 * compute shaders and every tensor is a device buffer (a gpu.js pipeline handle), so weights,
 * optimizer state and a whole window's activations stay on the GPU; only `read` (the losses,
 * sampled logits, checkpoints) and `sumSquares` come back. In gpu.js's `cpu` mode the same
 * kernel sources run as JavaScript loops over Float32Arrays: that is how the tests check the
 * GPU code on machines without one (test/backend-gpu.test.ts).
 *
 * The machinery (views of root buffers, the queue, kernel cache and launches) is gpu/launcher.ts;
 * this file is the ops.
 *
 * ids (i32 tensors) live on the device as float32 (exact below 2^24) with a host copy: the host
 * writes every id, so id ranges are checked as the reference checks them and scatterAddRows'
 * row index is built on the host.
 */

export type GpuMode = 'cpu' | 'webgpu';

export { GpuTensor, MAX_GPU_TENSOR } from './gpu/launcher.js';

export interface GpuBackendOptions {
  mode: GpuMode;
  /** webgpu mode: the adapter to run on (from probeAdapter). */
  adapter?: AdapterFound;
}

export class GpuBackend implements Backend {
  readonly name: string;
  readonly mode: GpuMode;
  /** The adapter's name in webgpu mode, for the device line on stderr. */
  readonly adapterName: string | null;
  /** Whether that adapter is a software renderer (CHARNN_WEBGPU_SOFTWARE=1, tests). */
  readonly software: boolean;
  private readonly q: GpuLauncher;
  /** The last transpose made of each B of a GEMM (see gemm), kept while B is unchanged. */
  private readonly transposes = new WeakMap<Storage, { offset: number; rows: number; cols: number; version: number; t: Storage }>();

  constructor(opts: GpuBackendOptions) {
    this.mode = opts.mode;
    this.name = opts.mode === 'webgpu' ? 'gpu' : 'gpu-cpu';
    this.adapterName = opts.adapter?.name ?? null;
    this.software = opts.adapter?.software ?? false;
    if (opts.mode === 'webgpu') {
      if (!opts.adapter) throw new Error('the gpu backend in webgpu mode needs an adapter');
      installNavigatorGpu(opts.adapter);
    }
    const { GPU } = loadGpuJs();
    this.q = new GpuLauncher(new GPU({ mode: opts.mode }), opts.mode === 'webgpu' ? new WebGpuMemory() : new HostMemory());
  }

  /** Profiling (`charnn bench --profile`): see GpuLauncher.profiler. */
  get profiler(): GpuLauncher['profiler'] {
    return this.q.profiler;
  }

  set profiler(p: GpuLauncher['profiler']) {
    this.q.profiler = p;
  }

  /** How many launches were recorded, and run by gpu.js itself (webgpu mode; for tests). */
  launchCounts(): { recorded: number; direct: number } {
    return this.q.launchCounts();
  }

  /** Destroy the gpu.js instance and its kernels (the tensors become unusable). */
  destroy(): Promise<void> {
    return this.q.destroy();
  }

  // ---- memory -------------------------------------------------------------------------------

  zeros(shape: readonly number[], dtype: DType = 'f32'): Tensor {
    return new GpuTensor(this.q.storage(checkedSize(shape), dtype), 0, [...shape], dtype);
  }

  upload(data: ArrayLike<number>, shape: readonly number[], dtype: DType = 'f32'): Tensor {
    const t = this.zeros(shape, dtype);
    this.write(t, data);
    return t;
  }

  write(t: Tensor, data: ArrayLike<number>): void {
    const v = gt(t);
    if (data.length !== v.size) throw new Error(`write: ${data.length} values into a tensor of ${v.size}`);
    if (v.storage.host) v.storage.host.set(data, v.offset);
    v.storage.version++;
    // Copied now: the caller may reuse its array before the queue gets here.
    const values = Float32Array.from(data);
    this.q.writeRoot(v.storage, v.offset, values);
  }

  async read(t: Tensor): Promise<HostArray> {
    const v = gt(t);
    if (v.storage.host) {
      // Still wait for the ops before it, as the interface promises (and to report a failure).
      await this.q.enqueue(() => undefined);
      return v.storage.host.slice(v.offset, v.offset + v.size);
    }
    return this.q.readRoot(v.storage, v.offset, v.size);
  }

  rows(t: Tensor, start: number, count: number): Tensor {
    const v = gt(t);
    const rowSize = v.shape.length <= 1 ? v.size : v.size / v.shape[0];
    const rowsTotal = v.shape.length <= 1 ? 1 : v.shape[0];
    if (start < 0 || count < 0 || start + count > rowsTotal) {
      throw new Error(`rows ${start}..${start + count} out of range for shape [${v.shape.join(', ')}]`);
    }
    const shape = v.shape.length <= 1 ? [count * rowSize] : [count, ...v.shape.slice(1)];
    return new GpuTensor(v.storage, v.offset + start * rowSize, shape, v.dtype);
  }

  dispose(t: Tensor): void {
    const v = gt(t);
    if (v.offset === 0 && v.size === v.storage.size) this.q.drop(v.storage);
  }

  // ---- elementwise --------------------------------------------------------------------------

  fill(t: Tensor, value: number): void {
    const v = gt(t);
    if (v.storage.host) v.storage.host.fill(value, v.offset, v.offset + v.size);
    this.q.exec([this.q.launch(K.FILL, v, [], [], [value])]);
  }

  copy(src: Tensor, dst: Tensor): void {
    const s = gt(src);
    const d = gt(dst);
    sameSize(s, d, 'copy');
    if (d.storage.host) {
      if (!s.storage.host) throw new Error('copy: float32 values into an i32 tensor');
      d.storage.host.set(s.storage.host.subarray(s.offset, s.offset + s.size), d.offset);
    }
    this.q.exec([this.q.launch(K.COPY, d, [s.storage], [s.offset], [])]);
  }

  axpy(alpha: number, x: Tensor, y: Tensor): void {
    const xs = f32(x);
    const ys = f32(y);
    sameSize(xs, ys, 'axpy');
    this.q.exec([this.q.launch(K.AXPY, ys, [xs.storage], [xs.offset], [alpha])]);
  }

  scale(x: Tensor, s: number): void {
    this.q.exec([this.q.launch(K.SCALE, f32(x), [], [], [s])]);
  }

  mul(a: Tensor, b: Tensor, out: Tensor): void {
    const as = f32(a);
    const bs = f32(b);
    const o = f32(out);
    sameSize(as, bs, 'mul');
    sameSize(as, o, 'mul');
    this.q.exec([this.q.launch(K.MUL, o, [as.storage, bs.storage], [as.offset, bs.offset], [])]);
  }

  mulBackward(a: Tensor, b: Tensor, dOut: Tensor, dA: Tensor, dB: Tensor): void {
    const as = f32(a);
    const bs = f32(b);
    const d = f32(dOut);
    const da = f32(dA);
    const db = f32(dB);
    for (const t of [bs, d, da, db]) sameSize(as, t, 'mulBackward');
    // One op, two launches of the same kernel: both read dOut before either result lands.
    this.q.exec([
      this.q.launch(K.MUL, da, [d.storage, bs.storage], [d.offset, bs.offset], []),
      this.q.launch(K.MUL, db, [d.storage, as.storage], [d.offset, as.offset], []),
    ]);
  }

  // ---- linear algebra -----------------------------------------------------------------------

  /** Nothing to prepare: the pack is B itself, and each product is a gemm. */
  packMatrix(B: Tensor, transB: boolean): PackedMatrix {
    return { source: B, transB };
  }

  gemmPacked(transA: boolean, alpha: number, A: Tensor, packed: PackedMatrix, beta: number, C: Tensor): void {
    this.gemm(transA, packed.transB, alpha, A, packed.source, beta, C);
  }

  gemm(transA: boolean, transB: boolean, alpha: number, A: Tensor, B: Tensor, beta: number, C: Tensor): void {
    const { M, N, K: Kd } = gemmDims(transA, transB, A, B, C);
    const a = f32(A);
    const b = f32(B);
    const c = f32(C);
    const [bRoot, bOffset] = transB ? [this.transposed(b, N, Kd), 0] : [b.storage, b.offset];
    const slices = K.gemmSlices(M, N, Kd);
    if (slices === 1) {
      this.q.exec([this.q.launch(K.gemmKernel(transA), c, [a.storage, bRoot], [a.offset, bOffset], [alpha, beta], { M, N, K: Kd })]);
      return;
    }
    const part = this.q.storage(slices * M * N, 'f32', true);
    this.q.exec([this.q.launch(K.gemmPartialKernel(transA), part, [a.storage, bRoot], [a.offset, bOffset], [], { M, N, K: Kd, KC: Math.ceil(Kd / slices) })]);
    this.q.exec([this.q.launch(K.GEMM_SUM_SLICES, c, [part], [], [alpha, beta], { MN: M * N, S: slices })]);
    this.q.drop(part);
  }

  /**
   * The view b [rows, cols] transposed, [cols, rows], as a root of its own. The backward pass
   * multiplies by the same transposed weights at every time step, so the last transpose of each
   * root is kept and reused until the root is written again.
   */
  private transposed(b: GpuTensor, rows: number, cols: number): Storage {
    const cached = this.transposes.get(b.storage);
    if (cached && cached.offset === b.offset && cached.rows === rows && cached.cols === cols && cached.version === b.storage.version) return cached.t;
    const t = cached && cached.t.size === rows * cols ? cached.t : this.q.storage(rows * cols, 'f32', true);
    this.q.exec([this.q.launch(K.TRANSPOSE, t, [b.storage], [b.offset], [], { N: rows, K: cols })]);
    this.transposes.set(b.storage, { offset: b.offset, rows, cols, version: b.storage.version, t });
    return t;
  }

  addRowVector(x: Tensor, b: Tensor): void {
    const [, m] = checkRowVector('addRowVector', 'bias', x, b);
    const bs = f32(b);
    this.q.exec([this.q.launch(K.ADD_ROW_VECTOR, f32(x), [bs.storage], [bs.offset], [], { M: m })]);
  }

  sumRows(x: Tensor, out: Tensor, accumulate: boolean): void {
    const [n, m] = checkRowVector('sumRows', 'out', x, out);
    const xs = f32(x);
    const o = f32(out);
    if (n <= K.ROW_CHUNK) {
      this.q.exec([this.q.launch(K.SUM_ROWS, o, [xs.storage], [xs.offset, accumulate ? 1 : 0], [], { N: n, M: m })]);
      return;
    }
    const p = Math.ceil(n / K.ROW_CHUNK);
    const partial = this.q.storage(p * m, 'f32', true);
    this.q.exec([this.q.launch(K.SUM_ROWS_PARTIAL, partial, [xs.storage], [xs.offset], [], { N: n, M: m, R: K.ROW_CHUNK })]);
    this.q.exec([this.q.launch(K.SUM_ROWS, o, [partial], [0, accumulate ? 1 : 0], [], { N: p, M: m })]);
    this.q.drop(partial);
  }

  gatherRows(table: Tensor, ids: Tensor, out: Tensor): void {
    const t = f32(table);
    const o = f32(out);
    const { d } = rowsOfTable('gatherRows', 'out', o, ids, table);
    const i = gt(ids);
    this.q.exec([this.q.launch(K.GATHER_ROWS, o, [t.storage, i.storage], [t.offset, i.offset], [], { D: d })]);
  }

  scatterAddRows(dOut: Tensor, ids: Tensor, dTable: Tensor): void {
    const g = f32(dOut);
    const t = f32(dTable);
    const { idx, v, d } = rowsOfTable('scatterAddRows', 'dOut', g, ids, dTable);
    if (idx.length === 0) return;
    // CSR of the ids by row: start [V + 1], order [N] (positions n, increasing within a row).
    const start = new Float32Array(v + 1);
    for (const id of idx) start[id + 1]++;
    for (let r = 0; r < v; r++) start[r + 1] += start[r];
    const next = start.slice(0, v);
    const order = new Float32Array(idx.length);
    for (let n = 0; n < idx.length; n++) order[next[idx[n]]++] = n;
    this.q.exec([this.q.launch(K.SCATTER_ADD_ROWS, t, [g.storage, start, order], [g.offset], [], { D: d, N: idx.length })]);
  }

  scatterRows(src: Tensor, ids: Tensor, table: Tensor): void {
    const s = f32(src);
    const t = f32(table);
    const { idx, v, d } = rowsOfTable('scatterRows', 'src', s, ids, table);
    if (idx.length === 0) return;
    // The inverse of ids: table row -> its row in src, -1 for rows left alone.
    const slot = new Float32Array(v).fill(-1);
    for (let n = 0; n < idx.length; n++) slot[idx[n]] = n;
    this.q.exec([this.q.launch(K.SCATTER_ROWS, t, [s.storage, slot], [s.offset], [], { D: d })]);
  }

  // ---- recurrent cells ----------------------------------------------------------------------

  rnnForward(pre: Tensor, h: Tensor): void {
    const p = f32(pre);
    const hs = f32(h);
    sameSize(p, hs, 'rnnForward');
    this.q.exec([this.q.launch(K.RNN_FORWARD, hs, [p.storage], [p.offset], [])]);
  }

  rnnBackward(h: Tensor, dh: Tensor, dPre: Tensor): void {
    const hs = f32(h);
    const d = f32(dh);
    const dp = f32(dPre);
    sameSize(hs, dp, 'rnnBackward');
    this.q.exec([this.q.launch(K.RNN_BACKWARD, dp, [hs.storage, d.storage], [hs.offset, d.offset], [])]);
  }

  lstmForward(gates: Tensor, cPrev: Tensor, c: Tensor, h: Tensor): void {
    const [, h4] = asMatrix(gates);
    const H = h4 / 4;
    const g = f32(gates);
    const cp = f32(cPrev);
    const cs = f32(c);
    const hs = f32(h);
    cellSizes('lstmForward', g.size / 4, [cp, cs, hs]);
    // c from the pre-activations, then h from the new c, then the gates in place.
    this.q.exec([this.q.launch(K.LSTM_C, cs, [g.storage, cp.storage], [g.offset, cp.offset], [], { H })]);
    this.q.exec([this.q.launch(K.LSTM_H, hs, [g.storage, cs.storage], [g.offset, cs.offset], [], { H })]);
    this.q.exec([this.q.launch(K.LSTM_ACT, g, [], [], [], { H })]);
  }

  lstmBackward(gates: Tensor, cPrev: Tensor, c: Tensor, dh: Tensor, dc: Tensor, dGates: Tensor): void {
    const [, h4] = asMatrix(gates);
    const H = h4 / 4;
    const g = f32(gates);
    const cp = f32(cPrev);
    const cs = f32(c);
    const d = f32(dh);
    const dcs = f32(dc);
    const dg = f32(dGates);
    cellSizes('lstmBackward', g.size / 4, [cp, cs, d, dcs]);
    sameSize(g, dg, 'lstmBackward');
    // Both from dc as it came in.
    this.q.exec([
      this.q.launch(K.LSTM_DGATES, dg, [g.storage, cp.storage, cs.storage, d.storage, dcs.storage], [g.offset, cp.offset, cs.offset, d.offset, dcs.offset], [], { H }),
      this.q.launch(K.LSTM_DC, dcs, [g.storage, cs.storage, d.storage, dcs.storage], [g.offset, cs.offset, d.offset, dcs.offset], [], { H }),
    ]);
  }

  gruForward(xg: Tensor, hg: Tensor, hPrev: Tensor, h: Tensor): void {
    const [, h3] = asMatrix(xg);
    const H = h3 / 3;
    const x = f32(xg);
    const hh = f32(hg);
    const hp = f32(hPrev);
    const hs = f32(h);
    sameSize(x, hh, 'gruForward');
    cellSizes('gruForward', x.size / 3, [hp, hs]);
    // h from the pre-activations, then the gates in place.
    this.q.exec([this.q.launch(K.GRU_H, hs, [x.storage, hh.storage, hp.storage], [x.offset, hh.offset, hp.offset], [], { H })]);
    this.q.exec([this.q.launch(K.GRU_ACT, x, [hh.storage], [hh.offset], [], { H })]);
  }

  gruBackward(gates: Tensor, hg: Tensor, hPrev: Tensor, dh: Tensor, dXg: Tensor, dHg: Tensor, dhPrev: Tensor): void {
    const [, h3] = asMatrix(gates);
    const H = h3 / 3;
    const g = f32(gates);
    const hh = f32(hg);
    const hp = f32(hPrev);
    const d = f32(dh);
    const dx = f32(dXg);
    const dhg = f32(dHg);
    const dhp = f32(dhPrev);
    for (const t of [hh, dx, dhg]) sameSize(g, t, 'gruBackward');
    cellSizes('gruBackward', g.size / 3, [hp, d, dhp]);
    const arrays = [g.storage, hh.storage, hp.storage, d.storage];
    const ints = [g.offset, hh.offset, hp.offset, d.offset];
    this.q.exec([
      this.q.launch(K.GRU_DXG, dx, arrays, ints, [], { H }),
      this.q.launch(K.GRU_DHG, dhg, arrays, ints, [], { H }),
      this.q.launch(K.GRU_DHPREV, dhp, [g.storage, d.storage], [g.offset, d.offset], [], { H }),
    ]);
  }

  // ---- output layer -------------------------------------------------------------------------

  /** Scratch [2N]: each row's max and log-sum-exp of (z - max) * invT. */
  private rowStats(z: GpuTensor, n: number, v: number, invT: number): Storage {
    const st = this.q.storage(2 * n, 'f32', true);
    this.q.exec([this.q.launch(K.ROW_STATS, st, [z.storage], [z.offset], [invT], { V: v })]);
    return st;
  }

  softmaxCrossEntropy(logits: Tensor, targets: Tensor, losses: Tensor, dLogits: Tensor | null, gradScale: number): void {
    const [n, v] = asMatrix(logits);
    const z = f32(logits);
    const tg = hostIds(targets);
    const ls = f32(losses);
    if (tg.length !== n || ls.size !== n) throw new Error(`softmaxCrossEntropy: ${n} rows, ${tg.length} targets, ${ls.size} losses`);
    checkIds(tg, v, 'softmaxCrossEntropy');
    if (n === 0) return;
    const t = gt(targets);
    const st = this.rowStats(z, n, v, 1);
    const launches = [this.q.launch(K.CE_LOSS, ls, [z.storage, st, t.storage], [z.offset, t.offset], [], { V: v })];
    if (dLogits) {
      const dz = f32(dLogits);
      sameSize(z, dz, 'softmaxCrossEntropy');
      launches.push(this.q.launch(K.CE_GRAD, dz, [z.storage, st, t.storage], [z.offset, t.offset], [gradScale], { V: v }));
    }
    this.q.exec(launches);
    this.q.drop(st);
  }

  softmax(logits: Tensor, probs: Tensor, temperature: number): void {
    const [n, v] = asMatrix(logits);
    const z = f32(logits);
    const p = f32(probs);
    sameSize(z, p, 'softmax');
    if (n === 0) return;
    const st = this.rowStats(z, n, v, 1 / temperature);
    this.q.exec([this.q.launch(K.SOFTMAX, p, [z.storage, st], [z.offset], [1 / temperature], { V: v })]);
    this.q.drop(st);
  }

  // ---- regularisation -----------------------------------------------------------------------

  dropout(x: Tensor, out: Tensor, p: number, seed: number): void {
    const xs = f32(x);
    const os = f32(out);
    sameSize(xs, os, 'dropout');
    const s = seed >>> 0;
    // keep when hash >= p * 2^32, i.e. hash >= ceil(p * 2^32), compared as two 16-bit halves.
    const thr = Math.ceil(p * 4294967296);
    const bytes = [s & 255, (s >>> 8) & 255, (s >>> 16) & 255, s >>> 24];
    this.q.exec([this.q.launch(K.DROPOUT, os, [xs.storage], [xs.offset, ...bytes, Math.floor(thr / 65536), thr % 65536], [1 / (1 - p)])]);
  }

  // ---- optimisation -------------------------------------------------------------------------

  clip(g: Tensor, limit: number): void {
    this.q.exec([this.q.launch(K.CLIP, f32(g), [], [], [limit])]);
  }

  async sumSquares(tensors: readonly Tensor[]): Promise<number> {
    const C = 256;
    // Every tensor's partial sums side by side in one scratch, so one read brings them all back.
    const xs = tensors.map(f32).filter((x) => x.size > 0);
    const counts = xs.map((x) => Math.ceil(x.size / C));
    const total = counts.reduce((a, b) => a + b, 0);
    if (total === 0) return 0;
    const parts = this.q.storage(total, 'f32', true);
    let at = 0;
    for (const [k, x] of xs.entries()) {
      this.q.exec([this.q.launch(K.SUM_SQUARES, new GpuTensor(parts, at, [counts[k]], 'f32'), [x.storage], [x.offset], [], { N: x.size, C })]);
      at += counts[k];
    }
    const values = this.q.readRoot(parts, 0, total);
    this.q.drop(parts);
    let sum = 0;
    for (const v of await values) sum += v;
    return sum;
  }

  adagrad(p: Tensor, g: Tensor, mem: Tensor, memComp: Tensor, lr: number, eps: number): void {
    const [ps, gs, ms, cs] = [f32(p), f32(g), f32(mem), f32(memComp)];
    for (const t of [gs, ms, cs]) sameSize(ps, t, 'adagrad');
    // t = the new sum, into scratch; then p, memComp (both reading t) and mem = t.
    const t = this.q.storage(ps.size, 'f32', true);
    this.q.exec([this.q.launch(K.ADAGRAD_T, t, [gs.storage, ms.storage, cs.storage], [gs.offset, ms.offset, cs.offset], [])]);
    this.q.exec([
      this.q.launch(K.ADAGRAD_P, ps, [gs.storage, t], [gs.offset], [lr, eps]),
      this.q.launch(K.ADAGRAD_COMP, cs, [gs.storage, ms.storage, t], [gs.offset, ms.offset], []),
      this.q.launch(K.COPY, ms, [t], [0], []),
    ]);
    this.q.drop(t);
  }

  rmsprop(p: Tensor, g: Tensor, ms: Tensor, lr: number, alpha: number, eps: number): void {
    const [ps, gs, m] = [f32(p), f32(g), f32(ms)];
    for (const t of [gs, m]) sameSize(ps, t, 'rmsprop');
    this.q.exec([
      this.q.launch(K.RMSPROP_P, ps, [gs.storage, m.storage], [gs.offset, m.offset], [alpha, lr, eps]),
      this.q.launch(K.RMSPROP_MS, m, [gs.storage, m.storage], [gs.offset, m.offset], [alpha]),
    ]);
  }

  adam(p: Tensor, g: Tensor, m: Tensor, v: Tensor, lr: number, beta1: number, beta2: number, eps: number, step: number): void {
    const [ps, gs, ms, vs] = [f32(p), f32(g), f32(m), f32(v)];
    for (const t of [gs, ms, vs]) sameSize(ps, t, 'adam');
    const bc1 = 1 - Math.pow(beta1, step);
    const bc2 = 1 - Math.pow(beta2, step);
    const arrays = [gs.storage, ms.storage, vs.storage];
    const ints = [gs.offset, ms.offset, vs.offset];
    this.q.exec([
      this.q.launch(K.ADAM_P, ps, arrays, ints, [beta1, beta2, lr, bc1, bc2, eps]),
      this.q.launch(K.ADAM_M, ms, arrays, ints, [beta1, beta2]),
      this.q.launch(K.ADAM_V, vs, arrays, ints, [beta1, beta2]),
    ]);
  }
}

function f32(t: Tensor): GpuTensor {
  const v = gt(t);
  if (v.dtype !== 'f32') throw new Error('the gpu backend computes on float32 tensors; i32 tensors hold ids');
  return v;
}

/** The host copy of an i32 view. */
function hostIds(t: Tensor): Int32Array {
  const v = gt(t);
  if (!v.storage.host) throw new Error('expected an i32 tensor of ids');
  return v.storage.host.subarray(v.offset, v.offset + v.size);
}

function checkIds(ids: Int32Array, v: number, op: string): void {
  for (const id of ids) if (id < 0 || id >= v) throw new Error(`${op}: id ${id} outside [0, ${v})`);
}

/**
 * The checks the row ops share: `rows` [N, D] goes with ids [N] of a `table` [V, D], every id
 * in [0, V). Returns the ids' host copy and V, D.
 */
function rowsOfTable(op: string, rowsName: string, rows: GpuTensor, ids: Tensor, table: Tensor): { idx: Int32Array; v: number; d: number } {
  const [v, d] = checkRowsOfTable(op, rowsName, rows, ids, table);
  const idx = hostIds(ids);
  checkIds(idx, v, op);
  return { idx, v, d };
}

function sameSize(a: GpuTensor, b: GpuTensor, op: string): void {
  if (a.size !== b.size) throw new Error(`${op}: sizes ${a.size} and ${b.size} differ`);
}

function cellSizes(op: string, n: number, ts: GpuTensor[]): void {
  for (const t of ts) if (t.size !== n) throw new Error(`${op}: a state of ${t.size} values for ${n} cells`);
}
