import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { CharnnError } from '../../errors.js';
import type { KernelFn } from './memory.js';

/** The parts of gpu.js's `GPU` class the gpu backend uses. */
export interface GpuJs {
  createKernel(source: string, settings: Record<string, unknown>): KernelFn;
  destroy(): void;
}

export type GpuJsConstructor = new (settings: { mode: string }) => GpuJs;

/**
 * The copy of gpu.js that `npm run build` writes (scripts/vendor-gpujs.mjs): gpu.js without its
 * own `webgpu@0.2.9` and `gl` dependencies, so that a user's install holds one Dawn and never
 * builds headless-gl. The path is the same from src/backend/gpu (tests) and dist/backend/gpu.
 */
const VENDORED = new URL('../../../dist/vendor/gpu.js/package.json', import.meta.url);

/**
 * Load the gpu.js module (its exports: `GPU`, and the WebGPU classes gpu/memory.ts uses): the
 * vendored copy, or in a checkout not yet built, the gpu.js devDependency. Every user loads it
 * through here, so that one copy's classes meet each other. Loaded on first use only: the CPU
 * backends never read gpu.js.
 * @throws CharnnError when neither is there (a checkout installed without devDependencies).
 */
export function loadGpuJs(): { GPU: GpuJsConstructor } {
  const require = createRequire(import.meta.url);
  const vendored = fileURLToPath(VENDORED);
  try {
    return existsSync(vendored) ? require(vendored.replace(/package\.json$/, '')) : require('gpu.js');
  } catch (e) {
    throw new CharnnError(
      `the gpu backend cannot load gpu.js: ${(e instanceof Error ? e.message : String(e)).split('\n')[0]}`,
      'run npm run build in a checkout, or reinstall charnn; --device cpu does not need it',
    );
  }
}
