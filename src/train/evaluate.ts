import type { Model, WindowRunner } from '../model/model.js';

/** Where evaluation reads token ids from (a token cache, or an array in memory). */
export interface TokenSource {
  read(start: number, count: number, out: Int32Array, outOffset?: number): void;
}

export interface EvalResult {
  /** Predictions scored. */
  tokens: number;
  /** Mean cross-entropy in nats per token. */
  loss: number;
}

/**
 * Mean cross-entropy of the model over the tokens [start, end), carrying state across the
 * whole region. The region is cut into B contiguous streams of S = floor((end - start - 1) / B)
 * predictions each, run in windows of T (a last shorter window covers S mod T), so every
 * prediction of every stream is scored; the (end - start - 1) mod B leftover predictions at the
 * very end are not. With B = 1 every token after the first is scored.
 */
export async function evaluateRegion(model: Model, source: TokenSource, start: number, end: number, T: number, B: number): Promise<EvalResult> {
  const S = Math.floor((end - start - 1) / B);
  if (S < 1) return { tokens: 0, loss: NaN };
  const full = Math.floor(S / T);
  const tail = S % T;
  const runners: Array<{ runner: WindowRunner; steps: number; count: number }> = [];
  if (full > 0) runners.push({ runner: model.runner(T, B, { training: false }), steps: T, count: full });
  if (tail > 0) runners.push({ runner: model.runner(tail, B, { training: false }), steps: tail, count: 1 });

  const be = model.backend;
  const streamIds = new Int32Array(T + 1);
  let total = 0;
  let offset = 0; // predictions of each stream consumed so far
  let previous: WindowRunner | null = null;
  for (const { runner, steps, count } of runners) {
    const inputs = new Int32Array(steps * B);
    const targets = new Int32Array(steps * B);
    if (previous) copyState(previous, runner);
    else runner.resetState();
    for (let w = 0; w < count; w++) {
      for (let b = 0; b < B; b++) {
        source.read(start + b * S + offset, steps + 1, streamIds);
        for (let t = 0; t < steps; t++) {
          inputs[t * B + b] = streamIds[t];
          targets[t * B + b] = streamIds[t + 1];
        }
      }
      runner.setWindow(inputs, targets);
      runner.forward(true);
      const losses = await be.read(runner.losses);
      for (let i = 0; i < losses.length; i++) total += losses[i];
      offset += steps;
    }
    previous = runner;
  }
  return { tokens: S * B, loss: total / (S * B) };
}

/** Hand the carried state of one runner to another with the same B. */
export function copyState(from: WindowRunner, to: WindowRunner): void {
  const be = from.model.backend;
  const src = from.stateTensors();
  to.stateTensors().forEach((dst, l) => {
    be.copy(src[l].h, dst.h);
    if (dst.c && src[l].c) be.copy(src[l].c!, dst.c);
  });
}
