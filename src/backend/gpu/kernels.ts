/**
 * The gpu backend's kernels, as gpu.js kernel sources. gpu.js translates each to WGSL (webgpu
 * mode) or to a JavaScript loop (cpu mode); the same source runs in both, so the cpu-mode
 * tests check the code that runs on a GPU.
 *
 * What the kernel language allows shapes everything here:
 * - A kernel has ONE output, a flat array of `output` cells, one invocation per cell
 *   (`this.thread.x`), in a buffer of its own. An op that writes into a row view of a bigger
 *   buffer (the "root") runs over the view's cells, reading the root's old contents as `old`;
 *   the backend then copies the result into the view (memory.ts). Views are passed as the root
 *   plus an element offset (`xOff`; `dOff` for the output's).
 * - Local variables are float32 in WGSL (gpu.js decays integer variables to f32), so index
 *   arithmetic is exact only below 2^24: the backend refuses bigger tensors. Integer bit
 *   operations on 32-bit values are not exact either, so the dropout hash works on bytes.
 * - Loop bounds must be constants (`this.constants.K`): a bound passed as an argument is cut
 *   at loopMaxIterations. Dimensions are constants; a kernel is built per distinct set.
 * - Sources are strings, not functions, so no transpiler (tsc, esbuild in the tests) can
 *   rewrite them before gpu.js parses them.
 */

export interface KernelDef {
  /** Names the kernel in the cache and in errors. */
  readonly name: string;
  /** Array arguments (device buffers, or host Float32Arrays when `hostArrays`), in order. */
  readonly arrays: readonly string[];
  /** i32 scalar arguments, after the arrays. */
  readonly ints: readonly string[];
  /** f32 scalar arguments, after the ints. */
  readonly floats: readonly string[];
  /** The kernel body; `e` is the element's index within the output view when `guarded`. */
  readonly body: string;
  /**
   * Output = the view [dOff, dOff + output size) of a root: the first array is `old` (the
   * root's current contents, `old[i]` being the output cell's) and the first int is dOff.
   */
  readonly guarded: boolean;
  /** Some array arguments are host arrays uploaded with the call (sizes may vary). */
  readonly hostArrays?: boolean;
}

/** The gpu.js source of a kernel. */
export function kernelSource(k: KernelDef): string {
  const params = [...k.arrays, ...k.ints, ...k.floats].join(', ');
  const guard = k.guarded
    ? 'const e = this.thread.x;\nconst i = dOff + e;\n'
    : '';
  return `function (${params}) {\n${guard}${k.body}\n}`;
}

/** An elementwise kernel into a view: out[e] = expr, with the output root as `old`. */
function guarded(name: string, arrays: string[], ints: string[], floats: string[], body: string, hostArrays = false): KernelDef {
  return { name, arrays: ['old', ...arrays], ints: ['dOff', ...ints], floats, body, guarded: true, hostArrays };
}

// Numerically safe activations. tanh's argument is clamped: a WGSL tanh computed as
// (e^2x - 1) / (e^2x + 1) overflows to NaN on some drivers, and tanh(+-15) is +-1 in float32.
const SIG = (v: string) => `(1 / (1 + Math.exp(-(${v}))))`;
const TANH = (v: string) => `Math.tanh(Math.min(Math.max(${v}, -15), 15))`;

// ---- memory ------------------------------------------------------------------------------------

export const FILL = guarded('fill', [], [], ['value'], 'return value;');
export const COPY = guarded('copy', ['src'], ['sOff'], [], 'return src[sOff + e];');
export const AXPY = guarded('axpy', ['x'], ['xOff'], ['alpha'], 'return old[i] + alpha * x[xOff + e];');
export const SCALE = guarded('scale', [], [], ['s'], 'return old[i] * s;');
/** out = a * b; the gradient of a product is two of them (dA = dOut * b, dB = dOut * a). */
export const MUL = guarded('mul', ['a', 'b'], ['aOff', 'bOff'], [], 'return a[aOff + e] * b[bOff + e];');
export const CLIP = guarded('clip', [], [], ['limit'], 'const v = old[i];\nif (v > limit) { return limit; }\nif (v < -limit) { return -limit; }\nreturn v;');

// ---- linear algebra ----------------------------------------------------------------------------

