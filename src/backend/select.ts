import type { Backend } from './backend.js';
import { CharnnError, UsageError } from '../errors.js';
import { TypeScriptBackend } from './typescript.js';

export type BackendChoice = 'auto' | 'native' | 'ts';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'native', 'ts'];

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
 * with the reason when the addon is missing.
 */
export async function selectBackend(choice: BackendChoice, device: DeviceChoice = 'cpu'): Promise<SelectedBackend> {
  if (!DEVICE_CHOICES.includes(device)) throw new UsageError(`unknown device '${device as string}'`, 'use auto, gpu or cpu');
  if (!BACKEND_CHOICES.includes(choice)) throw new UsageError(`unknown backend '${choice as string}'`, 'use auto, native or ts');
  if (device === 'gpu' && choice !== 'auto') {
    throw new UsageError(`--backend ${choice} picks a CPU backend, and --device gpu runs on the GPU`, 'drop one of them');
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
