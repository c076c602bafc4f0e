#!/usr/bin/env node
// Micro-benchmark of the native kernels (not a test): GFLOP/s of the GEMM shapes a char-rnn
// training step runs, with 1 thread and with the pool, and per-op timings of the rest.
//
//   node scripts/bench-kernels.mjs [--quick] [--only gemm|ops] [--threads N] [--bf16]
//
// --bf16 times the GEMMs with bf16 inputs (gemmBf16, what --precision bf16 runs) instead of
// float32; it needs a CPU with AVX512-BF16.
//
// Needs the addon (npm install, or node scripts/build-native.mjs). CHARNN_ISA=avx2|base forces a
// lower instruction set, CHARNN_NUM_THREADS the pool size.

import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const file = join(root, 'native', 'build', 'Release', 'charnn_native.node');
if (!existsSync(file)) {
  console.error(`no addon at ${file}: run node scripts/build-native.mjs first`);
  process.exit(1);
}
const addon = createRequire(import.meta.url)(file);
const argv = process.argv.slice(2);
const quick = argv.includes('--quick');
const only = argv.includes('--only') ? argv[argv.indexOf('--only') + 1] : null;
const threadsArg = argv.includes('--threads') ? Number(argv[argv.indexOf('--threads') + 1]) : null;
const info = addon.info();
const bf16 = argv.includes('--bf16');
if (bf16 && !info.bf16) {
  console.error('--bf16: this CPU (or the kernels in use) has no AVX512-BF16');
  process.exit(1);
}
const gemm = bf16 ? addon.gemmBf16 : addon.gemm;
const maxThreads = threadsArg ?? info.threads;
console.log(`isa ${info.isa}, micro-tile ${info.mr}x${info.nr}, pool ${info.threads} threads, node ${process.version}`);

let s = 12345;
function rand(n, scale = 1) {
  const x = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    x[i] = (s / 4294967296 - 0.5) * 2 * scale;
  }
  return x;
}

/** Best (minimum) seconds per call of fn over 5 batches of at least minTime / 5 seconds: on a
 *  shared machine, interference only ever slows a batch down. */
function time(fn, minTime = quick ? 0.08 : 0.3) {
  for (let i = 0; i < 3; i++) fn();
  let reps = 1;
  for (;;) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) fn();
    const dt = Number(process.hrtime.bigint() - t0) / 1e9;
    if (dt > 0.02) {
      reps = Math.max(1, Math.ceil((reps * (minTime / 5)) / dt));
      break;
    }
    reps *= 4;
  }
  const samples = [];
  for (let k = 0; k < 5; k++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < reps; i++) fn();
    samples.push(Number(process.hrtime.bigint() - t0) / 1e9 / reps);
  }
  return Math.min(...samples);
}

function pad(x, n) {
  return String(x).padStart(n);
}

if (!only || only === 'gemm') {
  // [label, transA, transB, M, N, K]
  const shapes = [
    ['min-char-rnn step   [1,100]x[100,100]', false, false, 1, 100, 100],
    ['min-char-rnn back   [1,100]x[100,100]^T', false, true, 1, 100, 100],
    ['min-char-rnn dW     [100,1]x[1,100] ta', true, false, 100, 100, 1],
    ['input proj          [2500,128]x[128,512]', false, false, 2500, 512, 128],
    ['recurrent step      [50,128]x[128,512]', false, false, 50, 512, 128],
    ['step dh = dG Wh^T   [50,512]x[512,128]^T', false, true, 50, 128, 512],
    ['input grad dX       [2500,512]x[512,128]^T', false, true, 2500, 128, 512],
    ['weight grad A^T B   [128,2500]^T x[2500,512]', true, false, 128, 512, 2500],
    ['step weight grad    [128,50]^T x[50,512]', true, false, 128, 512, 50],
    ['output logits       [2500,128]x[128,65]', false, false, 2500, 65, 128],
    ['output dX           [2500,65]x[65,128]^T', false, true, 2500, 128, 65],
    ['output dW           [128,2500]^T x[2500,65]', true, false, 128, 65, 2500],
    ['A^T B^T             [128,2500]^T x[512,2500]^T', true, true, 128, 512, 2500],
    ['2x512 input proj    [2500,512]x[512,2048]', false, false, 2500, 2048, 512],
    ['2x512 step          [50,512]x[512,2048]', false, false, 50, 2048, 512],
    ['2x512 step dh       [50,2048]x[2048,512]^T', false, true, 50, 512, 2048],
    ['2x512 weight grad   [512,2500]^T x[2500,2048]', true, false, 512, 2048, 2500],
    ['2x512 input grad    [2500,2048]x[2048,512]^T', false, true, 2500, 512, 2048],
    ['word logits         [2500,128]x[128,10000]', false, false, 2500, 10000, 128],
  ];
  const threadCounts = maxThreads > 1 ? [1, maxThreads] : [1];
  console.log(`\nGEMM (C = op(A) op(B), beta = 0${bf16 ? ', bf16' : ''})${bf16 ? '' : '      '}${threadCounts.map((t) => `${pad(`${t} thr GF/s`, 12)} ${pad('us', 9)}`).join('  ')}`);
  for (const [label, ta, tb, M, N, K] of shapes) {
    if (quick && M * N * K > 1e9) continue;
    const A = rand(M * K), B = rand(K * N), C = new Float32Array(M * N);
    const cols = [];
    for (const t of threadCounts) {
      addon.setThreads(t);
      const sec = time(() => gemm(ta, tb, M, N, K, 1, A, B, 0, C));
      cols.push(`${pad(((2 * M * N * K) / sec / 1e9).toFixed(1), 12)} ${pad((sec * 1e6).toFixed(1), 9)}`);
    }
    console.log(`${label.padEnd(44)} ${cols.join('  ')}`);
  }
  addon.setThreads(maxThreads);
}

