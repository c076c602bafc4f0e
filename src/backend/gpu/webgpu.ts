import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { createRequire } from 'node:module';
import { pathToFileURL } from 'node:url';

/**
 * Finding a WebGPU adapter in Node for gpu.js. gpu.js's webgpu mode reads
 * `globalThis.navigator.gpu`, which Node does not have; the `webgpu` package (Google's Dawn)
 * provides it. gpu.js itself depends on webgpu 0.2.9, whose binary needs GLIBCXX_3.4.32 (newer
 * than Debian 12's); package.json overrides it with 0.6.2.
 */

/** The parts of a WebGPU adapter this module and gpu.js use. */
export interface Adapter {
  readonly info: { vendor: string; architecture: string; device: string; description: string; isFallbackAdapter?: boolean };
  readonly limits: Record<string, number>;
  requestDevice(descriptor?: { requiredLimits?: Record<string, number> }): Promise<unknown>;
}

interface NavigatorGpu {
  requestAdapter(options?: Record<string, unknown>): Promise<Adapter | null>;
  getPreferredCanvasFormat(): string;
}

export interface AdapterFound {
  adapter: Adapter;
  /** What to print: the device's name and the API under it. */
  name: string;
  /** A CPU rasteriser (llvmpipe, lavapipe, SwiftShader) or Dawn's fallback adapter. */
  software: boolean;
  /** The `navigator.gpu` to install for gpu.js, answering with this adapter. */
  gpu: NavigatorGpu;
}

export type AdapterProbe = AdapterFound | { error: string };

/** Names of CPU implementations of Vulkan/GL that a hardware-only choice must pass over. */
const SOFTWARE = /llvmpipe|lavapipe|softpipe|swiftshader|software|microsoft basic render/i;

export interface ProbeOptions {
  /**
   * Also look for a software adapter: Mesa's llvmpipe through Dawn's OpenGL ES backend
   * (EGL_PLATFORM=surfaceless, a 'compatibility' feature-level adapter), which works with
   * Debian 12's libegl-mesa0 where its Vulkan lavapipe (Mesa 22) is too old for Dawn. For tests
   * and for trying the GPU code path on a machine without a GPU; never chosen by `auto`.
   */
  allowSoftware?: boolean;
}

/**
 * Whether this machine may have a hardware GPU at all. On Linux, a GPU driver exposes a render
 * node (/dev/dri/renderD*) or /dev/nvidia*; without one, loading Dawn (and Vulkan) to find
 * nothing is skipped. Other platforms are always probed.
 */
export function mayHaveGpu(): boolean {
  if (process.platform !== 'linux') return true;
  try {
    if (readdirSync('/dev/dri').some((f) => f.startsWith('renderD'))) return true;
  } catch {
    // no /dev/dri
  }
  return existsSync('/dev/nvidia0') || existsSync('/dev/nvidiactl');
}

interface Attempt {
  flags: string[];
  options: Record<string, unknown>;
  api: string;
}

/** The ways to ask Dawn for an adapter, in order of preference. */
function attemptsFor(opts: ProbeOptions): Attempt[] {
  const attempts: Attempt[] = [
    { flags: process.platform === 'linux' ? ['backend=vulkan'] : [], options: { powerPreference: 'high-performance' }, api: process.platform === 'linux' ? 'Vulkan' : 'WebGPU' },
  ];
  if (opts.allowSoftware && process.platform === 'linux') {
    attempts.push({ flags: ['backend=opengles'], options: { featureLevel: 'compatibility' }, api: 'OpenGL ES' });
  }
  return attempts;
}

/**
 * Run in a child process by preProbe: asks Dawn for an adapter by each attempt (JSON in argv[1],
 * the webgpu package's path in argv[2]) and prints, as one JSON line, which ones gave one.
 */
const CHILD_PROBE = `
const [attempts, webgpuPath] = [JSON.parse(process.argv[1]), process.argv[2]];
const webgpu = await import(webgpuPath);
const found = [];
for (const a of attempts) {
  try { found.push(!!(await webgpu.create(a.flags).requestAdapter(a.options))); } catch { found.push(false); }
}
process.stdout.write(JSON.stringify(found) + '\\n');
process.exit(0);
`;

/**
 * Which attempts give an adapter, asked in a child process whose stderr is dropped: Dawn and the
 * Vulkan loader print warnings straight to file descriptor 2 (three lines with a C++ source
 * path when libvulkan is missing), which must not reach charnn's stderr. Only the attempts the
 * child saw succeed are then made in this process. Null when the child could not run at all
 * (then the attempts are made here, as before). CHARNN_DEBUG=1 passes the child's stderr on.
 */
