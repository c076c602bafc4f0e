/**
 * The backend seam: every numeric operation charnn performs goes through this interface.
 *
 * Implementations: `reference` (plain TypeScript, float32 or float64; the oracle every other
 * backend is tested against), `typescript` (the reference with a tiled, threaded GEMM),
 * `native` (a Node-API addon with SIMD kernels) and `gpu` (gpu.js kernels on WebGPU). Model,
 * trainer, sampler and dumper code never loops over numbers itself.
 *
 * Conventions, chosen so that a device-resident backend (WebGPU) fits as well as a CPU one:
 * - Tensors are opaque handles. Only `read` brings numbers back to JavaScript, and it is the one
 *   asynchronous call: ops are enqueued and return at once, a read waits for them to finish.
 * - Every tensor is row-major. A tensor of shape [r, c] is a matrix of r rows and c columns; a
 *   tensor of shape [n] is a single row [1, n]. `rows(t, start, count)` is a view of a block of
 *   rows sharing storage, which is how a time step is cut out of a whole window's buffer.
 * - Sequences are time-major: a window of T steps over B streams is a [T*B, ...] tensor whose
 *   rows t*B .. t*B+B-1 belong to step t.
 * - Gate order is PyTorch's: LSTM pre-activations are [i | f | g | o], GRU [r | z | n], each
 *   block H wide, so checkpoints export to `torch.nn.LSTM`/`GRU` with a transpose only.
 * - Ops that say "in place" overwrite their input; no other aliasing between arguments is
 *   allowed unless an op says so.
 */

export type DType = 'f32' | 'i32';

/** An opaque handle to a tensor living wherever the backend keeps it. */
export interface Tensor {
  readonly shape: readonly number[];
  readonly size: number;
  readonly dtype: DType;
}

/**
 * op(B) of `Backend.gemm` prepared for many products with the same B: the recurrent weights,
 * multiplied once per time step. Made by `packMatrix`; a backend may copy B into its own layout
 * (the native one packs it into its GEMM micro-kernel's slivers), so a pack is valid only while
 * its `source` is unchanged: whoever writes the source (an optimizer step, a checkpoint load)
 * must not use an older pack again. Cells make a pack per forward or backward window and drop
 * it at the end; nothing caches one across calls.
 */
export interface PackedMatrix {
  /** The B it was made from: op(B) = source, or source^T with transB. */
  readonly source: Tensor;
  readonly transB: boolean;
}

/** What `read` returns: float32 data (float64 in the reference backend's checking mode) or ids. */
export type HostArray = Float32Array | Float64Array | Int32Array;

export interface Backend {
  /** `reference`, `reference-f64`, `native`, ... */
  readonly name: string;

  // ---- memory -------------------------------------------------------------------------------
  /** A new tensor filled with zeros. */
  zeros(shape: readonly number[], dtype?: DType): Tensor;
  /** A new tensor holding a copy of `data` (length must equal the shape's size). */
  upload(data: ArrayLike<number>, shape: readonly number[], dtype?: DType): Tensor;
  /** Overwrite a tensor's contents from host memory. */
  write(t: Tensor, data: ArrayLike<number>): void;
  /** A copy of the tensor's contents on the host, once every op enqueued before it has run. */
  read(t: Tensor): Promise<HostArray>;
  /** Rows [start, start + count) of `t`'s first dimension, as a view sharing storage. */
  rows(t: Tensor, start: number, count: number): Tensor;
  /** Release a tensor's storage (a no-op for garbage-collected backends). */
  dispose(t: Tensor): void;

  // ---- elementwise --------------------------------------------------------------------------
  fill(t: Tensor, value: number): void;
  /** dst = src (same size). */
  copy(src: Tensor, dst: Tensor): void;
  /** y += alpha * x (same size). */
  axpy(alpha: number, x: Tensor, y: Tensor): void;
  /** x *= s. */
  scale(x: Tensor, s: number): void;
  /**
   * out = a * b elementwise (same size). The multiplicative LSTM's m = (x Wmx) * (h Wmh)
   * (Krause et al. 2016); out may not alias a or b.
   */
  mul(a: Tensor, b: Tensor, out: Tensor): void;
  /**
   * The gradient of `mul`: dA = dOut * b, dB = dOut * a (all the same size). dA and dB are
   * overwritten and may not alias the inputs or each other.
   */
  mulBackward(a: Tensor, b: Tensor, dOut: Tensor, dA: Tensor, dB: Tensor): void;

