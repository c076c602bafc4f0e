import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { type PackedMatrix, type Tensor, asMatrix, gemmDims } from './backend.js';
import { cpu } from './cpu-tensor.js';
import { ReferenceBackend } from './reference.js';
import type { Precision } from './select.js';

/** Bumped with every change of the addon's calling convention; a stale build is refused. */
const ADDON_ABI = 6;

/** What native/src/addon.cc exports. Every array argument is used in place, zero-copy. */
export interface NativeAddon {
  /** Points file descriptor 2 at /dev/null; returns the saved descriptor, or -1 (absent from addons built before it). */
  silenceStderr?(): number;
  restoreStderr?(saved: number): void;
  /** bf16: whether gemmBf16 runs here (AVX-512 kernels and AVX512-BF16 in cpuid). */
  info(): { abi: number; isa: string; threads: number; mr: number; nr: number; bf16: boolean; gemmParallelFlops: number };
  setThreads(n: number): number;
  setGemmParallelFlops(flops: number): number;
  tune(kc: number, ncb: number, packFlags: number): void;
  fill(x: Float32Array, value: number): void;
  copy(src: Float32Array, dst: Float32Array): void;
  axpy(alpha: number, x: Float32Array, y: Float32Array): void;
  scale(x: Float32Array, s: number): void;
  mul(a: Float32Array, b: Float32Array, out: Float32Array): void;
  mulBackward(a: Float32Array, b: Float32Array, dOut: Float32Array, dA: Float32Array, dB: Float32Array): void;
  gemm(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, A: Float32Array, B: Float32Array, beta: number, C: Float32Array): void;
  /** gemm with op(A), op(B) rounded to bfloat16 (nearest even) and float32 sums; a RangeError where info().bf16 is false. */
  gemmBf16(transA: boolean, transB: boolean, M: number, N: number, K: number, alpha: number, A: Float32Array, B: Float32Array, beta: number, C: Float32Array): void;
  /**
   * op(B): [K, N] (B: [N, K] when transB) packed into out: exactly K * (N rounded up to info().nr)
   * floats, in the GEMM's sliver layout. Returns the K block depth to pass to gemmPacked.
   */
  packB(transB: boolean, K: number, N: number, B: Float32Array, out: Float32Array): number;
  /** gemm with op(B) also given as packB's out and K block depth (made from this B and transB): the same bits, B not packed again. */
  gemmPacked(transA: boolean, M: number, N: number, K: number, alpha: number, A: Float32Array, transB: boolean, B: Float32Array, packed: Float32Array, kc: number, beta: number, C: Float32Array): void;
  /** x: [rows, cols] += b: [cols] per row. */
  addRowVector(cols: number, x: Float32Array, b: Float32Array): void;
  /** out: [cols] (+)= column sums of x: [rows, cols]. */
  sumRows(cols: number, x: Float32Array, out: Float32Array, accumulate: boolean): void;
  /** out: [N, D] row n = table: [V, D] row ids[n]. */
  gatherRows(D: number, table: Float32Array, ids: Int32Array, out: Float32Array): void;
  /** dTable: [V, D] row ids[n] += dOut: [N, D] row n. */
  scatterAddRows(D: number, dOut: Float32Array, ids: Int32Array, dTable: Float32Array): void;
  rnnForward(pre: Float32Array, h: Float32Array): void;
  rnnBackward(h: Float32Array, dh: Float32Array, dPre: Float32Array): void;
  lstmForward(H: number, gates: Float32Array, cPrev: Float32Array, c: Float32Array, h: Float32Array): void;
  lstmBackward(H: number, gates: Float32Array, cPrev: Float32Array, c: Float32Array, dh: Float32Array, dc: Float32Array, dGates: Float32Array): void;
  gruForward(H: number, xg: Float32Array, hg: Float32Array, hPrev: Float32Array, h: Float32Array): void;
  gruBackward(H: number, gates: Float32Array, hg: Float32Array, hPrev: Float32Array, dh: Float32Array, dXg: Float32Array, dHg: Float32Array, dhPrev: Float32Array): void;
  softmaxCrossEntropy(V: number, logits: Float32Array, targets: Int32Array, losses: Float32Array, dLogits: Float32Array | null, gradScale: number): void;
  softmax(V: number, logits: Float32Array, probs: Float32Array, temperature: number): void;
  dropout(x: Float32Array, out: Float32Array, p: number, seed: number): void;
  clip(g: Float32Array, limit: number): void;
  sumSquares(arrays: Float32Array[]): number;
  adagrad(p: Float32Array, g: Float32Array, mem: Float32Array, memComp: Float32Array, lr: number, eps: number): void;
  rmsprop(p: Float32Array, g: Float32Array, ms: Float32Array, lr: number, alpha: number, eps: number): void;
  adam(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, lr: number, beta1: number, beta2: number, eps: number, step: number): void;
  /** Elementwise exp (0), tanh (1), sigmoid (2) with the kernels' vector math, for accuracy tests. */
  map(fn: number, x: Float32Array, y: Float32Array): void;
}

