import { type DType, type Tensor, shapeSize } from '../backend.js';
import { CharnnError } from '../../errors.js';
import { type KernelDef, kernelSource } from './kernels.js';
import { type Commit, type KernelFn, type Root, type RootMemory, WebGpuMemory } from './memory.js';
import type { GpuJs } from './gpujs.js';

/**
 * The gpu backend's machinery, apart from its ops (gpu.ts): tensors as views of root buffers,
 * the promise queue every op and read goes through, the cache of built kernels, and the launch
 * of kernels into views.
 *
 * Storage. A tensor is a view (element offset, shape) of a root buffer (memory.ts). gpu.js
 * kernels have one output, a buffer of their own, so an op on a view runs its kernel over the
 * view's cells and then copies the result into the root at the view's offset. Ops with several
 * outputs (the cells' in-place updates, the optimizers) run one kernel per output, all reading
 * the old contents before any copy lands.
 *
 * Ordering. webgpu kernel calls return Promises (the first call of a kernel compiles it
 * asynchronously), so ops go through one promise queue: an op returns at once, kernels are
 * submitted in op order, and a read resolves after everything enqueued before it. A kernel that
 * fails makes every later op and read fail with its error.
 */

/** Every index a kernel computes is float32 (gpu.js's WGSL variables are), exact below 2^24. */
export const MAX_GPU_TENSOR = 2 ** 24;

/** Holds a root once allocated; separate from Storage so the finalizer can release it. */
class Cell {
  root: Root | null = null;
  constructor(readonly memory: RootMemory) {}
}

const released = new FinalizationRegistry<Cell>((cell) => {
  if (cell.root) cell.memory.release(cell.root);
});

export class Storage {
  readonly cell: Cell;
  /** The host copy of an i32 root (the host writes every id). */
  readonly host: Int32Array | null;
  /** Counts the ops that write the root, in call order: tells when a cached transpose is stale. */
  version = 0;
  constructor(
    memory: RootMemory,
    readonly size: number,
    readonly dtype: DType,
  ) {
    this.cell = new Cell(memory);
    this.host = dtype === 'i32' ? new Int32Array(size) : null;
    released.register(this, this.cell);
  }
}

export class GpuTensor implements Tensor {
  readonly size: number;
  constructor(
    readonly storage: Storage,
    /** Element offset of the view in its root. */
    readonly offset: number,
    readonly shape: readonly number[],
    readonly dtype: DType,
  ) {
    this.size = shapeSize(shape);
  }
}

export function gt(t: Tensor): GpuTensor {
  if (!(t instanceof GpuTensor)) throw new Error('tensor does not belong to the gpu backend');
  return t;
}

/** A kernel argument: a tensor's root (read when the kernel runs) or a host array. */
export type Arg = Storage | Float32Array;

/** One kernel run writing `out`: a view (guarded kernels) or a whole scratch root. */
export interface Launch {
  def: KernelDef;
  constants: Record<string, number>;
  out: GpuTensor | Storage;
  arrays: Arg[];
  ints: number[];
  floats: number[];
}

export class GpuLauncher {
  private readonly kernels = new Map<string, KernelFn>();
  private tail: Promise<void> = Promise.resolve();
  private failure: unknown = null;
  /**
   * Profiling (`charnn bench --profile`): when set, every op waits for the device to finish it
   * and reports its kernels and the time from its submission to its end (so ops no longer
   * overlap the host's work, and the run is slower than unprofiled).
   */
  profiler: ((op: string, ms: number, flops: number) => void) | null = null;

  constructor(
    private readonly gpu: GpuJs,
    private readonly memory: RootMemory,
  ) {
    void this.enqueue(() => this.memory.init());
  }

  // ---- queue --------------------------------------------------------------------------------

  /** Run `fn` after every op enqueued before it; its result, or the first failure. */
  enqueue<T>(fn: () => T | Promise<T>): Promise<T> {
    const p = this.tail.then(() => {
      if (this.failure !== null) throw this.failure;
      return fn();
    });
    this.tail = p.then(
      () => undefined,
      (e: unknown) => {
        this.failure ??= e;
      },
    );
    return p;
  }

  /**
   * The kernel for `def` over `outSize` cells. `slot` tells apart two launches of the same
   * kernel in one op, whose results must not share the kernel's output buffer.
   */
  private kernel(def: KernelDef, constants: Record<string, number>, outSize: number, slot: number): KernelFn {
    const key = `${def.name}|${outSize}|${JSON.stringify(constants)}|${slot}`;
    let k = this.kernels.get(key);
    if (!k) {
      const argumentTypes: Record<string, string> = {};
      for (const a of def.arrays) argumentTypes[a] = 'Array';
      for (const a of def.ints) argumentTypes[a] = 'Integer';
      for (const a of def.floats) argumentTypes[a] = 'Float';
      k = this.gpu.createKernel(kernelSource(def), {
        output: [outSize],
        constants,
        argumentTypes,
        // The output stays on the device (a handle of the kernel's reused output buffer).
        pipeline: true,
        dynamicArguments: def.hostArrays === true,
      });
      this.kernels.set(key, k);
    }
    return k;
  }

