import type { Backend } from './backend.js';
import { UsageError } from '../errors.js';
import { TypeScriptBackend } from './typescript.js';

export type BackendChoice = 'auto' | 'native' | 'ts';
export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'native', 'ts'];

export interface SelectedBackend {
  backend: Backend;
  /** Why a faster backend was not used, for one line on stderr (null when nothing to say). */
  notice: string | null;
}

/**
 * Pick the arithmetic backend: the native addon when it loads (auto), or the TypeScript
 * reference. `native` insists and fails with the reason when the addon is missing.
 */
export async function selectBackend(choice: BackendChoice): Promise<SelectedBackend> {
  if (choice === 'ts') return { backend: new TypeScriptBackend(), notice: null };
  if (choice !== 'auto' && choice !== 'native') {
    throw new UsageError(`unknown backend '${choice as string}'`, 'use auto, native or ts');
  }
  const { loadNativeBackend } = await import('./native.js');
  const loaded = loadNativeBackend();
  if ('backend' in loaded) return { backend: loaded.backend, notice: null };
  if (choice === 'native') throw new UsageError(`the native backend is not available: ${loaded.error}`, 'reinstall with npm ci, or use --backend ts');
  return {
    backend: new TypeScriptBackend(),
    notice: `native backend unavailable (${loaded.error}); using the slower TypeScript backend`,
  };
}
