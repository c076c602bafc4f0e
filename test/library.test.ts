import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';

/**
 * The README's library example, run as it stands against the built package (dist/index.js,
 * imported as 'charnn' from a folder whose node_modules links this checkout), as a user would.
 */
const ROOT = resolve(__dirname, '..');

function readmeLibraryExample(): string {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Using it as a library'));
  const m = /```js\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('README: no js block under "Using it as a library"');
  return m[1]!;
}

describe('the library API (README "Using it as a library")', { timeout: 120_000 }, () => {
  it('trains, saves, loads and samples a tiny model as the README shows', () => {
    const dir = mkdtempSync(join(tmpdir(), 'charnn-library-'));
    mkdirSync(join(dir, 'node_modules'));
    symlinkSync(ROOT, join(dir, 'node_modules', 'charnn'), 'dir');
    mkdirSync(join(dir, 'corpora'));
    cpSync(join(ROOT, 'corpora', 'counting.txt'), join(dir, 'corpora', 'counting.txt'));
    writeFileSync(join(dir, 'example.mjs'), readmeLibraryExample());
    const r = spawnSync(process.execPath, ['example.mjs'], { cwd: dir, encoding: 'utf8' });
    expect(r.status, r.stderr).toBe(0);
    const lines = r.stdout.trim().split('\n');
    expect(lines[0]).toMatch(/^iteration 25: validation loss \d+\.\d{3}$/);
    expect(lines.at(-1)).toMatch(/^done "12[\s\S]*"$/);
    expect(JSON.parse(lines.at(-1)!.slice('done '.length))).toHaveLength(42);
    expect(existsSync(join(dir, 'tiny.charnn'))).toBe(true);
  });
});
