import { loadGpuJs } from './gpujs.js';

/**
 * Where the gpu backend's buffers ("roots") live, how its kernels run, and the few things done
 * to roots that are not kernels: allocate, upload into part of one, copy a kernel's result into
 * part of one, read back, release.
 *
 * Why this exists: a gpu.js kernel has one output, a buffer of its own that it reuses on every
 * call, and cannot write into part of another buffer. An op on a time step's rows of a window
 * buffer [T*B, G] therefore runs its kernel over the view's cells only, and the result is then
 * copied into the root at the view's offset: on WebGPU one copyBufferToBuffer, queued after the
 * kernels of the op (a queue runs in submission order, so a later call of the same kernel,
 * which overwrites its output, waits for the copy). Writing the whole root from every op
 * instead (which gpu.js's immutable outputs allow) costs an allocation and a full pass over
 * the window per time step: measured on an H100, that made a 2x512 LSTM four times slower than
 * the CPU.
 *
 * Launches. Called as gpu.js means, every kernel call is a command encoder and a submit of its
 * own; a step of a 2x512 LSTM is some 1,500 ops. So on WebGPU the kernels gpu.js has built are
 * recorded, with the copies, into one command encoder that is submitted when something must
 * leave the device (a read), when a host write must land in order, or every FLUSH_EVERY
 * launches (see WebGpuMemory.run). An op still costs the host about 30 us to queue, record and
 * copy on an H100's machine (Dawn through Node), which is what makes small models faster on
 * the CPU.
 *
 * Two implementations: host Float32Arrays (gpu.js `cpu` mode, where kernels return arrays) and
 * WebGPU buffers (gpu.js `webgpu` mode, on gpu.js's shared device).
 */
export interface RootMemory {
  /** Ready the memory (the WebGPU device); called once, before anything else. */
  init(): Promise<void>;
  /** A new root of `size` zeros, or with `zeroed` false, of anything (a scratch the next op fills). */
  alloc(size: number, zeroed: boolean): Root;
  /** What a kernel takes as an array argument for `root`. */
  argument(root: Root): unknown;
  /**
   * Run a kernel made by gpu.js's createKernel (a 1-D output of `outSize` cells) on `args`;
   * resolves to what commit takes as its result: valid until the kernel runs again.
   */
  run(kernel: KernelFn, args: unknown[], outSize: number): Promise<unknown>;
  /** root[offset ..] = data. */
  write(root: Root, offset: number, data: Float32Array): void;
  /**
   * Copy each kernel result's first `count` values into its root at `offset`, after every
   * kernel launched before (and so after every read of the roots' old contents).
   */
  commit(copies: readonly Commit[]): void;
  /** root[offset .. offset + count) on the host, after everything submitted before. */
  read(root: Root, offset: number, count: number): Promise<Float32Array>;
  /** Give a root back, to be reused or freed (work already submitted that uses it still completes). */
  release(root: Root): void;
  /** Resolves when everything submitted so far has run (profiling, and before close). */
  settle(): Promise<void>;
  /** Free what the memory keeps for reuse (the backend is being destroyed). */
  close(): void;
}

/** A root: a Float32Array (host memory) or a handle of a device buffer. */
export type Root = Float32Array | DeviceRoot;

/** A kernel as gpu.js's createKernel returns it: callable, with the kernel object behind it. */
export type KernelFn = ((...args: unknown[]) => unknown) & { kernel?: unknown };

export interface Commit {
  root: Root;
  offset: number;
  /** What run resolved to: in host memory gpu.js's Float32Array, on WebGPU the kernel's output buffer. */
  result: unknown;
  count: number;
}

// ---- host -----------------------------------------------------------------------------------------

export class HostMemory implements RootMemory {
  async init(): Promise<void> {}

  alloc(size: number): Root {
    return new Float32Array(size);
  }

  argument(root: Root): unknown {
    return root;
  }

  async run(kernel: KernelFn, args: unknown[]): Promise<unknown> {
    return kernel(...args);
  }

  write(root: Root, offset: number, data: Float32Array): void {
    host(root).set(data, offset);
  }

  commit(copies: readonly Commit[]): void {
    for (const c of copies) host(c.root).set((c.result as Float32Array).subarray(0, c.count), c.offset);
  }

  async read(root: Root, offset: number, count: number): Promise<Float32Array> {
    return host(root).slice(offset, offset + count);
  }

  release(): void {}

  async settle(): Promise<void> {}

  close(): void {}
}

function host(r: Root): Float32Array {
  if (!(r instanceof Float32Array)) throw new Error('a device buffer in host memory');
  return r;
}

// ---- WebGPU ---------------------------------------------------------------------------------------

