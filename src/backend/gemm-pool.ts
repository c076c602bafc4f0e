import { existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { MessageChannel, type MessagePort, Worker, receiveMessageOnPort } from 'node:worker_threads';
import { type GemmProblem, type GemmSplit, gemmPart, planSplit } from './tiled-gemm.js';

/**
 * Worker threads for the TypeScript backend's GEMM. JavaScript runs one thread per isolate,
 * and the GEMM is ~90% of a training step on that backend, so without workers it uses one
 * core of the machine. A GEMM big enough to pay for it is cut into blocks of C (planSplit:
 * whole 4x4 tiles, by rows or by columns); the calling thread and the workers claim blocks
 * from a shared counter until none is left, and the caller blocks (Atomics.wait) until every
 * claimed block is done. A block is computed by the same kernel whichever thread runs it
 * (tiled-gemm.ts), so results are bit-identical to one thread's.
 *
 * The operands must live in SharedArrayBuffers (the TypeScript backend allocates every float
 * tensor so); each job's message carries them to the workers, sharing, not copying, the memory.
 * Measured on a 2-core Xeon: a message round trip to a worker (post, wake, reply) costs
 * ~20 us, against ~4 ms for the per-time-step [50,128]x[128,512] GEMM of a 2x128 LSTM.
 *
 * The shared control words (Int32Array `ctl`):
 *   CLAIM: (job sequence number << PART_BITS) | next unclaimed part. A thread claims part q
 *          by compare-and-swap; a worker reading another job's sequence number there knows
 *          its message is stale (the caller finished that job, maybe without it) and drops it.
 *   DONE: parts finished in the current job; the caller waits for it to reach `parts`.
 *   FAILED: parts whose computation threw (the worker posts the error on its port).
 *   READY + w: 1 once worker w runs and listens for jobs; jobs go to ready workers only.
 *   POSTED + w: the sequence number of the last job posted to worker w.
 *
 * Waking a sleeping thread takes 50 us to several ms on a virtual machine whose idle vCPU was
 * halted, as long as a whole per-time-step GEMM, so a worker that finished a job spins for a
 * while watching its POSTED word before it goes back to sleep in its event loop (training
 * calls come in a steady stream), and the caller spins before it waits, as the native pool does.
 */

const CLAIM = 0;
const DONE = 1;
const FAILED = 2;
const READY = 3;
const MAX_THREADS = 64;
const POSTED = READY + MAX_THREADS;
const PART_BITS = 10;
const PART_MASK = (1 << PART_BITS) - 1;
/** Sequence numbers run 1 .. 2^21 - 1 so that CLAIM stays a positive int32. */
const SEQ_LIMIT = (1 << (31 - PART_BITS)) - 1;
/** How long an idle worker, or a caller waiting for workers, spins before it sleeps. */
export const SPIN_MS = 5;

/** A float32 array in shared memory, as a job message carries it. */
export interface SharedView {
  buffer: SharedArrayBuffer;
  byteOffset: number;
  length: number;
}

/** What the caller posts to each ready worker for one GEMM: the problem, its operands as shared views. */
export interface GemmJob extends Omit<GemmProblem, 'a' | 'b' | 'c'> {
  seq: number;
  split: GemmSplit;
  a: SharedView;
  b: SharedView;
  c: SharedView;
}

/** What a worker gets in workerData. */
export interface GemmWorkerData {
  ctl: SharedArrayBuffer;
  index: number;
  port: MessagePort;
}

/**
 * Claim and compute parts of job `seq` until none is left (or the job is over); the number of
 * parts this thread computed. Run by the caller and by every worker the job was posted to.
 */
export function workOnJob(ctl: Int32Array, seq: number, p: GemmProblem, split: GemmSplit, onError: (e: unknown) => void): number {
  let done = 0;
  for (;;) {
    const w = Atomics.load(ctl, CLAIM);
    if (w >>> PART_BITS !== seq) return done;
    const q = w & PART_MASK;
    if (q >= split.parts) return done;
    if (Atomics.compareExchange(ctl, CLAIM, w, w + 1) !== w) continue;
    try {
      gemmPart(p, split, q);
    } catch (e) {
      Atomics.add(ctl, FAILED, 1);
      onError(e);
    }
    done++;
    Atomics.add(ctl, DONE, 1);
    Atomics.notify(ctl, DONE);
  }
}

/** Until ctl[at] >= target: spin up to SPIN_MS, then sleep (Atomics.wait) until notified. */
function waitUntilAtLeast(ctl: Int32Array, at: number, target: number): void {
  const deadline = performance.now() + SPIN_MS;
  for (let i = 1, v = Atomics.load(ctl, at); v < target; i++, v = Atomics.load(ctl, at)) {
    if ((i & 255) === 0 && performance.now() > deadline) Atomics.wait(ctl, at, v);
  }
}

/** Mark worker `index` ready (called by the worker once it listens for jobs). */
export function markReady(ctl: Int32Array, index: number): void {
  Atomics.store(ctl, READY + index, 1);
}

/**
 * Worker `index`, whose last job was `lastSeq`, spins up to SPIN_MS for the next job posted to
 * it and takes its message off the port; undefined when none came (it then sleeps until the
 * port's next message event). The caller posts the message before it updates POSTED, so the
 * message is there once POSTED moved.
 */
export function nextJob(ctl: Int32Array, index: number, lastSeq: number, port: MessagePort): GemmJob | undefined {
  const deadline = performance.now() + SPIN_MS;
  for (let i = 1; Atomics.load(ctl, POSTED + index) === lastSeq; i++) {
    if ((i & 255) === 0 && performance.now() > deadline) return undefined;
  }
  for (;;) {
    const m = receiveMessageOnPort(port);
    if (m) return m.message as GemmJob;
  }
}

/** The GemmProblem a job describes, over views of its shared buffers. */
export function jobProblem(job: GemmJob): GemmProblem {
  const view = (v: SharedView) => new Float32Array(v.buffer, v.byteOffset, v.length);
  const { transA, transB, M, N, K, alpha, beta } = job;
  return { transA, transB, M, N, K, alpha, beta, a: view(job.a), b: view(job.b), c: view(job.c) };
}

/**
 * Threads by default: CHARNN_NUM_THREADS when set, else the cores this process may run on,
 * at most 8 — what the native backend's pool does.
 */
export function defaultThreads(): number {
  const env = Number.parseInt(process.env.CHARNN_NUM_THREADS ?? '', 10);
  const n = env > 0 ? env : Math.min(availableParallelism(), 8);
  return Math.max(1, Math.min(MAX_THREADS, n));
}

/**
 * The compiled worker: beside this module in dist/, or, when this module runs from the
 * TypeScript sources (vitest), the one `tsc` put in dist/. Null when there is none.
 */
function workerUrl(): URL | null {
  for (const rel of ['./gemm-worker.js', '../../dist/backend/gemm-worker.js']) {
    const url = new URL(rel, import.meta.url);
    if (existsSync(fileURLToPath(url))) return url;
  }
  return null;
}

interface Slot {
  index: number;
  worker: Worker;
  /** The caller's end of the worker's channel: jobs out, error texts back. */
  port: MessagePort;
  alive: boolean;
}

function isShared(x: Float32Array): boolean {
  return x.buffer instanceof SharedArrayBuffer;
}

export class GemmPool {
  private readonly ctl = new Int32Array(new SharedArrayBuffer(4 * (POSTED + MAX_THREADS)));
  private readonly slots: Slot[] = [];
  private seq = 0;
  private threadCount: number;
  /** Set once starting a worker failed (no compiled worker, or no threads): GEMMs stay on one thread. */
  private cannotStart = false;
  /** Parts computed by workers so far (the rest by callers): the tests' proof they helped. */
  partsByWorkers = 0;

  constructor(threads: number = defaultThreads()) {
    this.threadCount = 1;
    this.setThreads(threads);
  }

  /** Threads a GEMM may use, the calling one included (1 = no workers). */
  get threads(): number {
    return this.threadCount;
  }

  /** Set the thread count (clamped to 1..64); workers start on the next GEMM that uses them. */
  setThreads(n: number): number {
    this.threadCount = Math.max(1, Math.min(MAX_THREADS, Math.floor(n)));
    return this.threadCount;
  }

  /**
   * Compute C = alpha * op(A) op(B) + beta * C split over the calling thread and the ready
   * workers, and return true; or return false without touching C when it cannot be split
   * (one thread wanted, an operand not in shared memory, no worker ready yet, C too small),
   * and the caller computes it alone. Throws when a block's computation threw.
   */
  run(p: GemmProblem): boolean {
    if (this.threadCount < 2 || !isShared(p.a) || !isShared(p.b) || !isShared(p.c)) return false;
    this.start();
    const helpers: Slot[] = [];
    for (let w = 0; w < this.slots.length && helpers.length < this.threadCount - 1; w++) {
      if (this.slots[w].alive && Atomics.load(this.ctl, READY + w) === 1) helpers.push(this.slots[w]);
    }
    if (helpers.length === 0) return false;
    // Two parts per thread: when a worker wakes late (the machine is busy), the caller takes
    // more of them instead of idling.
    const split = planSplit(p.M, p.N, 2 * (helpers.length + 1));
    if (split === null) return false;

    const ctl = this.ctl;
    this.seq = (this.seq % SEQ_LIMIT) + 1;
    const seq = this.seq;
    Atomics.store(ctl, DONE, 0);
    Atomics.store(ctl, FAILED, 0);
    Atomics.store(ctl, CLAIM, seq << PART_BITS);
    const share = (x: Float32Array): SharedView => ({ buffer: x.buffer as SharedArrayBuffer, byteOffset: x.byteOffset, length: x.length });
    const job: GemmJob = {
      seq, split,
      transA: p.transA, transB: p.transB, M: p.M, N: p.N, K: p.K, alpha: p.alpha, beta: p.beta,
      a: share(p.a), b: share(p.b), c: share(p.c),
    };
    for (const s of helpers) {
      s.port.postMessage(job);
      Atomics.store(ctl, POSTED + s.index, seq);
    }

    let ownError: unknown = null;
    const own = workOnJob(ctl, seq, p, split, (e) => (ownError = e));
    // Blocks claimed by workers may still be running: wait for all of them.
    waitUntilAtLeast(ctl, DONE, split.parts);
    this.partsByWorkers += split.parts - own;

    if (Atomics.load(ctl, FAILED) > 0) {
      if (ownError !== null) throw ownError;
      const texts: string[] = [];
      for (const s of helpers) {
        for (let m = receiveMessageOnPort(s.port); m; m = receiveMessageOnPort(s.port)) texts.push(String(m.message));
      }
      throw new Error(`gemm worker failed: ${texts.join('; ') || 'no message'}`);
    }
    return true;
  }

  /**
   * Resolves once every worker this pool wants runs (or has failed to start): the number ready.
   * GEMMs never wait for workers; tests call this to be sure the workers take part.
   */
  async whenReady(timeoutMs = 10_000): Promise<number> {
    this.start();
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const states = this.slots.map((s, w) => (!s.alive ? 'dead' : Atomics.load(this.ctl, READY + w) === 1 ? 'ready' : 'starting'));
      if (!states.includes('starting') || Date.now() > deadline) return states.filter((s) => s === 'ready').length;
      await new Promise((r) => setTimeout(r, 5));
    }
  }

  /** Stop the workers (a later GEMM starts them again). */
  async close(): Promise<void> {
    const slots = this.slots.splice(0);
    for (let w = 0; w < slots.length; w++) Atomics.store(this.ctl, READY + w, 0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  /**
   * Start the workers the thread count asks for and that do not run yet. They are unref()ed:
   * an idle pool never keeps the process alive.
   */
  private start(): void {
    if (this.cannotStart || this.slots.length >= this.threadCount - 1) return;
    const url = workerUrl();
    if (url === null) {
      this.cannotStart = true;
      return;
    }
    while (this.slots.length < this.threadCount - 1) {
      const index = this.slots.length;
      const { port1, port2 } = new MessageChannel();
      const data: GemmWorkerData = { ctl: this.ctl.buffer as SharedArrayBuffer, index, port: port2 };
      let worker: Worker;
      try {
        worker = new Worker(url, { workerData: data, transferList: [port2] });
      } catch {
        this.cannotStart = true;
        port1.close();
        return;
      }
      const slot: Slot = { index, worker, port: port1, alive: true };
      const down = () => {
        slot.alive = false;
        if (this.slots[index] === slot) Atomics.store(this.ctl, READY + index, 0);
      };
      worker.on('error', down);
      worker.on('exit', down);
      worker.unref();
      port1.unref();
      this.slots.push(slot);
    }
  }
}
