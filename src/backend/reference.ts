import {
  type Backend,
  type DType,
  type HostArray,
  type PackedMatrix,
  type Tensor,
  asMatrix,
  checkRowVector,
  checkRowsOfTable,
  dropoutKeeps,
  gemmDims,
  shapeSize,
} from './backend.js';
import { type CpuArray, CpuTensor, cpu } from './cpu-tensor.js';

/**
 * The reference backend: every op written as plainly as correctness allows, in TypeScript.
 * It is the oracle the native and GPU backends are tested against, and the fallback where no
 * faster backend loads. With precision 'f64' it stores float64, which the gradient checks use
 * so that centered finite differences are accurate to ~1e-8 instead of float32's ~1e-3.
 */
export class ReferenceBackend implements Backend {
  readonly name: string;
  private readonly Float: Float32ArrayConstructor | Float64ArrayConstructor;

  constructor(readonly precision: 'f32' | 'f64' = 'f32') {
    this.name = precision === 'f32' ? 'reference' : 'reference-f64';
    this.Float = precision === 'f32' ? Float32Array : Float64Array;
  }

  // ---- memory -------------------------------------------------------------------------------

  zeros(shape: readonly number[], dtype: DType = 'f32'): Tensor {
    const n = shapeSize(shape);
    const data: CpuArray = dtype === 'i32' ? new Int32Array(n) : this.newFloatArray(n);
    return new CpuTensor(data, [...shape], dtype);
  }

  /**
   * The zeroed storage of every float tensor (`upload` goes through `zeros` too): a subclass
   * may place it elsewhere (the TypeScript backend uses shared memory, for its GEMM workers).
   */
  protected newFloatArray(n: number): Float32Array | Float64Array {
    return new this.Float(n);
  }

  upload(data: ArrayLike<number>, shape: readonly number[], dtype: DType = 'f32'): Tensor {
    const t = this.zeros(shape, dtype);
    this.write(t, data);
    return t;
  }

  write(t: Tensor, data: ArrayLike<number>): void {
    const d = cpu(t).data;
    if (data.length !== d.length) throw new Error(`write: ${data.length} values into a tensor of ${d.length}`);
    d.set(data);
  }

  async read(t: Tensor): Promise<HostArray> {
    return cpu(t).data.slice();
  }

  rows(t: Tensor, start: number, count: number): Tensor {
    return cpu(t).rows(start, count);
  }

  dispose(_t: Tensor): void {
    // Host memory is garbage-collected.
  }

  // ---- elementwise --------------------------------------------------------------------------

  fill(t: Tensor, value: number): void {
    cpu(t).data.fill(value);
  }

  copy(src: Tensor, dst: Tensor): void {
    const s = cpu(src).data;
    const d = cpu(dst).data;
    sameLength(s, d, 'copy');
    d.set(s);
  }

  axpy(alpha: number, x: Tensor, y: Tensor): void {
    const xs = cpu(x).data;
    const ys = cpu(y).data;
    sameLength(xs, ys, 'axpy');
    for (let i = 0; i < xs.length; i++) ys[i] += alpha * xs[i];
  }

  scale(x: Tensor, s: number): void {
    const xs = cpu(x).data;
    for (let i = 0; i < xs.length; i++) xs[i] *= s;
  }

  mul(a: Tensor, b: Tensor, out: Tensor): void {
    const as = cpu(a).data;
    const bs = cpu(b).data;
    const os = cpu(out).data;
    sameLength(as, bs, 'mul');
    sameLength(as, os, 'mul');
    for (let i = 0; i < as.length; i++) os[i] = as[i] * bs[i];
  }