/**
 * C view [M, N] = alpha * op(A) @ B + beta * C, B stored [K, N] (the backend transposes a
 * transposed B first: see TRANSPOSE). One output cell per invocation summing K products (no
 * tiling: gpu.js's WGSL has no workgroup memory). Neighbouring invocations are neighbouring
 * columns c, so they read neighbouring cells of B's row k (coalesced) and the same cell of A;
 * the indices advance by addition rather than being recomputed. Constants M, N, K.
 */
export function gemmKernel(transA: boolean): KernelDef {
  // op(A)[r, k] in A's stored layout: [M, K] (step 1 along k) or [K, M] (step M).
  const aStart = transA ? 'aOff + r' : 'aOff + r * this.constants.K';
  const aStep = transA ? 'this.constants.M' : '1';
  return guarded(
    `gemm${transA ? 'T' : 'N'}`,
    ['a', 'b'],
    ['aOff', 'bOff'],
    ['alpha', 'beta'],
    `const r = Math.floor(e / this.constants.N);
const c = e - r * this.constants.N;
let ai = ${aStart};
let bi = bOff + c;
let s = 0;
for (let k = 0; k < this.constants.K; k++) {
  s += a[ai] * b[bi];
  ai += ${aStep};
  bi += this.constants.N;
}
if (beta === 0) { return alpha * s; }
return alpha * s + beta * old[i];`,
  );
}

/**
 * Split-K for GEMMs with few output cells and a long K (dh = dGates Whᵀ per time step is
 * [128, 512] over K = 2048): with one invocation per output cell such a product runs on too
 * few invocations to fill a GPU, each summing thousands of products in turn. It is cut into S
 * slices of K, computed as S partial products (GEMM_PARTIAL) then summed (GEMM_SUM_SLICES).
 * S is chosen so the slices give at least SPLIT_K_CELLS invocations, and each slice keeps at
 * least SPLIT_K_MIN_SLICE of K.
 */
export const SPLIT_K_CELLS = 2 ** 20;
export const SPLIT_K_MIN_SLICE = 128;

/** How many slices of K a [M, N] x K product is cut into (1 = not split). */
export function gemmSlices(M: number, N: number, K: number): number {
  const wanted = Math.ceil(SPLIT_K_CELLS / Math.max(1, M * N));
  return Math.max(1, Math.min(wanted, Math.floor(K / SPLIT_K_MIN_SLICE)));
}

/**
 * A scratch [S, M, N]: slice s = op(A)[:, ks] @ B[ks, :] over ks = s*KC .. s*KC + KC - 1 (the
 * last slice stops at K). Layouts as gemmKernel. Constants M, N, K, KC.
 */
export function gemmPartialKernel(transA: boolean): KernelDef {
  const aStart = transA ? 'aOff + k0 * this.constants.M + r' : 'aOff + r * this.constants.K + k0';
  const aStep = transA ? 'this.constants.M' : '1';
  return {
    name: `gemmPartial${transA ? 'T' : 'N'}`, arrays: ['a', 'b'], ints: ['aOff', 'bOff'], floats: [], guarded: false,
    body: `const cells = this.constants.M * this.constants.N;
const sl = Math.floor(this.thread.x / cells);
const e = this.thread.x - sl * cells;
const r = Math.floor(e / this.constants.N);
const c = e - r * this.constants.N;
const k0 = sl * this.constants.KC;
let ai = ${aStart};
let bi = bOff + k0 * this.constants.N + c;
let s = 0;
for (let j = 0; j < this.constants.KC; j++) {
  if (k0 + j < this.constants.K) {
    s += a[ai] * b[bi];
  }
  ai += ${aStep};
  bi += this.constants.N;
}
return s;`,
  };
}

/** C view [M, N] = alpha * (the sum of the S slices of part [S, M, N]) + beta * C. Constants MN, S. */
export const GEMM_SUM_SLICES = guarded(
  'gemmSumSlices', ['part'], [], ['alpha', 'beta'],
  `let s = 0;
for (let sl = 0; sl < this.constants.S; sl++) {
  s += part[sl * this.constants.MN + e];
}
if (beta === 0) { return alpha * s; }
return alpha * s + beta * old[i];`,
);