  /**
   * Run the launches in order, each over its output view and reading the roots as they were
   * before the first, then copy the results into the views. Nothing runs for an empty view.
   */
  exec(launches: Launch[]): void {
    const live = launches.filter((l) => l.out.size > 0);
    if (live.length === 0) return;
    for (const l of live) (l.out instanceof GpuTensor ? l.out.storage : l.out).version++;
    void this.enqueue(async () => {
      const t0 = performance.now();
      const commits: Commit[] = [];
      for (const [j, l] of live.entries()) {
        const root = l.out instanceof GpuTensor ? l.out.storage : l.out;
        const offset = l.out instanceof GpuTensor ? l.out.offset : 0;
        const arrays = l.arrays.map((a) => (a instanceof Storage ? this.argument(a) : a));
        const args = l.def.guarded ? [this.argument(root), ...arrays, offset, ...l.ints, ...l.floats] : [...arrays, ...l.ints, ...l.floats];
        const slot = live.slice(0, j).filter((m) => m.def === l.def).length;
        const result = await this.memory.run(this.kernel(l.def, l.constants, l.out.size, slot), args, l.out.size);
        commits.push({ root: current(root), offset, result, count: l.out.size });
      }
      this.memory.commit(commits);
      if (this.profiler) {
        await this.memory.settle();
        this.profiler(opName(live), performance.now() - t0, opFlops(live));
      }
    });
  }

  private argument(s: Storage): unknown {
    return this.memory.argument(current(s));
  }

  /** A new root (allocated in queue order): zeros, or for `scratch` whatever it held before. */
  storage(size: number, dtype: DType, scratch = false): Storage {
    const s = new Storage(this.memory, size, dtype);
    void this.enqueue(() => {
      s.cell.root = this.memory.alloc(size, !scratch);
    });
    return s;
  }

  launch(def: KernelDef, out: GpuTensor | Storage, arrays: Arg[], ints: number[], floats: number[], constants: Record<string, number> = {}): Launch {
    return { def, constants, out, arrays, ints, floats };
  }

  /** Release a root once everything enqueued so far has been submitted. */
  drop(s: Storage): void {
    void this.enqueue(() => {
      if (s.cell.root) this.memory.release(s.cell.root);
      s.cell.root = null;
    });
  }

  /**
   * Part of a root on the host. The copy is submitted in queue order; the queue does not wait
   * for it to arrive, so later ops keep being submitted meanwhile.
   */
  readRoot(s: Storage, start: number, count: number): Promise<Float32Array> {
    if (count === 0) return Promise.resolve(new Float32Array(0));
    return this.enqueue(() => ({ data: this.memory.read(current(s), start, count) })).then(({ data }) => data);
  }

  /** How many launches were recorded, and run by gpu.js itself (webgpu mode; for tests). */
  launchCounts(): { recorded: number; direct: number } {
    return this.memory instanceof WebGpuMemory ? { ...this.memory.counts } : { recorded: 0, direct: 0 };
  }

  /** Destroy the gpu.js instance and its kernels (the tensors become unusable). */
  async destroy(): Promise<void> {
    await this.tail;
    // Submit what is still recorded (a failed backend has nothing worth waiting for).
    if (this.failure === null) {
      await this.memory.settle();
      this.memory.close();
    }
    this.gpu.destroy();
  }

  /** Overwrite part of a root from the host, in queue order (`values` is the caller's own copy). */
  writeRoot(s: Storage, offset: number, values: Float32Array): void {
    void this.enqueue(() => this.memory.write(current(s), offset, values));
  }
}

/** A profile row's name: the kernels, and a GEMM's shape. */
function opName(launches: readonly Launch[]): string {
  const c = launches[0].constants;
  const name = launches.map((l) => l.def.name).join('+');
  return name.startsWith('gemm') ? `${name} ${c.M}x${c.K} * ${c.K}x${c.N}` : name;
}

function opFlops(launches: readonly Launch[]): number {
  const c = launches[0].constants;
  return launches[0].def.name.startsWith('gemm') ? 2 * c.M * c.N * c.K : 0;
}

export function checkedSize(shape: readonly number[]): number {
  const n = shapeSize(shape);
  if (n > MAX_GPU_TENSOR) {
    throw new CharnnError(
      `the gpu backend indexes tensors in float32 and holds at most ${MAX_GPU_TENSOR} elements in one; [${shape.join(', ')}] has ${n}`,
      'lower --batch or --seq (the output layer is batch x seq x vocabulary), or use --device cpu',
    );
  }
  return n;
}

export function current(s: Storage): Root {
  const v = s.cell.root;
  if (v === null) throw new Error('the gpu backend used a tensor after dispose');
  return v;
}