  // ---- linear algebra -----------------------------------------------------------------------
  /**
   * C = alpha * op(A) @ op(B) + beta * C, with op(X) = X or X^T.
   * op(A): [M, K], op(B): [K, N], C: [M, N]. With beta = 0, C's old contents are ignored
   * (NaN in C does not leak through).
   */
  gemm(transA: boolean, transB: boolean, alpha: number, A: Tensor, B: Tensor, beta: number, C: Tensor): void;
  /**
   * B as a PackedMatrix for gemmPacked: op(B) = B: [K, N], or B^T with transB (B: [N, K]).
   * Packing costs about one pass over B, and a backend may defer it to the first product that
   * benefits (the native one skips it for single-row products, which read B in place).
   */
  packMatrix(B: Tensor, transB: boolean): PackedMatrix;
  /**
   * gemm(transA, packed.transB, alpha, A, packed.source, beta, C), bit for bit: the same float
   * sums in the same order, with B's packing done once in `packed` instead of in every call.
   * Shapes and errors as gemm's. `packed` must still be valid (its source unchanged since).
   */
  gemmPacked(transA: boolean, alpha: number, A: Tensor, packed: PackedMatrix, beta: number, C: Tensor): void;
  /** x: [N, M] += b: [M] broadcast over rows. */
  addRowVector(x: Tensor, b: Tensor): void;
  /** out: [M] = (accumulate ? out : 0) + column sums of x: [N, M]. The bias gradient. */
  sumRows(x: Tensor, out: Tensor, accumulate: boolean): void;
  /** out: [N, D] = table: [V, D] rows picked by ids: i32 [N]. One-hot input and embeddings. */
  gatherRows(table: Tensor, ids: Tensor, out: Tensor): void;
  /** dTable: [V, D] rows ids[n] += dOut: [N, D] row n. Gradient of gatherRows. */
  scatterAddRows(dOut: Tensor, ids: Tensor, dTable: Tensor): void;
  /**
   * table: [V, D] row ids[n] = src: [N, D] row n, for distinct ids. Puts back rows taken out
   * with gatherRows (a row-sparse optimizer update works on the rows a window touched only).
   */
  scatterRows(src: Tensor, ids: Tensor, table: Tensor): void;

  // ---- recurrent cells, one time step over B streams ----------------------------------------
  /** Vanilla RNN. h: [B, H] = tanh(pre: [B, H]). */
  rnnForward(pre: Tensor, h: Tensor): void;
  /** dPre: [B, H] = dh * (1 - h^2). */
  rnnBackward(h: Tensor, dh: Tensor, dPre: Tensor): void;

  /**
   * LSTM. gates: [B, 4H] pre-activations [i|f|g|o] in, activations out (in place):
   * i, f, o = sigmoid, g = tanh. c = f * cPrev + i * g; h = o * tanh(c). c, h: [B, H] out.
   */
  lstmForward(gates: Tensor, cPrev: Tensor, c: Tensor, h: Tensor): void;
  /**
   * gates: [B, 4H] activations from lstmForward; cPrev, c, dh: [B, H].
   * dc: [B, H] in: dLoss/dc from step t+1; out (in place): dLoss/dcPrev.
   * dGates: [B, 4H] out: dLoss/d(pre-activations).
   */
  lstmBackward(gates: Tensor, cPrev: Tensor, c: Tensor, dh: Tensor, dc: Tensor, dGates: Tensor): void;

  /**
   * GRU, PyTorch's formulation. xg: [B, 3H] input part of the pre-activations [r|z|n]
   * (x @ Wx + bx), in; activations r, z, n out (in place). hg: [B, 3H] hidden part
   * (hPrev @ Wh + bh). r = sigmoid(xr + hr), z = sigmoid(xz + hz), n = tanh(xn + r * hn),
   * h: [B, H] out = (1 - z) * n + z * hPrev.
   */
  gruForward(xg: Tensor, hg: Tensor, hPrev: Tensor, h: Tensor): void;
  /**
   * gates: [B, 3H] activations r, z, n from gruForward; hg: [B, 3H]; hPrev, dh: [B, H].
   * dXg: [B, 3H] out = dLoss/d(input part); dHg: [B, 3H] out = dLoss/d(hidden part);
   * dhPrev: [B, H] out = the direct path dh * z (the path through hg is added by the caller
   * with a GEMM against Wh).
   */
  gruBackward(gates: Tensor, hg: Tensor, hPrev: Tensor, dh: Tensor, dXg: Tensor, dHg: Tensor, dhPrev: Tensor): void;

  // ---- output layer ---------------------------------------------------------------------------
  /**
   * Row-wise softmax cross-entropy. logits: [N, V]; targets: i32 [N]; losses: [N] out, the
   * negative log-probability of each target in nats. dLogits: [N, V] out (may be `logits`
   * itself, computed in place) = gradScale * (softmax - onehot), or null for loss only.
   */
  softmaxCrossEntropy(logits: Tensor, targets: Tensor, losses: Tensor, dLogits: Tensor | null, gradScale: number): void;
  /** probs: [N, V] = softmax(logits / temperature) row-wise; temperature > 0 with 1/temperature finite in float32 (the sampler takes argmax below that). */
  softmax(logits: Tensor, probs: Tensor, temperature: number): void;