/**
 * A scratch [K, N] = the view [N, K] of src transposed: a GEMM with a transposed B runs on
 * this copy, because reading B [N, K] down its columns makes neighbouring invocations read
 * cells K apart. Constants N, K.
 */
export const TRANSPOSE: KernelDef = {
  name: 'transpose', arrays: ['src'], ints: ['sOff'], floats: [], guarded: false,
  body: `const k = Math.floor(this.thread.x / this.constants.N);
const c = this.thread.x - k * this.constants.N;
return src[sOff + c * this.constants.K + k];`,
};

/** x view [N, M] += bias [M] on every row. Constant M. */
export const ADD_ROW_VECTOR = guarded(
  'addRowVector', ['bias'], ['bOff'], [],
  'const r = Math.floor(e / this.constants.M);\nreturn old[i] + bias[bOff + e - r * this.constants.M];',
);

/**
 * Rows summed per invocation by SUM_ROWS_PARTIAL: a sum over many rows (a bias gradient over
 * a window, N = T*B) is first cut into chunks, so that it runs on more than M invocations.
 */
export const ROW_CHUNK = 64;

/** A scratch [P, M]: row p = the column sums of rows p*R .. p*R + R - 1 of x [N, M]. Constants N, M, R. */
export const SUM_ROWS_PARTIAL: KernelDef = {
  name: 'sumRowsPartial', arrays: ['x'], ints: ['xOff'], floats: [], guarded: false,
  body: `const p = Math.floor(this.thread.x / this.constants.M);
const col = this.thread.x - p * this.constants.M;
let s = 0;
for (let j = 0; j < this.constants.R; j++) {
  const r = p * this.constants.R + j;
  if (r < this.constants.N) {
    s += x[xOff + r * this.constants.M + col];
  }
}
return s;`,
};

/** out view [M] = (acc ? out : 0) + column sums of x [N, M]. Constants N, M. */
export const SUM_ROWS = guarded(
  'sumRows', ['x'], ['xOff', 'acc'], [],
  `let s = 0;
for (let r = 0; r < this.constants.N; r++) {
  s += x[xOff + r * this.constants.M + e];
}
if (acc === 1) { return old[i] + s; }
return s;`,
);

/** out view [N, D] = table rows picked by ids (ids held as float32, exact below 2^24). Constant D. */
export const GATHER_ROWS = guarded(
  'gatherRows', ['table', 'ids'], ['tOff', 'idOff'], [],
  'const n = Math.floor(e / this.constants.D);\nconst id = ids[idOff + n];\nreturn table[tOff + id * this.constants.D + e - n * this.constants.D];',
);

/**
 * dTable view [V, D] row v += the rows n of dOut with ids[n] = v, gather-style: `start` [V + 1]
 * and `order` [N] are the ids sorted by row (CSR, built on the host from the ids' host copy), so
 * each output cell reads only its own rows, in increasing n as the reference adds them.
 * Constants D and N (the loop's bound; it stops at the row's end).
 */
export const SCATTER_ADD_ROWS = guarded(
  'scatterAddRows', ['dOut', 'start', 'order'], ['gOff'], [],
  `const v = Math.floor(e / this.constants.D);
const j = e - v * this.constants.D;
const first = start[v];
const count = start[v + 1] - first;
let s = old[i];
for (let k = 0; k < this.constants.N; k++) {
  if (k >= count) { break; }
  s += dOut[gOff + order[first + k] * this.constants.D + j];
}
return s;`,
  true,
);

/** table view [V, D] row v = src row slot[v] where slot[v] >= 0 (host-built inverse of ids). Constant D. */
export const SCATTER_ROWS = guarded(
  'scatterRows', ['src', 'slot'], ['sOff'], [],
  `const v = Math.floor(e / this.constants.D);
const k = slot[v];
if (k < 0) { return old[i]; }
return src[sOff + k * this.constants.D + e - v * this.constants.D];`,
  true,
);

// ---- recurrent cells -----------------------------------------------------------------------------

export const RNN_FORWARD = guarded('rnnForward', ['pre'], ['pOff'], [], `return ${TANH('pre[pOff + e]')};`);
export const RNN_BACKWARD = guarded('rnnBackward', ['h', 'dh'], ['hOff', 'dhOff'], [], 'const hv = h[hOff + e];\nreturn dh[dhOff + e] * (1 - hv * hv);');