// The parts of the WebGPU API used here (the `webgpu` package implements them).
interface GPUBuffer {
  readonly size: number;
  mapAsync(mode: number, offset?: number, size?: number): Promise<void>;
  getMappedRange(offset?: number, size?: number): ArrayBuffer;
  unmap(): void;
  destroy(): void;
}
interface GPUComputePass {
  setPipeline(p: unknown): void;
  setBindGroup(index: number, group: unknown): void;
  dispatchWorkgroups(x: number, y?: number, z?: number): void;
  end(): void;
}
interface GPUCommandEncoder {
  copyBufferToBuffer(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, size: number): void;
  clearBuffer(b: GPUBuffer): void;
  beginComputePass(): GPUComputePass;
  finish(): unknown;
}
interface GPUBindGroupEntry {
  binding: number;
  resource: { buffer: GPUBuffer; offset?: number; size?: number };
}
interface GPUDevice {
  readonly limits: { minUniformBufferOffsetAlignment: number };
  createBuffer(d: { size: number; usage: number }): GPUBuffer;
  createCommandEncoder(): GPUCommandEncoder;
  createBindGroup(d: { layout: unknown; entries: GPUBindGroupEntry[] }): unknown;
  readonly queue: {
    submit(buffers: unknown[]): void;
    writeBuffer(b: GPUBuffer, offset: number, data: ArrayBufferView | ArrayBuffer, dataOffset?: number, size?: number): void;
    onSubmittedWorkDone(): Promise<void>;
  };
}
/** gpu.js's shared device, as WebGPUContext.acquire() resolves it. */
interface GpuJsContext {
  device: GPUDevice;
}
/** A gpu.js pipeline handle (WebGPUBufferResult): what kernels take and return. */
interface DeviceRoot {
  readonly buffer: GPUBuffer;
  readonly output: number[];
  delete(): void;
}
interface GpuJsWebGpu {
  WebGPUContext: { acquire(): Promise<GpuJsContext> };
  WebGPUBufferResult: new (s: { buffer: GPUBuffer; output: number[]; componentCount: number; context: GpuJsContext; kernel: null }) => DeviceRoot;
}

/**
 * The parts of a built gpu.js 2.24.1 WebGPUKernel (src/backend/web-gpu/kernel.js) that
 * recording a launch uses: what its own `_runInternal` does up to the submit. gpu.js is pinned
 * to that version in package.json; the webgpu-mode tests run every kernel through this path.
 */
interface BuiltKernel {
  built: boolean;
  build(...args: unknown[]): Promise<void>;
  threadDim: number[];
  outputBuffer: GPUBuffer;
  _ensureOutputBuffer(): void;
  _computeDispatch(threadDim: number[]): { groups: number[]; dispatchWidth: number };
  paramsLayout: {
    arrayArgs: Array<{ index: number; dimsOffset: number }>;
    scalarArgs: Array<{ index: number; offset: number; type: string }>;
    bufferConstants: unknown[];
    randomSeedOffset: number | null;
  };
  paramsMirror: ArrayBuffer;
  paramsU32: Uint32Array;
  paramsI32: Int32Array;
  paramsF32: Float32Array;
  computePipeline: unknown;
  bindGroupLayout: unknown;
}

/** What run() resolves to on WebGPU: the kernel's output buffer (valid until it runs again). */
interface KernelOutput {
  buffer: GPUBuffer;
  /** A gpu.js handle to delete once copied (a launch that went through gpu.js's own path). */
  handle?: DeviceRoot;
}

// GPUBufferUsage and GPUMapMode flags (WebGPU spec values).
const MAP_READ = 0x0001;
const COPY_SRC = 0x0004;
const COPY_DST = 0x0008;
const UNIFORM = 0x0040;
const STORAGE = 0x0080;

/** Launches recorded before a submit (a few milliseconds of GPU work on an H100). */
const FLUSH_EVERY = 256;

/** Bind groups kept for reuse: a few training steps' worth of launches. */
const BIND_GROUPS_KEPT = 16384;

/**
 * Released roots are kept for reuse, by size, up to this many bytes: the scratch buffers of
 * every step (GEMM slices, row statistics, the optimizers' temporaries) come and go with the
 * same sizes, and creating a buffer costs Dawn more than most kernels take to run.
 */
const POOL_BYTES = 512 * 2 ** 20;