/** The native backend's PackedMatrix: op(B) in the GEMM's slivers (data, K blocks of kc), made on first use. */
interface NativePack extends PackedMatrix {
  data: Float32Array | null;
  kc: number;
}

function f32(t: Tensor): Float32Array {
  const d = cpu(t).data;
  if (!(d instanceof Float32Array)) throw new Error(`the native backend needs float32 tensors, got ${d.constructor.name}`);
  return d;
}

function i32(t: Tensor): Int32Array {
  const d = cpu(t).data;
  if (!(d instanceof Int32Array)) throw new Error(`expected an i32 tensor, got ${d.constructor.name}`);
  return d;
}

/**
 * The native CPU backend: the reference backend's tensors (host typed arrays, row views by
 * subarray) with every numeric op done by SIMD kernels in a Node-API addon, multithreaded where
 * the work is big enough. float32 only.
 */
export class NativeBackend extends ReferenceBackend {
  override readonly name: string = 'native';

  /**
   * gemmPrecision: the matrix products' inputs; bf16 rounds both operands of every gemm to
   * bfloat16 and sums in float32 (everything else stays float32). Make one with withPrecision.
   */
  constructor(
    readonly addon: NativeAddon,
    readonly gemmPrecision: Precision = 'fp32',
  ) {
    super('f32');
  }

  /** Whether this CPU runs the bf16 products (AVX-512 kernels and AVX512-BF16). */
  get bf16Supported(): boolean {
    return this.addon.info().bf16 === true;
  }

  /** This backend with `precision`'s products, on the same addon (bf16 where bf16Supported; select.ts's applyPrecision checks). */
  withPrecision(precision: Precision): NativeBackend {
    return precision === this.gemmPrecision ? this : new NativeBackend(this.addon, precision);
  }

  /** Instruction set the kernels were dispatched to, and the thread pool's size. */
  get info(): { isa: string; threads: number } {
    const i = this.addon.info();
    return { isa: i.isa, threads: i.threads };
  }

  /** Threads the kernels may use, the calling one included (1 = single-threaded). */
  setThreads(n: number): number {
    return this.addon.setThreads(n);
  }

  // ---- elementwise --------------------------------------------------------------------------

  override fill(t: Tensor, value: number): void {
    this.addon.fill(f32(t), value);
  }

  override copy(src: Tensor, dst: Tensor): void {
    this.addon.copy(f32(src), f32(dst));
  }

  override axpy(alpha: number, x: Tensor, y: Tensor): void {
    this.addon.axpy(alpha, f32(x), f32(y));
  }

  override scale(x: Tensor, s: number): void {
    this.addon.scale(f32(x), s);
  }

  override mul(a: Tensor, b: Tensor, out: Tensor): void {
    this.addon.mul(f32(a), f32(b), f32(out));
  }

  override mulBackward(a: Tensor, b: Tensor, dOut: Tensor, dA: Tensor, dB: Tensor): void {
    this.addon.mulBackward(f32(a), f32(b), f32(dOut), f32(dA), f32(dB));
  }

  // ---- linear algebra -----------------------------------------------------------------------

  override gemm(transA: boolean, transB: boolean, alpha: number, A: Tensor, B: Tensor, beta: number, C: Tensor): void {
    const { M, N, K } = gemmDims(transA, transB, A, B, C);
    const gemm = this.gemmPrecision === 'bf16' ? this.addon.gemmBf16 : this.addon.gemm;
    gemm(transA, transB, M, N, K, alpha, f32(A), f32(B), beta, f32(C));
  }

  override packMatrix(B: Tensor, transB: boolean): PackedMatrix {
    // bf16 products round B while they pack it (gemm_bf16_impl.h), so they keep packing per call
    if (this.gemmPrecision === 'bf16') return super.packMatrix(B, transB);
    const pack: NativePack = { source: B, transB, data: null, kc: 0 };
    return pack;
  }