/** Row b and column j of element e of a [B, H] view, and the offset of gate block 0 in a [B, nH] row. */
const CELL_INDEX = (blocks: number) => `const b = Math.floor(e / this.constants.H);
const j = e - b * this.constants.H;
const g = gOff + b * ${blocks} * this.constants.H + j;`;

/** LSTM c view [B, H] = f * cPrev + i * g from the pre-activations. Constant H. */
export const LSTM_C = guarded(
  'lstmC', ['gates', 'cp'], ['gOff', 'cpOff'], [],
  `${CELL_INDEX(4)}
const ig = ${SIG('gates[g]')};
const fg = ${SIG('gates[g + this.constants.H]')};
const gg = ${TANH('gates[g + 2 * this.constants.H]')};
return fg * cp[cpOff + e] + ig * gg;`,
);
/** LSTM h view [B, H] = o * tanh(c), o from the pre-activations, c the new cell state. */
export const LSTM_H = guarded(
  'lstmH', ['gates', 'c'], ['gOff', 'cOff'], [],
  `${CELL_INDEX(4)}
const og = ${SIG('gates[g + 3 * this.constants.H]')};
return og * ${TANH('c[cOff + e]')};`,
);
/** LSTM gates view [B, 4H]: pre-activations to activations (sigmoid, but tanh for block g). */
export const LSTM_ACT = guarded(
  'lstmAct', [], [], [],
  `const col = e - Math.floor(e / (4 * this.constants.H)) * 4 * this.constants.H;
const v = old[i];
if (Math.floor(col / this.constants.H) === 2) { return ${TANH('v')}; }
return ${SIG('v')};`,
);

/** The LSTM backward quantities of element (b, j) from the activations and states. */
const LSTM_BACK_COMMON = `const ig = gates[g];
const fg = gates[g + this.constants.H];
const gg = gates[g + 2 * this.constants.H];
const og = gates[g + 3 * this.constants.H];
const tc = ${TANH('c[cOff + k]')};
const dhv = dh[dhOff + k];
const dct = dc[dcOff + k] + dhv * og * (1 - tc * tc);`;

/** LSTM dGates view [B, 4H]. Constant H. */
export const LSTM_DGATES = guarded(
  'lstmDGates', ['gates', 'cp', 'c', 'dh', 'dc'], ['gOff', 'cpOff', 'cOff', 'dhOff', 'dcOff'], [],
  `const row = Math.floor(e / (4 * this.constants.H));
const col = e - row * 4 * this.constants.H;
const blk = Math.floor(col / this.constants.H);
const j = col - blk * this.constants.H;
const k = row * this.constants.H + j;
const g = gOff + row * 4 * this.constants.H + j;
${LSTM_BACK_COMMON}
if (blk === 0) { return dct * gg * ig * (1 - ig); }
if (blk === 1) { return dct * cp[cpOff + k] * fg * (1 - fg); }
if (blk === 2) { return dct * ig * (1 - gg * gg); }
return dhv * tc * og * (1 - og);`,
);
/** LSTM dc view [B, H] in place: dLoss/dcPrev = dct * f. Constant H. */
export const LSTM_DC = guarded(
  'lstmDc', ['gates', 'c', 'dh', 'dc'], ['gOff', 'cOff', 'dhOff', 'dcOff'], [],
  `${CELL_INDEX(4)}
const k = e;
${LSTM_BACK_COMMON}
return dct * fg;`,
);

/** GRU h view [B, H] = (1 - z) * n + z * hPrev from the pre-activations. Constant H. */
export const GRU_H = guarded(
  'gruH', ['xg', 'hg', 'hp'], ['gOff', 'hgOff', 'hpOff'], [],
  `${CELL_INDEX(3)}
const H = this.constants.H;
const q = hgOff + g - gOff;
const r = ${SIG('xg[g] + hg[q]')};
const z = ${SIG('xg[g + H] + hg[q + H]')};
const n = ${TANH('xg[g + 2 * H] + r * hg[q + 2 * H]')};
return (1 - z) * n + z * hp[hpOff + e];`,
);
/** GRU xg view [B, 3H]: pre-activations to activations r, z, n. hg at the same offset as xg. */
export const GRU_ACT = guarded(
  'gruAct', ['hg'], ['hgOff'], [],
  `const H = this.constants.H;
const row = Math.floor(e / (3 * H));
const col = e - row * 3 * H;
const blk = Math.floor(col / H);
const base = row * 3 * H + col - blk * H;
if (blk < 2) { return ${SIG('old[i] + hg[hgOff + e]')}; }
const r = ${SIG('old[dOff + base] + hg[hgOff + base]')};
return ${TANH('old[i] + r * hg[hgOff + e]')};`,
);