if (!only || only === 'ops') {
  addon.setThreads(maxThreads);
  console.log(`\nother ops (${maxThreads} threads)`);
  const ops = [];
  const B = 50, H = 128, H2 = 512;
  for (const [b, h] of [
    [1, 100],
    [B, H],
    [B, H2],
  ]) {
    const gates = rand(b * 4 * h, 3), cPrev = rand(b * h), c = new Float32Array(b * h), hh = new Float32Array(b * h);
    const g0 = gates.slice();
    ops.push([`lstmForward  B=${b} H=${h}`, () => (gates.set(g0), addon.lstmForward(h, gates, cPrev, c, hh))]);
    const dh = rand(b * h), dc = rand(b * h), dG = new Float32Array(b * 4 * h);
    ops.push([`lstmBackward B=${b} H=${h}`, () => addon.lstmBackward(h, gates, cPrev, c, dh, dc, dG)]);
    const xg = rand(b * 3 * h), hg = rand(b * 3 * h), x0 = xg.slice(), dX = new Float32Array(b * 3 * h), dHg = new Float32Array(b * 3 * h), dhp = new Float32Array(b * h);
    ops.push([`gruForward   B=${b} H=${h}`, () => (xg.set(x0), addon.gruForward(h, xg, hg, cPrev, hh))]);
    ops.push([`gruBackward  B=${b} H=${h}`, () => addon.gruBackward(h, xg, hg, cPrev, dh, dX, dHg, dhp)]);
    const pre = rand(b * h, 2);
    ops.push([`rnnForward   B=${b} H=${h}`, () => addon.rnnForward(pre, hh)]);
  }
  for (const V of [65, 10000]) {
    const N = 2500;
    if (quick && V > 1000) continue;
    const logits = rand(N * V, 4), targets = new Int32Array(N).map((_, i) => (i * 7) % V), losses = new Float32Array(N), d = new Float32Array(N * V);
    ops.push([`softmaxCrossEntropy [${N},${V}] +grad`, () => addon.softmaxCrossEntropy(V, logits, targets, losses, d, 1 / N)]);
    ops.push([`softmaxCrossEntropy [${N},${V}] loss only`, () => addon.softmaxCrossEntropy(V, logits, targets, losses, null, 1)]);
  }
  {
    const V = 65, logits = rand(V, 3), probs = new Float32Array(V);
    ops.push([`softmax [1,${V}] T=0.8 (sampling)`, () => addon.softmax(V, logits, probs, 0.8)]);
  }
  const n = 2500 * 128;
  const x = rand(n), y = new Float32Array(n);
  ops.push([`dropout n=${n}`, () => addon.dropout(x, y, 0.3, 42)]);
  {
    const xs = rand(2500 * 512), out = new Float32Array(512), bias = rand(512);
    ops.push([`addRowVector [2500,512]`, () => addon.addRowVector(512, xs, bias)]);
    ops.push([`sumRows [2500,512]`, () => addon.sumRows(512, xs, out, true)]);
    const table = rand(65 * 512), ids = new Int32Array(2500).map((_, i) => i % 65), o = new Float32Array(2500 * 512);
    ops.push([`gatherRows [2500] of [65,512]`, () => addon.gatherRows(512, table, ids, o)]);
    ops.push([`scatterAddRows [2500] into [65,512]`, () => addon.scatterAddRows(512, o, ids, table)]);
  }
  for (const P of [10000, 200000, 3200000]) {
    const p = rand(P), g = rand(P), m = new Float32Array(P), v = new Float32Array(P), comp = new Float32Array(P);
    ops.push([`adam n=${P}`, () => addon.adam(p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 10)]);
    ops.push([`adagrad n=${P}`, () => addon.adagrad(p, g, m, comp, 1e-1, 1e-8)]);
    ops.push([`sumSquares n=${P}`, () => addon.sumSquares([g])]);
    ops.push([`clip n=${P}`, () => addon.clip(g, 5)]);
  }
  ops.push(['gemm call overhead [1,1]x[1,1]', () => addon.gemm(false, false, 1, 1, 1, 1, x.subarray(0, 1), x.subarray(1, 2), 0, y.subarray(0, 1))]);
  ops.push(['fill n=1 (N-API call overhead)', () => addon.fill(y.subarray(0, 1), 0)]);
  for (const [label, fn] of ops) {
    const sec = time(fn);
    console.log(`${label.padEnd(44)} ${pad((sec * 1e6).toFixed(2), 10)} us`);
  }
  if (maxThreads > 1) {
    addon.poolRoundTrip(2000, 10000);
    const ns = Math.min(...[0, 1, 2].map(() => addon.poolRoundTrip(2000, 10000)));
    console.log(`${'parallel region, 1 task of 10 us per thread'.padEnd(44)} ${pad((ns / 1e3).toFixed(2), 10)} us  (overhead ${((ns - 10000) / 1e3).toFixed(2)} us)`);
  }
}