  override gemmPacked(transA: boolean, alpha: number, A: Tensor, packed: PackedMatrix, beta: number, C: Tensor): void {
    const pack = packed as Partial<NativePack>;
    // a pack of the reference kind (bf16 products make those) is a plain gemm
    if (pack.data === undefined || this.gemmPrecision === 'bf16') {
      this.gemm(transA, packed.transB, alpha, A, packed.source, beta, C);
      return;
    }
    const { M, N, K } = gemmDims(transA, packed.transB, A, packed.source, C);
    const B = f32(packed.source);
    if (M === 1) {
      // single-row products (batch 1) read B in place (the addon's matrix-vector path): no pack
      this.addon.gemm(transA, packed.transB, M, N, K, alpha, f32(A), B, beta, f32(C));
      return;
    }
    if (pack.data === null) {
      // packed on first use, from B as it is now (PackedMatrix: valid while the source is unchanged)
      pack.data = new Float32Array(K * Math.ceil(N / this.nr) * this.nr);
      pack.kc = this.addon.packB(packed.transB, K, N, B, pack.data);
    }
    this.addon.gemmPacked(transA, M, N, K, alpha, f32(A), packed.transB, B, pack.data, pack.kc!, beta, f32(C));
  }

  /** The GEMM micro-tile's width: packB's slivers are nr columns wide. */
  private get nr(): number {
    return (this.nrCached ??= this.addon.info().nr);
  }
  private nrCached: number | undefined;

  // The row ops pass the row width from the tensor's shape; the addon checks every size against
  // it (native/src/addon.cc, with the reference backend's messages), so there are no checks here.

  override addRowVector(x: Tensor, b: Tensor): void {
    this.addon.addRowVector(asMatrix(x)[1], f32(x), f32(b));
  }

  override sumRows(x: Tensor, out: Tensor, accumulate: boolean): void {
    this.addon.sumRows(asMatrix(x)[1], f32(x), f32(out), accumulate);
  }

  override gatherRows(table: Tensor, ids: Tensor, out: Tensor): void {
    this.addon.gatherRows(asMatrix(table)[1], f32(table), i32(ids), f32(out));
  }

  override scatterAddRows(dOut: Tensor, ids: Tensor, dTable: Tensor): void {
    this.addon.scatterAddRows(asMatrix(dTable)[1], f32(dOut), i32(ids), f32(dTable));
  }

  // ---- recurrent cells ----------------------------------------------------------------------

  override rnnForward(pre: Tensor, h: Tensor): void {
    this.addon.rnnForward(f32(pre), f32(h));
  }

  override rnnBackward(h: Tensor, dh: Tensor, dPre: Tensor): void {
    this.addon.rnnBackward(f32(h), f32(dh), f32(dPre));
  }

  override lstmForward(gates: Tensor, cPrev: Tensor, c: Tensor, h: Tensor): void {
    const H = asMatrix(gates)[1] / 4;
    this.addon.lstmForward(H, f32(gates), f32(cPrev), f32(c), f32(h));
  }

  override lstmBackward(gates: Tensor, cPrev: Tensor, c: Tensor, dh: Tensor, dc: Tensor, dGates: Tensor): void {
    const H = asMatrix(gates)[1] / 4;
    this.addon.lstmBackward(H, f32(gates), f32(cPrev), f32(c), f32(dh), f32(dc), f32(dGates));
  }

  override gruForward(xg: Tensor, hg: Tensor, hPrev: Tensor, h: Tensor): void {
    const H = asMatrix(xg)[1] / 3;
    this.addon.gruForward(H, f32(xg), f32(hg), f32(hPrev), f32(h));
  }

  override gruBackward(gates: Tensor, hg: Tensor, hPrev: Tensor, dh: Tensor, dXg: Tensor, dHg: Tensor, dhPrev: Tensor): void {
    const H = asMatrix(gates)[1] / 3;
    this.addon.gruBackward(H, f32(gates), f32(hg), f32(hPrev), f32(dh), f32(dXg), f32(dHg), f32(dhPrev));
  }

  // ---- output layer -------------------------------------------------------------------------

  override softmaxCrossEntropy(logits: Tensor, targets: Tensor, losses: Tensor, dLogits: Tensor | null, gradScale: number): void {
    const V = asMatrix(logits)[1];
    this.addon.softmaxCrossEntropy(V, f32(logits), i32(targets), f32(losses), dLogits ? f32(dLogits) : null, gradScale);
  }