/** GRU backward of element e of a [B, 3H] view: which = 0 gives dXg, 1 gives dHg. Constant H. */
function gruGateGrad(name: string, nScale: string): KernelDef {
  return guarded(
    name, ['gates', 'hg', 'hp', 'dh'], ['gOff', 'hgOff', 'hpOff', 'dhOff'], [],
    `const H = this.constants.H;
const row = Math.floor(e / (3 * H));
const col = e - row * 3 * H;
const blk = Math.floor(col / H);
const j = col - blk * H;
const g = gOff + row * 3 * H + j;
const k = row * H + j;
const r = gates[g];
const z = gates[g + H];
const n = gates[g + 2 * H];
const dhv = dh[dhOff + k];
const dn = dhv * (1 - z) * (1 - n * n);
if (blk === 2) { return dn${nScale}; }
if (blk === 1) { return dhv * (hp[hpOff + k] - n) * z * (1 - z); }
return dn * hg[hgOff + row * 3 * H + 2 * H + j] * r * (1 - r);`,
  );
}
export const GRU_DXG = gruGateGrad('gruDXg', '');
export const GRU_DHG = gruGateGrad('gruDHg', ' * r');
/** GRU dhPrev view [B, H] = dh * z. Constant H. */
export const GRU_DHPREV = guarded(
  'gruDhPrev', ['gates', 'dh'], ['gOff', 'dhOff'], [],
  `${CELL_INDEX(3)}
return dh[dhOff + e] * gates[g + this.constants.H];`,
);

// ---- output layer --------------------------------------------------------------------------------

/**
 * Row statistics of logits z [N, V] scaled by invT: cell 2r = the row's max, cell 2r + 1 =
 * log(sum exp((z - max) * invT)). Output [2N], a scratch buffer. Constant V.
 */
export const ROW_STATS: KernelDef = {
  name: 'rowStats', arrays: ['z'], ints: ['zOff'], floats: ['invT'], guarded: false,
  body: `const r = Math.floor(this.thread.x / 2);
const o = zOff + r * this.constants.V;
let mx = z[o];
for (let j = 1; j < this.constants.V; j++) {
  mx = Math.max(mx, z[o + j]);
}
if (this.thread.x - 2 * r === 0) { return mx; }
let s = 0;
for (let j = 0; j < this.constants.V; j++) {
  s += Math.exp((z[o + j] - mx) * invT);
}
return Math.log(s);`,
};
/** losses view [N] = logSum - (z[target] - max). Constant V. */
export const CE_LOSS = guarded(
  'ceLoss', ['z', 'st', 'tg'], ['zOff', 'tOff'], [],
  'return st[2 * e + 1] - (z[zOff + e * this.constants.V + tg[tOff + e]] - st[2 * e]);',
);
/** dLogits view [N, V] = scale * (softmax - onehot(target)). Constant V. */
export const CE_GRAD = guarded(
  'ceGrad', ['z', 'st', 'tg'], ['zOff', 'tOff'], ['scale'],
  `const r = Math.floor(e / this.constants.V);
const p = scale * Math.exp(z[zOff + e] - st[2 * r] - st[2 * r + 1]);
if (e - r * this.constants.V === tg[tOff + r]) { return p - scale; }
return p;`,
);
/** probs view [N, V] = softmax(z * invT). Constant V. */
export const SOFTMAX = guarded(
  'softmax', ['z', 'st'], ['zOff'], ['invT'],
  'const r = Math.floor(e / this.constants.V);\nreturn Math.exp((z[zOff + e] - st[2 * r]) * invT - st[2 * r + 1]);',
);

