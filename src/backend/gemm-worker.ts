/**
 * A GEMM worker thread of the TypeScript backend (gemm-pool.ts says why they exist and how a
 * job is shared). For each job message it claims and computes blocks of C until none is left
 * (a message for a job already finished finds none), then spins a little for the next job
 * before it sleeps again in its event loop.
 */
import { workerData } from 'node:worker_threads';
import { type GemmJob, type GemmWorkerData, jobProblem, markReady, nextJob, workOnJob } from './gemm-pool.js';

const { ctl: ctlBuffer, index, port } = workerData as GemmWorkerData;
const ctl = new Int32Array(ctlBuffer);

function reportError(e: unknown): void {
  port.postMessage(e instanceof Error ? (e.stack ?? e.message) : String(e));
}

port.on('message', (first: GemmJob) => {
  for (let job: GemmJob | undefined = first; job; job = nextJob(ctl, index, job.seq, port)) {
    workOnJob(ctl, job.seq, jobProblem(job), job.split, reportError);
  }
});
markReady(ctl, index);
