import { type Backend, type PackedMatrix, type Tensor, asMatrix } from '../backend/backend.js';
import { formatTable } from './report.js';

/**
 * Per-op timing for `charnn bench --profile`: a Backend that forwards every call to another
 * one and adds the call's wall time to a counter named after the op (GEMMs also by shape and
 * transposes). The ops of the CPU backends are synchronous, so the time of a call is the time
 * of its work; what is left of a step (the total minus every op) is JavaScript around them:
 * the model's loops, views, the optimizer's and trainer's bookkeeping. Timing adds well under
 * a microsecond per call, which shows in configurations made of many tiny calls.
 *
 * The gpu backend's ops only queue their kernels, so it times them itself (its `profiler`
 * hook): each op from its submission until the device has finished it.
 */
export class OpTimer {
  private readonly counts = new Map<string, { calls: number; ms: number; flops: number }>();
  enabled = false;

  /** `backend` with every method call timed while `enabled`. */
  wrap(backend: Backend): Backend {
    const timer = this;
    if ('profiler' in backend) {
      (backend as { profiler: unknown }).profiler = (op: string, ms: number, flops: number) => {
        if (timer.enabled) timer.add(op, ms, flops);
      };
      return backend;
    }
    return new Proxy(backend, {
      get(target, prop) {
        const value = Reflect.get(target, prop, target);
        if (typeof value !== 'function' || typeof prop !== 'string') return value;
        return (...args: unknown[]) => {
          if (!timer.enabled) return (value as (...a: unknown[]) => unknown).apply(target, args);
          const t0 = performance.now();
          const r = (value as (...a: unknown[]) => unknown).apply(target, args);
          const gemmArgs = asGemm(prop, args);
          timer.add(opName(prop, args), performance.now() - t0, gemmArgs ? gemmFlops(gemmArgs) : 0);
          return r;
        };
      },
    });
  }

  private add(name: string, ms: number, flops: number): void {
    const c = this.counts.get(name);
    if (c) {
      c.calls++;
      c.ms += ms;
      c.flops += flops;
    } else this.counts.set(name, { calls: 1, ms, flops });
  }

  reset(): void {
    this.counts.clear();
  }

  /**
   * The table: each op's share of `totalMs` (the measured iterations' wall time), calls and
   * microseconds per iteration, GFLOP/s for GEMMs, and the rest (JavaScript between ops).
   */
  format(totalMs: number, iterations: number): string {
    const rows = [...this.counts].sort((a, b) => b[1].ms - a[1].ms);
    const opsMs = rows.reduce((s, [, c]) => s + c.ms, 0);
    const pct = (ms: number) => `${((100 * ms) / totalMs).toFixed(1)}%`;
    const perIter = (ms: number) => ((1000 * ms) / iterations).toFixed(1);
    const body = rows.map(([name, c]) => [name, pct(c.ms), String(Math.round(c.calls / iterations)), perIter(c.ms), c.flops > 0 ? (c.flops / (c.ms * 1e6)).toFixed(1) : '']);
    body.push(['(JavaScript between ops)', pct(totalMs - opsMs), '', perIter(totalMs - opsMs), '']);
    return formatTable(['op', 'time', 'calls/iter', 'us/iter', 'GFLOP/s'], body, [false, true, true, true, true]);
  }
}

/** A gemm's or gemmPacked's arguments as gemm's (transA, transB, alpha, A, B, beta, C); null for other ops. */
function asGemm(prop: string, args: unknown[]): unknown[] | null {
  if (prop === 'gemm') return args;
  if (prop !== 'gemmPacked') return null;
  const [transA, alpha, A, packed, beta, C] = args as [boolean, number, Tensor, PackedMatrix, number, Tensor];
  return [transA, packed.transB, alpha, A, packed.source, beta, C];
}

function gemmFlops(args: unknown[]): number {
  const [transA, , , A, , , C] = args as [boolean, boolean, number, Tensor, Tensor, number, Tensor];
  const [ar, ac] = asMatrix(A);
  const K = transA ? ar : ac;
  return 2 * C.size * K;
}

function opName(prop: string, args: unknown[]): string {
  const gemmArgs = asGemm(prop, args);
  if (!gemmArgs) return prop;
  const [transA, transB, , A, B, beta] = gemmArgs as [boolean, boolean, number, Tensor, Tensor, number];
  const [ar, ac] = asMatrix(A);
  const [br, bc] = asMatrix(B);
  const M = transA ? ac : ar;
  const K = transA ? ar : ac;
  const N = transB ? br : bc;
  const packed = prop === 'gemmPacked' ? ' (B packed)' : '';
  return `gemm${transA ? 'T' : 'N'}${transB ? 'T' : 'N'} ${M}x${K} * ${K}x${N}${beta !== 0 ? ' +C' : ''}${packed}`;
}