// ---- dropout -------------------------------------------------------------------------------------

/**
 * backend.ts's dropoutHash (lowbias32) on four bytes held as floats, every intermediate below
 * 2^20 and so exact in float32 and in JavaScript alike: 32-bit products are summed byte by byte
 * with carries, shifts and xors work on bytes. Defines h0..h3 (least significant first) from
 * the element index `e` and the seed bytes s0..s3.
 */
function hashBytes(): string {
  const lines: string[] = [];
  let n = 0;
  const fresh = (p: string) => `${p}${n++}`;
  const mod = (v: string) => `(${v} - Math.floor(${v} / 256) * 256)`;
  // Bytes of a 32-bit sum (mod 2^32): byte k adds up terms[k] and the carry out of byte k - 1.
  const carryBytes = (terms: string[][], prefix: string): string[] => {
    let carry = '0';
    return terms.map((byteTerms, k) => {
      const t = fresh('t');
      lines.push(`const ${t} = ${[...byteTerms, carry].join(' + ')};`);
      const o = fresh(prefix);
      lines.push(`const ${o} = ${mod(t)};`);
      if (k < 3) {
        carry = fresh('k');
        lines.push(`const ${carry} = Math.floor(${t} / 256);`);
      }
      return o;
    });
  };
  // x * C mod 2^32, C a constant: byte k of the product sums x_i * c_(k-i).
  const mulConst = (x: string[], c: number): string[] => {
    const cb = [c & 255, (c >>> 8) & 255, (c >>> 16) & 255, c >>> 24];
    const terms = [0, 1, 2, 3].map((k) => {
      const byteTerms: string[] = [];
      for (let i = 0; i <= k; i++) if (cb[k - i] !== 0) byteTerms.push(`${x[i]} * ${cb[k - i]}`);
      return byteTerms;
    });
    return carryBytes(terms, 'm');
  };
  // x + seed mod 2^32.
  const addSeed = (x: string[]): string[] => carryBytes([0, 1, 2, 3].map((k) => [x[k], `s${k}`]), 'a');
  // x ^= x >>> 16: the low two bytes take the high two.
  const xorShift16 = (x: string[]): string[] => {
    const lo0 = fresh('x');
    const lo1 = fresh('x');
    lines.push(`const ${lo0} = ${x[0]} ^ ${x[2]};`, `const ${lo1} = ${x[1]} ^ ${x[3]};`);
    return [lo0, lo1, x[2], x[3]];
  };
  // x ^= x >>> 15: bytes of x >>> 15 are (x1 >> 7 | x2 << 1), (x2 >> 7 | x3 << 1), x3 >> 7, 0.
  const xorShift15 = (x: string[]): string[] => {
    const s = [
      `(Math.floor(${x[1]} / 128) + ${mod(`${x[2]} * 2`)})`,
      `(Math.floor(${x[2]} / 128) + ${mod(`${x[3]} * 2`)})`,
      `Math.floor(${x[3]} / 128)`,
    ];
    const out = [0, 1, 2].map((k) => {
      const o = fresh('x');
      lines.push(`const ${o} = ${x[k]} ^ ${s[k]};`);
      return o;
    });
    return [...out, x[3]];
  };
  lines.push('const e1 = Math.floor(e / 256);', 'const e2 = Math.floor(e1 / 256);');
  const idx = ['(e - e1 * 256)', '(e1 - e2 * 256)', `${mod('e2')}`, '0'];
  let x = addSeed(mulConst(idx, 0x9e3779b1));
  x = xorShift16(x);
  x = mulConst(x, 0x7feb352d);
  x = xorShift15(x);
  x = mulConst(x, 0x846ca68b);
  x = xorShift16(x);
  lines.push(`const h0 = ${x[0]};`, `const h1 = ${x[1]};`, `const h2 = ${x[2]};`, `const h3 = ${x[3]};`);
  return lines.join('\n');
}

/**
 * out view = keep ? x * keepScale : 0, keep = hash(seed, e) >= ceil(p * 2^32), compared as two
 * 16-bit halves (thrHi, thrLo). The seed comes as bytes s0..s3.
 */