  override softmax(logits: Tensor, probs: Tensor, temperature: number): void {
    const V = asMatrix(logits)[1];
    this.addon.softmax(V, f32(logits), f32(probs), temperature);
  }

  // ---- regularisation -----------------------------------------------------------------------

  override dropout(x: Tensor, out: Tensor, p: number, seed: number): void {
    // The addon hashes integer seeds (mod 2^32, as `>>> 0` does); anything else takes the
    // reference path so that the mask is the one dropoutKeeps defines, bit for bit.
    if (!Number.isSafeInteger(seed)) {
      super.dropout(x, out, p, seed);
      return;
    }
    this.addon.dropout(f32(x), f32(out), p, seed);
  }

  // ---- optimisation -------------------------------------------------------------------------

  override clip(g: Tensor, limit: number): void {
    this.addon.clip(f32(g), limit);
  }

  override async sumSquares(tensors: readonly Tensor[]): Promise<number> {
    return this.addon.sumSquares(tensors.map(f32));
  }

  override adagrad(p: Tensor, g: Tensor, mem: Tensor, memComp: Tensor, lr: number, eps: number): void {
    this.addon.adagrad(f32(p), f32(g), f32(mem), f32(memComp), lr, eps);
  }

  override rmsprop(p: Tensor, g: Tensor, ms: Tensor, lr: number, alpha: number, eps: number): void {
    this.addon.rmsprop(f32(p), f32(g), f32(ms), lr, alpha, eps);
  }

  override adam(p: Tensor, g: Tensor, m: Tensor, v: Tensor, lr: number, beta1: number, beta2: number, eps: number, step: number): void {
    this.addon.adam(f32(p), f32(g), f32(m), f32(v), lr, beta1, beta2, eps, step);
  }
}

/** The directory holding charnn's package.json, found upward from this module (src/ or dist/). */
export function packageRoot(): string | null {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return dir;
    const up = dirname(dir);
    if (up === dir) return null;
    dir = up;
  }
}

/** Where the build puts the addon (native/build/Release/charnn_native.node under the package root). */
export function nativeAddonPath(): string | null {
  const root = packageRoot();
  return root ? join(root, 'native', 'build', 'Release', 'charnn_native.node') : null;
}

let cached: { backend: NativeBackend } | { error: string } | undefined;

/**
 * Runs `fn` with file descriptor 2 pointed at /dev/null, so that what native libraries print
 * straight to it (Dawn's warnings while an adapter is requested) stays off charnn's stderr.
 * Needs the native addon; without it (or with CHARNN_DEBUG=1) `fn` just runs.
 */
export async function withNativeStderrSilenced<T>(fn: () => Promise<T>): Promise<T> {
  const loaded = loadNativeBackend();
  const addon = 'backend' in loaded ? loaded.backend.addon : null;
  const debug = !!process.env.CHARNN_DEBUG && process.env.CHARNN_DEBUG !== '0';
  if (!addon?.silenceStderr || !addon.restoreStderr || debug) return fn();
  const saved = addon.silenceStderr();
  try {
    return await fn();
  } finally {
    addon.restoreStderr(saved);
  }
}

/**
 * Load the addon and wrap it, or say in one line why not (never throws). The addon is loaded
 * once per process; every call returns the same backend.
 */
export function loadNativeBackend(): { backend: NativeBackend } | { error: string } {
  if (cached) return cached;
  cached = load();
  return cached;
}

function load(): { backend: NativeBackend } | { error: string } {
  const file = nativeAddonPath();
  if (!file) return { error: 'cannot find the charnn package directory' };
  if (!existsSync(file)) {
    return { error: 'the native addon was not built (no native/build/Release/charnn_native.node; see npm install output)' };
  }
  try {
    const addon = createRequire(import.meta.url)(file) as NativeAddon;
    const info = typeof addon?.info === 'function' ? addon.info() : null;
    if (!info || info.abi !== ADDON_ABI) {
      return { error: `the native addon is stale (ABI ${info?.abi ?? 'unknown'}, expected ${ADDON_ABI}); rebuild it with npm rebuild or node scripts/build-native.mjs` };
    }
    return { backend: new NativeBackend(addon) };
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    return { error: `the native addon failed to load: ${msg.split('\n')[0]}` };
  }
}