  // ---- regularisation -----------------------------------------------------------------------
  /**
   * Inverted dropout with a mask derived from (seed, element index) by `dropoutKeeps`, so the
   * backward pass re-derives the same mask: out = keep ? x / (1 - p) : 0. Also the gradient:
   * dX = dropout(dOut, same p, same seed). out may be x (in place).
   */
  dropout(x: Tensor, out: Tensor, p: number, seed: number): void;

  // ---- optimisation -------------------------------------------------------------------------
  /** g = clamp(g, -limit, limit). */
  clip(g: Tensor, limit: number): void;
  /** Sum of squares over all elements of all tensors (for clipping by global norm). */
  sumSquares(tensors: readonly Tensor[]): Promise<number>;
  /**
   * mem += g^2; p -= lr * g / sqrt(mem + eps). As min-char-rnn, but the ever-growing sum is
   * kept with Kahan compensation in `memComp`, in float32 arithmetic exactly as follows:
   *   y = f32(f32(g * g) - memComp); t = f32(mem + y); memComp = f32(f32(t - mem) - y); mem = t
   * A plain float32 sum drops the small g^2 once mem is large, which measurably slows
   * training (min-char-rnn's smoothed loss at 10k iterations: 53.8 instead of 52.3).
   */
  adagrad(p: Tensor, g: Tensor, mem: Tensor, memComp: Tensor, lr: number, eps: number): void;
  /** ms = alpha * ms + (1 - alpha) * g^2; p -= lr * g / (sqrt(ms) + eps). */
  rmsprop(p: Tensor, g: Tensor, ms: Tensor, lr: number, alpha: number, eps: number): void;
  /**
   * m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
   * p -= lr * (m / (1 - b1^step)) / (sqrt(v / (1 - b2^step)) + eps). step counts from 1.
   */
  adam(p: Tensor, g: Tensor, m: Tensor, v: Tensor, lr: number, beta1: number, beta2: number, eps: number, step: number): void;
}

/**
 * The dropout mask, identical on every backend: element i of a tensor is kept when
 * hash(seed, i) / 2^32 >= p. The hash is a 32-bit integer mixer (lowbias32 by C. Wellons)
 * that a GPU kernel computes as cheaply as a CPU.
 */
export function dropoutHash(seed: number, index: number): number {
  let x = (Math.imul(index, 0x9e3779b1) + seed) >>> 0;
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** Whether element `index` survives dropout with probability p of being dropped. */
export function dropoutKeeps(seed: number, index: number, p: number): boolean {
  return dropoutHash(seed, index) >= p * 4294967296;
}

/** Number of elements of a shape. */
export function shapeSize(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/**
 * The dimensions of C = op(A) @ op(B) for `Backend.gemm`: op(A) is [M, K], op(B) [K, N], C
 * [M, N]. Throws when the shapes do not fit together.
 */
export function gemmDims(transA: boolean, transB: boolean, A: Tensor, B: Tensor, C: Tensor): { M: number; N: number; K: number } {
  const [ar, ac] = asMatrix(A);
  const [br, bc] = asMatrix(B);
  const [M, K] = transA ? [ac, ar] : [ar, ac];
  const [K2, N] = transB ? [bc, br] : [br, bc];
  const [cr, cc] = asMatrix(C);
  if (K !== K2 || cr !== M || cc !== N) {
    throw new Error(`gemm shapes: op(A) [${M}, ${K}] op(B) [${K2}, ${N}] C [${cr}, ${cc}]`);
  }
  return { M, N, K };
}

/**
 * The shape rule of addRowVector and sumRows: `v` is as wide as x's rows. Returns x as
 * [rows, cols]. The TypeScript backends check it here; the native backend passes the row width
 * to its addon, which checks the same rule in C++ with the same messages (native/src/addon.cc).
 * @throws Error `${op}: ${what} <size> for rows of <cols>`
 */
export function checkRowVector(op: string, what: string, x: Tensor, v: Tensor): [rows: number, cols: number] {
  const [n, m] = asMatrix(x);
  if (v.size !== m) throw new Error(`${op}: ${what} ${v.size} for rows of ${m}`);
  return [n, m];
}

/**
 * The shape rule of the row ops (gatherRows, scatterAddRows, scatterRows): `rows` [N, D] goes
 * with ids [N] of a `table` [V, D]. Returns [V, D]. Ids are range-checked by each backend as it
 * reads them. (Native: checked by the addon, as checkRowVector says.)
 * @throws Error `${op}: ${rowsName} shape does not match ids x row size`
 */
export function checkRowsOfTable(op: string, rowsName: string, rows: Tensor, ids: Tensor, table: Tensor): [V: number, D: number] {
  const [v, d] = asMatrix(table);
  if (rows.size !== ids.size * d) throw new Error(`${op}: ${rowsName} shape does not match ids x row size`);
  return [v, d];
}

/** A tensor's shape read as a matrix: [n] is one row of n columns. */
export function asMatrix(t: Tensor): [rows: number, cols: number] {
  const s = t.shape;
  if (s.length === 1) return [1, s[0]];
  if (s.length === 2) return [s[0], s[1]];
  return [s[0], t.size / s[0]];
}