export class WebGpuMemory implements RootMemory {
  private readonly gpujs = loadGpuJs() as unknown as GpuJsWebGpu;
  private context: GpuJsContext | null = null;
  /** Launches recorded into the shared encoder, and run through gpu.js's own path (first calls). */
  readonly counts = { recorded: 0, direct: 0 };
  /** The commands recorded since the last submit, or null. */
  private encoder: GPUCommandEncoder | null = null;
  private launches = 0;
  /** Each recorded launch's parameters (gpu.js's uniform block), at `slot`-aligned offsets. */
  private params = new Uint8Array(0);
  private paramsUsed = 0;
  private paramsBuffer: GPUBuffer | null = null;
  private slot = 256;
  /** Buffers released while commands using them were still being recorded. */
  private doomed: GPUBuffer[] = [];
  private readonly bindGroups = new Map<string, unknown>();
  /** Numbers naming kernels and buffers in bind-group keys. */
  private readonly ids = new WeakMap<object, number>();
  private nextId = 0;
  /** Released roots by size in cells. Reuse needs no wait: the queue runs in order. */
  private readonly pool = new Map<number, DeviceRoot[]>();
  private pooledBytes = 0;

  async init(): Promise<void> {
    this.context = await this.gpujs.WebGPUContext.acquire();
    this.slot = Math.max(256, this.device.limits.minUniformBufferOffsetAlignment);
  }

  private get device(): GPUDevice {
    if (!this.context) throw new Error('WebGpuMemory used before init');
    return this.context.device;
  }

