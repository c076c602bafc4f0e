// Shared by the tests that run python/charnn_torch.py: finding the peers' Python with PyTorch.
import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { peerPython } from '../src/bench/peers.js';

export const ROOT = resolve(__dirname, '..');

/**
 * The Python that ../shared/peers/torch-env.sh prints (found as charnn bench finds it), if it
 * imports torch; otherwise why not, for the skip message.
 */
export async function findTorchPython(): Promise<{ python: string } | { why: string }> {
  let python: string;
  try {
    python = await peerPython('torch', resolve(ROOT, '..', 'shared', 'peers'), 'python3');
  } catch (error) {
    return { why: (error as Error).message };
  }
  const r = spawnSync(python, ['-c', 'import torch'], { encoding: 'utf8' });
  if (r.status !== 0) return { why: `import torch fails in ${python}: ${r.stderr.trim().split('\n').pop()}` };
  return { python };
}