  mulBackward(a: Tensor, b: Tensor, dOut: Tensor, dA: Tensor, dB: Tensor): void {
    const as = cpu(a).data;
    const bs = cpu(b).data;
    const d = cpu(dOut).data;
    const da = cpu(dA).data;
    const db = cpu(dB).data;
    for (const x of [bs, d, da, db]) sameLength(as, x, 'mulBackward');
    for (let i = 0; i < as.length; i++) {
      da[i] = d[i] * bs[i];
      db[i] = d[i] * as[i];
    }
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
    const { M, N, K } = gemmDims(transA, transB, A, B, C);
    const a = cpu(A).data;
    const b = cpu(B).data;
    const c = cpu(C).data;
    // Scale (or clear) C first, then accumulate alpha * op(A) op(B) with the loop order that
    // walks rows contiguously for each transpose case.
    if (beta === 0) c.fill(0);
    else if (beta !== 1) for (let i = 0; i < c.length; i++) c[i] *= beta;
    if (!transA && !transB) {
      // C[i, :] += A[i, k] * B[k, :]
      for (let i = 0; i < M; i++) {
        const ci = i * N;
        for (let k = 0; k < K; k++) {
          const aik = alpha * a[i * K + k];
          if (aik === 0) continue;
          const bk = k * N;
          for (let j = 0; j < N; j++) c[ci + j] += aik * b[bk + j];
        }
      }
    } else if (!transA && transB) {
      // C[i, j] += dot(A[i, :], B[j, :])
      for (let i = 0; i < M; i++) {
        const ai = i * K;
        for (let j = 0; j < N; j++) {
          const bj = j * K;
          let s = 0;
          for (let k = 0; k < K; k++) s += a[ai + k] * b[bj + k];
          c[i * N + j] += alpha * s;
        }
      }
    } else if (transA && !transB) {
      // C[i, :] += A[k, i] * B[k, :]   (A: [K, M])
      for (let k = 0; k < K; k++) {
        const ak = k * M;
        const bk = k * N;
        for (let i = 0; i < M; i++) {
          const aki = alpha * a[ak + i];
          if (aki === 0) continue;
          const ci = i * N;
          for (let j = 0; j < N; j++) c[ci + j] += aki * b[bk + j];
        }
      }
    } else {
      // C[i, j] += sum_k A[k, i] * B[j, k]   (A: [K, M], B: [N, K])
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) {
          let s = 0;
          for (let k = 0; k < K; k++) s += a[k * M + i] * b[j * K + k];
          c[i * N + j] += alpha * s;
        }
      }
    }
  }

  addRowVector(x: Tensor, b: Tensor): void {
    const [n, m] = checkRowVector('addRowVector', 'bias', x, b);
    const xs = cpu(x).data;
    const bs = cpu(b).data;
    for (let r = 0; r < n; r++) {
      const o = r * m;
      for (let j = 0; j < m; j++) xs[o + j] += bs[j];
    }
  }

  sumRows(x: Tensor, out: Tensor, accumulate: boolean): void {
    const [n, m] = checkRowVector('sumRows', 'out', x, out);
    const xs = cpu(x).data;
    const os = cpu(out).data;
    if (!accumulate) os.fill(0);
    for (let r = 0; r < n; r++) {
      const o = r * m;
      for (let j = 0; j < m; j++) os[j] += xs[o + j];
    }
  }

  gatherRows(table: Tensor, ids: Tensor, out: Tensor): void {
    const [v, d] = checkRowsOfTable('gatherRows', 'out', out, ids, table);
    const t = cpu(table).data;
    const idx = cpu(ids).data;
    const o = cpu(out).data;
    for (let n = 0; n < idx.length; n++) {
      const id = idx[n];
      if (id < 0 || id >= v) throw new Error(`gatherRows: id ${id} outside [0, ${v})`);
      o.set(t.subarray(id * d, id * d + d), n * d);
    }
  }

  scatterAddRows(dOut: Tensor, ids: Tensor, dTable: Tensor): void {
    const [v, d] = checkRowsOfTable('scatterAddRows', 'dOut', dOut, ids, dTable);
    const g = cpu(dOut).data;
    const idx = cpu(ids).data;
    const t = cpu(dTable).data;
    for (let n = 0; n < idx.length; n++) {
      const id = idx[n];
      if (id < 0 || id >= v) throw new Error(`scatterAddRows: id ${id} outside [0, ${v})`);
      const to = id * d;
      const from = n * d;
      for (let j = 0; j < d; j++) t[to + j] += g[from + j];
    }
  }

  scatterRows(src: Tensor, ids: Tensor, table: Tensor): void {
    const [v, d] = checkRowsOfTable('scatterRows', 'src', src, ids, table);
    const s = cpu(src).data;
    const idx = cpu(ids).data;
    const t = cpu(table).data;
    for (let n = 0; n < idx.length; n++) {
      const id = idx[n];
      if (id < 0 || id >= v) throw new Error(`scatterRows: id ${id} outside [0, ${v})`);
      t.set(s.subarray(n * d, n * d + d), id * d);
    }
  }

  // ---- recurrent cells ----------------------------------------------------------------------

  rnnForward(pre: Tensor, h: Tensor): void {
    const p = cpu(pre).data;
    const hs = cpu(h).data;
    sameLength(p, hs, 'rnnForward');
    for (let i = 0; i < p.length; i++) hs[i] = Math.tanh(p[i]);
  }

  rnnBackward(h: Tensor, dh: Tensor, dPre: Tensor): void {
    const hs = cpu(h).data;
    const d = cpu(dh).data;
    const dp = cpu(dPre).data;
    for (let i = 0; i < hs.length; i++) dp[i] = d[i] * (1 - hs[i] * hs[i]);
  }

  lstmForward(gates: Tensor, cPrev: Tensor, c: Tensor, h: Tensor): void {
    const [b, h4] = asMatrix(gates);
    const H = h4 / 4;
    const g = cpu(gates).data;
    const cp = cpu(cPrev).data;
    const cs = cpu(c).data;
    const hs = cpu(h).data;
    for (let r = 0; r < b; r++) {
      const o = r * h4;
      for (let j = 0; j < H; j++) {
        const i = sigmoid(g[o + j]);
        const f = sigmoid(g[o + H + j]);
        const gg = Math.tanh(g[o + 2 * H + j]);
        const og = sigmoid(g[o + 3 * H + j]);
        g[o + j] = i;
        g[o + H + j] = f;
        g[o + 2 * H + j] = gg;
        g[o + 3 * H + j] = og;
        const k = r * H + j;
        const cv = f * cp[k] + i * gg;
        cs[k] = cv;
        hs[k] = og * Math.tanh(cv);
      }
    }
  }

  lstmBackward(gates: Tensor, cPrev: Tensor, c: Tensor, dh: Tensor, dc: Tensor, dGates: Tensor): void {
    const [b, h4] = asMatrix(gates);
    const H = h4 / 4;
    const g = cpu(gates).data;
    const cp = cpu(cPrev).data;
    const cs = cpu(c).data;
    const dhs = cpu(dh).data;
    const dcs = cpu(dc).data;
    const dg = cpu(dGates).data;
    for (let r = 0; r < b; r++) {
      const o = r * h4;
      for (let j = 0; j < H; j++) {
        const k = r * H + j;
        const i = g[o + j];
        const f = g[o + H + j];
        const gg = g[o + 2 * H + j];
        const og = g[o + 3 * H + j];
        const tc = Math.tanh(cs[k]);
        const dct = dcs[k] + dhs[k] * og * (1 - tc * tc);
        dg[o + j] = dct * gg * i * (1 - i);
        dg[o + H + j] = dct * cp[k] * f * (1 - f);
        dg[o + 2 * H + j] = dct * i * (1 - gg * gg);
        dg[o + 3 * H + j] = dhs[k] * tc * og * (1 - og);
        dcs[k] = dct * f;
      }
    }
  }

  gruForward(xg: Tensor, hg: Tensor, hPrev: Tensor, h: Tensor): void {
    const [b, h3] = asMatrix(xg);
    const H = h3 / 3;
    const x = cpu(xg).data;
    const hh = cpu(hg).data;
    const hp = cpu(hPrev).data;
    const hs = cpu(h).data;
    for (let row = 0; row < b; row++) {
      const o = row * h3;
      for (let j = 0; j < H; j++) {
        const r = sigmoid(x[o + j] + hh[o + j]);
        const z = sigmoid(x[o + H + j] + hh[o + H + j]);
        const n = Math.tanh(x[o + 2 * H + j] + r * hh[o + 2 * H + j]);
        x[o + j] = r;
        x[o + H + j] = z;
        x[o + 2 * H + j] = n;
        const k = row * H + j;
        hs[k] = (1 - z) * n + z * hp[k];
      }
    }
  }

  gruBackward(gates: Tensor, hg: Tensor, hPrev: Tensor, dh: Tensor, dXg: Tensor, dHg: Tensor, dhPrev: Tensor): void {
    const [b, h3] = asMatrix(gates);
    const H = h3 / 3;
    const g = cpu(gates).data;
    const hh = cpu(hg).data;
    const hp = cpu(hPrev).data;
    const d = cpu(dh).data;
    const dx = cpu(dXg).data;
    const dhg = cpu(dHg).data;
    const dhp = cpu(dhPrev).data;
    for (let row = 0; row < b; row++) {
      const o = row * h3;
      for (let j = 0; j < H; j++) {
        const k = row * H + j;
        const r = g[o + j];
        const z = g[o + H + j];
        const n = g[o + 2 * H + j];
        const dn = d[k] * (1 - z) * (1 - n * n);
        const dz = d[k] * (hp[k] - n) * z * (1 - z);
        const dr = dn * hh[o + 2 * H + j] * r * (1 - r);
        dx[o + j] = dr;
        dx[o + H + j] = dz;
        dx[o + 2 * H + j] = dn;
        dhg[o + j] = dr;
        dhg[o + H + j] = dz;
        dhg[o + 2 * H + j] = dn * r;
        dhp[k] = d[k] * z;
      }
    }
  }

  // ---- output layer -------------------------------------------------------------------------

  softmaxCrossEntropy(logits: Tensor, targets: Tensor, losses: Tensor, dLogits: Tensor | null, gradScale: number): void {
    const [n, v] = asMatrix(logits);
    const z = cpu(logits).data;
    const tg = cpu(targets).data;
    const ls = cpu(losses).data;
    const dz = dLogits ? cpu(dLogits).data : null;
    for (let r = 0; r < n; r++) {
      const o = r * v;
      let max = -Infinity;
      for (let j = 0; j < v; j++) if (z[o + j] > max) max = z[o + j];
      let sum = 0;
      for (let j = 0; j < v; j++) sum += Math.exp(z[o + j] - max);
      const t = tg[r];
      const logSum = Math.log(sum);
      ls[r] = logSum - (z[o + t] - max);
      if (dz) {
        for (let j = 0; j < v; j++) dz[o + j] = gradScale * Math.exp(z[o + j] - max - logSum);
        dz[o + t] -= gradScale;
      }
    }
  }

  softmax(logits: Tensor, probs: Tensor, temperature: number): void {
    const [n, v] = asMatrix(logits);
    const z = cpu(logits).data;
    const p = cpu(probs).data;
    for (let r = 0; r < n; r++) {
      const o = r * v;
      let max = -Infinity;
      for (let j = 0; j < v; j++) if (z[o + j] > max) max = z[o + j];
      let sum = 0;
      for (let j = 0; j < v; j++) {
        const e = Math.exp((z[o + j] - max) / temperature);
        p[o + j] = e;
        sum += e;
      }
      for (let j = 0; j < v; j++) p[o + j] /= sum;
    }
  }

  // ---- regularisation -----------------------------------------------------------------------

  dropout(x: Tensor, out: Tensor, p: number, seed: number): void {
    const xs = cpu(x).data;
    const os = cpu(out).data;
    sameLength(xs, os, 'dropout');
    const keepScale = 1 / (1 - p);
    for (let i = 0; i < xs.length; i++) os[i] = dropoutKeeps(seed, i, p) ? xs[i] * keepScale : 0;
  }

  // ---- optimisation -------------------------------------------------------------------------

  clip(g: Tensor, limit: number): void {
    const gs = cpu(g).data;
    for (let i = 0; i < gs.length; i++) {
      if (gs[i] > limit) gs[i] = limit;
      else if (gs[i] < -limit) gs[i] = -limit;
    }
  }

  async sumSquares(tensors: readonly Tensor[]): Promise<number> {
    let s = 0;
    for (const t of tensors) {
      const d = cpu(t).data;
      for (let i = 0; i < d.length; i++) s += d[i] * d[i];
    }
    return s;
  }

  adagrad(p: Tensor, g: Tensor, mem: Tensor, memComp: Tensor, lr: number, eps: number): void {
    const ps = cpu(p).data;
    const gs = cpu(g).data;
    const ms = cpu(mem).data;
    const cs = cpu(memComp).data;
    // Rounding to the storage precision at each step makes the compensation exact in float32
    // (and is a no-op in float64, where round() is the identity).
    const round = this.precision === 'f32' ? Math.fround : (x: number) => x;
    for (let i = 0; i < ps.length; i++) {
      const y = round(round(gs[i] * gs[i]) - cs[i]);
      const t = round(ms[i] + y);
      cs[i] = round(t - ms[i]) - y;
      ms[i] = t;
      ps[i] -= (lr * gs[i]) / Math.sqrt(t + eps);
    }
  }

  rmsprop(p: Tensor, g: Tensor, ms: Tensor, lr: number, alpha: number, eps: number): void {
    const ps = cpu(p).data;
    const gs = cpu(g).data;
    const m = cpu(ms).data;
    for (let i = 0; i < ps.length; i++) {
      m[i] = alpha * m[i] + (1 - alpha) * gs[i] * gs[i];
      ps[i] -= (lr * gs[i]) / (Math.sqrt(m[i]) + eps);
    }
  }

  adam(p: Tensor, g: Tensor, m: Tensor, v: Tensor, lr: number, beta1: number, beta2: number, eps: number, step: number): void {
    const ps = cpu(p).data;
    const gs = cpu(g).data;
    const ms = cpu(m).data;
    const vs = cpu(v).data;
    const bc1 = 1 - Math.pow(beta1, step);
    const bc2 = 1 - Math.pow(beta2, step);
    for (let i = 0; i < ps.length; i++) {
      ms[i] = beta1 * ms[i] + (1 - beta1) * gs[i];
      vs[i] = beta2 * vs[i] + (1 - beta2) * gs[i] * gs[i];
      ps[i] -= (lr * (ms[i] / bc1)) / (Math.sqrt(vs[i] / bc2) + eps);
    }
  }
}

function sigmoid(x: number): number {
  return 1 / (1 + Math.exp(-x));
}

function sameLength(a: CpuArray, b: CpuArray, op: string): void {
  if (a.length !== b.length) throw new Error(`${op}: sizes ${a.length} and ${b.length} differ`);
}