function preProbe(attempts: Attempt[]): boolean[] | null {
  let webgpuPath: string;
  try {
    webgpuPath = pathToFileURL(createRequire(import.meta.url).resolve('webgpu')).href;
  } catch {
    return null;
  }
  const debug = !!process.env.CHARNN_DEBUG && process.env.CHARNN_DEBUG !== '0';
  const env = { ...process.env, ...(attempts.some((a) => a.api === 'OpenGL ES') ? { EGL_PLATFORM: process.env.EGL_PLATFORM ?? 'surfaceless' } : {}) };
  const r = spawnSync(process.execPath, ['--input-type=module', '-e', CHILD_PROBE, JSON.stringify(attempts), webgpuPath], {
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', debug ? 'inherit' : 'pipe'],
    timeout: 60_000,
  });
  try {
    const found = JSON.parse(r.stdout.trim().split('\n').pop() ?? '') as unknown;
    return Array.isArray(found) && found.length === attempts.length ? found.map(Boolean) : null;
  } catch {
    return null;
  }
}

/**
 * Load Dawn and ask it for an adapter: the hardware one (Vulkan on Linux, Dawn's default
 * elsewhere), or with `allowSoftware` and no hardware adapter, llvmpipe through OpenGL ES.
 * The search runs first in a child process (preProbe) so that Dawn's warnings about what it
 * did not find never reach stderr.
 */
export async function probeAdapter(opts: ProbeOptions = {}): Promise<AdapterProbe> {
  let attempts = attemptsFor(opts);
  const seen = preProbe(attempts);
  if (seen) {
    attempts = attempts.filter((_, i) => seen[i]);
    if (attempts.length === 0) return { error: 'Dawn found no WebGPU adapter (no GPU, or no Vulkan driver for it)' };
  }
  let webgpu: { create(flags: string[]): NavigatorGpu };
  try {
    webgpu = (await import('webgpu')) as unknown as typeof webgpu;
  } catch (e) {
    return { error: `the webgpu package (Dawn) does not load: ${firstLine(e)}` };
  }
  // Here too Dawn may print warnings of its own (on llvmpipe, two about limits it lowers): with
  // the native addon, file descriptor 2 points at /dev/null meanwhile.
  const { withNativeStderrSilenced } = await import('../native.js');
  return withNativeStderrSilenced(() => requestAdapter(webgpu, attempts, opts));
}

async function requestAdapter(webgpu: { create(flags: string[]): NavigatorGpu }, attempts: Attempt[], opts: ProbeOptions): Promise<AdapterProbe> {
  let found: AdapterFound | null = null;
  for (const a of attempts) {
    if (a.api === 'OpenGL ES') process.env.EGL_PLATFORM ??= 'surfaceless';
    let gpu: NavigatorGpu;
    let adapter: Adapter | null;
    try {
      gpu = webgpu.create(a.flags);
      adapter = await gpu.requestAdapter(a.options);
    } catch {
      continue;
    }
    if (!adapter) continue;
    const software = isSoftware(adapter);
    const candidate: AdapterFound = { adapter, name: `${adapterName(adapter)} (${a.api})`, software, gpu: navigatorFor(gpu, adapter) };
    if (!software) return candidate;
    found ??= candidate;
  }
  if (found && (opts.allowSoftware || !found.software)) return found;
  if (found) return { error: `the only WebGPU adapter is ${found.name}, a software renderer` };
  return { error: 'Dawn found no WebGPU adapter (no GPU, or no Vulkan driver for it)' };
}

function isSoftware(a: Adapter): boolean {
  const i = a.info;
  if (i.isFallbackAdapter) return true;
  return SOFTWARE.test([i.vendor, i.architecture, i.device, i.description].join(' '));
}

function adapterName(a: Adapter): string {
  const i = a.info;
  const name = i.description || i.device || [i.vendor, i.architecture].filter(Boolean).join(' ');
  return name.trim() || 'unnamed adapter';
}

/**
 * A `navigator.gpu` answering every request with `adapter`, whose devices get the adapter's
 * storage-buffer count: gpu.js asks for the default limits except the buffer sizes, and a
 * compatibility-mode device defaults to 4 storage buffers per stage, fewer than the cell
 * kernels bind (up to 7).
 */
function navigatorFor(gpu: NavigatorGpu, adapter: Adapter): NavigatorGpu {
  const wrapped = new Proxy(adapter, {
    get(target, prop) {
      if (prop === 'requestDevice') {
        return (d: { requiredLimits?: Record<string, number> } = {}) =>
          target.requestDevice({
            ...d,
            requiredLimits: { ...d.requiredLimits, maxStorageBuffersPerShaderStage: target.limits.maxStorageBuffersPerShaderStage },
          });
      }
      const v = Reflect.get(target, prop, target) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return {
    requestAdapter: async () => wrapped,
    getPreferredCanvasFormat: () => gpu.getPreferredCanvasFormat(),
  };
}

/** Make `found` what gpu.js sees as `navigator.gpu`. */
export function installNavigatorGpu(found: AdapterFound): void {
  const g = globalThis as { navigator?: object };
  if (g.navigator) Object.defineProperty(g.navigator, 'gpu', { value: found.gpu, configurable: true, writable: true });
  else Object.defineProperty(g, 'navigator', { value: { gpu: found.gpu }, configurable: true, writable: true });
}

function firstLine(e: unknown): string {
  return (e instanceof Error ? e.message : String(e)).split('\n')[0];
}