  private get recording(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  /** Submit what was recorded; then free what was released meanwhile. */
  flush(): void {
    if (this.encoder) {
      if (this.paramsUsed > 0) this.device.queue.writeBuffer(this.paramsBuffer!, 0, this.params, 0, this.paramsUsed);
      this.device.queue.submit([this.encoder.finish()]);
      this.encoder = null;
      this.launches = 0;
      // The next recording's parameters reuse the buffer: queue.writeBuffer lands after the
      // commands submitted before it have run.
      this.paramsUsed = 0;
    }
    for (const b of this.doomed) b.destroy();
    this.doomed = [];
  }

  alloc(size: number, zeroed: boolean): Root {
    // A binding may not be empty: an empty root gets one cell.
    const cells = Math.max(1, size);
    const reused = this.pool.get(cells)?.pop();
    if (reused) {
      this.pooledBytes -= 4 * cells;
      if (zeroed) this.recording.clearBuffer(reused.buffer);
      return reused;
    }
    // New WebGPU buffers start zeroed.
    const buffer = this.device.createBuffer({ size: 4 * cells, usage: STORAGE | COPY_SRC | COPY_DST });
    // Wrapped as gpu.js's own handle type, which its kernels accept as array arguments.
    return new this.gpujs.WebGPUBufferResult({ buffer, output: [cells], componentCount: 1, context: this.context!, kernel: null });
  }

  argument(root: Root): unknown {
    return root;
  }

  async run(fn: KernelFn, args: unknown[], outSize: number): Promise<unknown> {
    const k = fn.kernel as BuiltKernel;
    if (!k.built || args.some((a) => a instanceof Float32Array) || k.paramsLayout.bufferConstants.length > 0 || k.paramsLayout.randomSeedOffset !== null) {
      // gpu.js's own path (which submits at once): a kernel's first call (it builds, and may
      // switch to another kernel object for these argument types), and host arrays, which it
      // uploads with queue.writeBuffer (landing before anything still being recorded).
      this.flush();
      this.counts.direct++;
      const handle = (await fn(...args)) as DeviceRoot;
      return { buffer: handle.buffer, handle } satisfies KernelOutput;
    }
    this.record(k, args, outSize);
    this.counts.recorded++;
    return { buffer: k.outputBuffer } satisfies KernelOutput;
  }

  /** What gpu.js's _runInternal does for a pipeline kernel, into the shared encoder. */
  private record(k: BuiltKernel, args: unknown[], outSize: number): void {
    k.threadDim = [outSize, 1, 1];
    k._ensureOutputBuffer();
    const { groups, dispatchWidth } = k._computeDispatch(k.threadDim);
    k.paramsU32.set([outSize, 1, 1, dispatchWidth]);
    const buffers: GPUBuffer[] = [];
    for (const a of k.paramsLayout.arrayArgs) {
      const root = args[a.index] as DeviceRoot;
      k.paramsU32.set([root.output[0], 1, 1, root.output[0]], a.dimsOffset / 4);
      buffers.push(root.buffer);
    }
    for (const s of k.paramsLayout.scalarArgs) {
      const v = args[s.index] as number;
      if (s.type === 'Integer') k.paramsI32[s.offset / 4] = v;
      else if (s.type === 'Boolean') k.paramsU32[s.offset / 4] = v ? 1 : 0;
      else k.paramsF32[s.offset / 4] = v;
    }
    buffers.push(k.outputBuffer);
    const size = k.paramsMirror.byteLength;
    const offset = this.paramsSlot(size);
    this.params.set(new Uint8Array(k.paramsMirror), offset);
    const pass = this.recording.beginComputePass();
    pass.setPipeline(k.computePipeline);
    pass.setBindGroup(0, this.bindGroup(k, offset, size, buffers));
    pass.dispatchWorkgroups(groups[0], groups[1], groups[2]);
    pass.end();
    this.launches++;
  }

  /**
   * The bind group of a launch: its parameter block at `offset`, then `buffers` (the arrays,
   * the output) at bindings 1, 2, ... A training step repeats the same launches on the same
   * buffers with the same parameter offsets (submits happen at the same points), so the groups
   * are kept: making one costs the host more than recording the rest of the launch.
   */
  private bindGroup(k: BuiltKernel, offset: number, size: number, buffers: readonly GPUBuffer[]): unknown {
    const key = `${this.id(k)}|${offset}|${buffers.map((b) => this.id(b)).join(',')}`;
    let group = this.bindGroups.get(key);
    if (!group) {
      const entries: GPUBindGroupEntry[] = [{ binding: 0, resource: { buffer: this.paramsBuffer!, offset, size } }];
      for (const [j, buffer] of buffers.entries()) entries.push({ binding: 1 + j, resource: { buffer } });
      group = this.device.createBindGroup({ layout: k.bindGroupLayout, entries });
      // A group holds its buffers: forget them all now and then rather than track each one.
      if (this.bindGroups.size >= BIND_GROUPS_KEPT) this.bindGroups.clear();
      this.bindGroups.set(key, group);
    }
    return group;
  }

  private id(o: object): number {
    let id = this.ids.get(o);
    if (id === undefined) {
      id = this.nextId++;
      this.ids.set(o, id);
    }
    return id;
  }

  /** The offset of a new launch's parameter block (of `size` bytes) in this recording's buffer. */
  private paramsSlot(size: number): number {
    if (size > this.slot) throw new Error(`a kernel's parameters take ${size} bytes, over ${this.slot}`);
    if (!this.paramsBuffer) {
      this.params = new Uint8Array(FLUSH_EVERY * this.slot);
      this.paramsBuffer = this.device.createBuffer({ size: this.params.length, usage: UNIFORM | COPY_DST });
    }
    if (this.paramsUsed === this.params.length) this.flush();
    const offset = this.paramsUsed;
    this.paramsUsed += this.slot;
    return offset;
  }

  write(root: Root, offset: number, data: Float32Array): void {
    // queue.writeBuffer lands before commands not yet submitted: submit them first.
    this.flush();
    if (data.length > 0) this.device.queue.writeBuffer(dev(root).buffer, 4 * offset, data);
  }

  commit(copies: readonly Commit[]): void {
    for (const c of copies) {
      const out = c.result as KernelOutput;
      this.recording.copyBufferToBuffer(out.buffer, 0, dev(c.root).buffer, 4 * c.offset, 4 * c.count);
      // A gpu.js handle holds a reference to its kernel's output buffer, which the kernel keeps
      // and reuses: dropping it frees nothing.
      out.handle?.delete();
    }
    if (this.launches >= FLUSH_EVERY) this.flush();
  }

  async read(root: Root, offset: number, count: number): Promise<Float32Array> {
    if (count === 0) return new Float32Array(0);
    const staging = this.device.createBuffer({ size: 4 * count, usage: MAP_READ | COPY_DST });
    this.recording.copyBufferToBuffer(dev(root).buffer, 4 * offset, staging, 0, 4 * count);
    this.flush();
    try {
      await staging.mapAsync(MAP_READ);
      return new Float32Array(staging.getMappedRange().slice(0));
    } finally {
      staging.destroy();
    }
  }

  release(root: Root): void {
    const r = dev(root);
    const cells = r.output[0];
    if (this.pooledBytes + 4 * cells <= POOL_BYTES) {
      this.pooledBytes += 4 * cells;
      const list = this.pool.get(cells);
      if (list) list.push(r);
      else this.pool.set(cells, [r]);
      return;
    }
    // Recorded commands may still use it: destroyed at the next submit.
    if (this.encoder) this.doomed.push(r.buffer);
    else r.buffer.destroy();
  }

  settle(): Promise<void> {
    this.flush();
    return this.device.queue.onSubmittedWorkDone();
  }

  close(): void {
    this.flush();
    for (const list of this.pool.values()) for (const r of list) r.buffer.destroy();
    this.pool.clear();
    this.pooledBytes = 0;
    this.bindGroups.clear();
    this.paramsBuffer?.destroy();
    this.paramsBuffer = null;
  }
}

function dev(r: Root): DeviceRoot {
  if (r instanceof Float32Array) throw new Error('a host array in device memory');
  return r;
}