export const DROPOUT = guarded(
  'dropout', ['x'], ['xOff', 's0', 's1', 's2', 's3', 'thrHi', 'thrLo'], ['keepScale'],
  `${hashBytes()}
const hi = h3 * 256 + h2;
const lo = h1 * 256 + h0;
if (hi > thrHi || (hi === thrHi && lo >= thrLo)) { return x[xOff + e] * keepScale; }
return 0;`,
);

// ---- optimisation --------------------------------------------------------------------------------

/** Partial sums of squares of x view [N]: cell q sums elements q*C .. q*C + C - 1. Constants N, C. */
export const SUM_SQUARES: KernelDef = {
  name: 'sumSquares', arrays: ['x'], ints: ['xOff'], floats: [], guarded: false,
  body: `let s = 0;
for (let k = 0; k < this.constants.C; k++) {
  const idx = this.thread.x * this.constants.C + k;
  if (idx < this.constants.N) {
    const v = x[xOff + idx];
    s += v * v;
  }
}
return s;`,
};

// Adagrad with the Kahan-compensated accumulator, in float32 steps exactly as backend.ts
// specifies (Math.fround is the identity in WGSL, where every operation is float32 already).
// The new sum t is computed by one kernel into a scratch buffer and read back by the others:
// a shader compiler that may reassociate float math (GLSL's may) would otherwise fold
// (mem + y) - mem - y to 0 within one shader and lose the compensation.
const ADAGRAD_Y = 'const gv = g[gOff + e];\nconst y = Math.fround(Math.fround(gv * gv) - mc[mcOff + e]);';
/** t [N] = mem + (g^2 - memComp) over the views (not guarded: a scratch output). */
export const ADAGRAD_T: KernelDef = {
  name: 'adagradT', arrays: ['g', 'mem', 'mc'], ints: ['gOff', 'memOff', 'mcOff'], floats: [], guarded: false,
  body: `const e = this.thread.x;\n${ADAGRAD_Y}\nreturn mem[memOff + e] + y;`,
};
export const ADAGRAD_P = guarded('adagradP', ['g', 't'], ['gOff'], ['lr', 'eps'], 'const gv = g[gOff + e];\nreturn old[i] - (lr * gv) / Math.sqrt(t[e] + eps);');
export const ADAGRAD_COMP = guarded('adagradComp', ['g', 'mem', 't'], ['gOff', 'memOff'], [], `${ADAGRAD_Y.replace('mc[mcOff + e]', 'old[i]')}\nreturn Math.fround(t[e] - mem[memOff + e]) - y;`);

const RMS_MS = 'const gv = g[gOff + e];\nconst m = Math.fround(alpha * ms[msOff + e] + (1 - alpha) * gv * gv);';
export const RMSPROP_MS = guarded('rmspropMs', ['g', 'ms'], ['gOff', 'msOff'], ['alpha'], `${RMS_MS}\nreturn m;`);
export const RMSPROP_P = guarded('rmspropP', ['g', 'ms'], ['gOff', 'msOff'], ['alpha', 'lr', 'eps'], `${RMS_MS}\nreturn old[i] - (lr * gv) / (Math.sqrt(m) + eps);`);

const ADAM_COMMON = `const gv = g[gOff + e];
const m1 = Math.fround(beta1 * m[mOff + e] + (1 - beta1) * gv);
const v1 = Math.fround(beta2 * v[vOff + e] + (1 - beta2) * gv * gv);`;
const ADAM_ARGS = { arrays: ['g', 'm', 'v'], ints: ['gOff', 'mOff', 'vOff'] };
export const ADAM_M = guarded('adamM', ADAM_ARGS.arrays, ADAM_ARGS.ints, ['beta1', 'beta2'], `${ADAM_COMMON}\nreturn m1;`);
export const ADAM_V = guarded('adamV', ADAM_ARGS.arrays, ADAM_ARGS.ints, ['beta1', 'beta2'], `${ADAM_COMMON}\nreturn v1;`);
export const ADAM_P = guarded(
  'adamP', ADAM_ARGS.arrays, ADAM_ARGS.ints, ['beta1', 'beta2', 'lr', 'bc1', 'bc2', 'eps'],
  `${ADAM_COMMON}\nreturn old[i] - (lr * (m1 / bc1)) / (Math.sqrt(v1 / bc2) + eps);`,
);
