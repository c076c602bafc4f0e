import type { Backend } from './backend.js';
import { CharnnError, UsageError } from '../errors.js';
import { TypeScriptBackend } from './typescript.js';

export type BackendChoice = 'auto' | 'native' | 'ts';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'native', 'ts'];

/** The matrix products' input precision: `--precision`. */
export type Precision = 'fp32' | 'bf16';
export const PRECISION_CHOICES: readonly Precision[] = ['fp32', 'bf16'];

/** Where the arithmetic runs: `--device`. */
export type DeviceChoice = 'auto' | 'gpu' | 'cpu';
export const DEVICE_CHOICES: readonly DeviceChoice[] = ['auto', 'gpu', 'cpu'];

export interface SelectedBackend {
  backend: Backend;
  /** Why a faster backend was not used, or which device was chosen, for stderr (null when nothing to say). */
  notice: string | null;
}

/**
 * Set CHARNN_WEBGPU_SOFTWARE=1 to let --device gpu/auto take a software WebGPU adapter (Mesa's
 * llvmpipe): slower than the CPU backends, but it runs the GPU code path on a machine without
 * a GPU.
 */
function softwareAllowed(): boolean {
  return process.env.CHARNN_WEBGPU_SOFTWARE === '1';
}

/**
 * Pick the arithmetic backend. `device`: `cpu` = a CPU backend; `gpu` = the gpu backend on a
 * hardware WebGPU adapter, or an error; `auto` = the GPU when a hardware adapter is present,
 * else a CPU backend, saying which (only when a GPU was looked for). On the CPU, `choice`:
 * the native addon when it loads (auto), or the TypeScript backend; `native` insists and fails
 * with the reason when the addon is missing. `precision` bf16 with `--device gpu` or `--backend ts`
 * is a UsageError here, before any GPU is looked for (applyPrecision then checks the CPU).
 */
export async function selectBackend(choice: BackendChoice, device: DeviceChoice = 'cpu', precision: Precision = 'fp32'): Promise<SelectedBackend> {
  if (!DEVICE_CHOICES.includes(device)) throw new UsageError(`unknown device '${device as string}'`, 'use auto, gpu or cpu');
  if (!BACKEND_CHOICES.includes(choice)) throw new UsageError(`unknown backend '${choice as string}'`, 'use auto, native or ts');
  if (device === 'gpu' && choice !== 'auto') {
    throw new UsageError(`--backend ${choice} picks a CPU backend, and --device gpu runs on the GPU`, 'drop one of them');
  }
  // Before looking for a GPU: --device gpu with bf16 is a usage error whether or not one is there.
  if (precision === 'bf16' && (device === 'gpu' || choice === 'ts')) {
    throw new UsageError(`--precision bf16 runs on the native CPU backend only, not ${device === 'gpu' ? 'the GPU' : 'the ts backend'}`, 'use --backend native --device cpu, or --precision fp32');
  }
  let deviceLine: string | null = null;
  if (device !== 'cpu') {
    const { mayHaveGpu, probeAdapter } = await import('./gpu/webgpu.js');
    const allowSoftware = softwareAllowed();
    if (device === 'gpu' || allowSoftware || mayHaveGpu()) {
      const probe = await probeAdapter({ allowSoftware });
      if (!('error' in probe)) {
        const { GpuBackend } = await import('./gpu.js');
        return { backend: new GpuBackend({ mode: 'webgpu', adapter: probe }), notice: `device gpu: ${probe.name}` };
      }
      if (device === 'gpu') throw new CharnnError(`no usable GPU: ${probe.error}`, 'use --device cpu');
      deviceLine = `device cpu: ${probe.error}`;
    }
  }
  const cpu = await selectCpuBackend(choice);
  const notice = [deviceLine, cpu.notice].filter((x) => x !== null).join('; ');
  return { backend: cpu.backend, notice: notice || null };
}

/**
 * The backend with `precision`'s matrix products: `backend` itself for fp32; for bf16, the
 * native backend's bf16 variant (NativeBackend.withPrecision). A UsageError (one line) on any
 * other backend or on a CPU without AVX512-BF16.
 */
export async function applyPrecision(backend: Backend, precision: Precision): Promise<Backend> {
  if (!PRECISION_CHOICES.includes(precision)) throw new UsageError(`unknown precision '${precision as string}'`, 'use fp32 or bf16');
  if (precision === 'fp32') return backend;
  const { NativeBackend } = await import('./native.js');
  if (!(backend instanceof NativeBackend)) {
    throw new UsageError(`--precision bf16 runs on the native CPU backend only, not the ${backend.name} backend`, 'use --backend native --device cpu, or --precision fp32');
  }
  if (!backend.bf16Supported) {
    throw new UsageError(`--precision bf16 needs a CPU with AVX512-BF16, and this one (kernels: ${backend.info.isa}) has none`, 'use --precision fp32');
  }
  return backend.withPrecision('bf16');
}

async function selectCpuBackend(choice: BackendChoice): Promise<SelectedBackend> {
  if (choice === 'ts') return { backend: new TypeScriptBackend(), notice: null };
  const { loadNativeBackend } = await import('./native.js');
  const loaded = loadNativeBackend();
  if ('backend' in loaded) return { backend: loaded.backend, notice: null };
  if (choice === 'native') throw new UsageError(`the native backend is not available: ${loaded.error}`, 'reinstall with npm ci, or use --backend ts');
  return {
    backend: new TypeScriptBackend(),
    notice: `native backend unavailable (${loaded.error}); using the slower TypeScript backend`,
  };
}
