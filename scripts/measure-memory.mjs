#!/usr/bin/env node
// Peak memory of `charnn train` on a ~1 MB and a ~200 MB generated corpus, a few iterations
// each: training streams its data from the token cache, so the two peaks must be within 50 MB
// of each other (memory does not grow with the corpus). Measured, not a timed test:
//   node scripts/measure-memory.mjs [--mb 200] [--keep]
// Peak RSS comes from GNU time (%M, KiB) around each run; prints a JSON line.
import { spawnSync } from 'node:child_process';
import { createWriteStream, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { once } from 'node:events';

const args = process.argv.slice(2);
const bigMb = Number(args[args.indexOf('--mb') + 1]) || 200;
const keep = args.includes('--keep');
const bin = resolve(import.meta.dirname, '..', 'bin', 'charnn.js');
const dir = mkdtempSync(join(tmpdir(), 'charnn-mem-'));

/** Pseudo-random English-like lines with some non-ASCII, generated in chunks (never held whole). */
async function writeCorpus(path, megabytes) {
  const out = createWriteStream(path);
  const words = ['the', 'quick', 'brown', 'fox', 'jumps', 'over', 'lazy', 'dog', 'naïve', 'café', '日本', 'emoji🙂', 'and', 'of', 'to', 'in'];
  let seed = 12345;
  const rand = () => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
  let written = 0;
  const target = megabytes * 1e6;
  while (written < target) {
    let chunk = '';
    for (let line = 0; line < 2000; line++) {
      const n = 3 + Math.floor(rand() * 10);
      const ws = [];
      for (let i = 0; i < n; i++) ws.push(words[Math.floor(rand() * words.length)]);
      chunk += ws.join(' ') + '.\n';
    }
    const buf = Buffer.from(chunk, 'utf8');
    written += buf.length;
    if (!out.write(buf)) await once(out, 'drain');
  }
  out.end();
  await once(out, 'finish');
  return written;
}

function peakRssKiB(corpus) {
  const r = spawnSync('/usr/bin/time', ['-f', '%M', process.execPath, bin, 'train', corpus,
    '--iters', '20', '--eval-every', '0', '--sample-length', '0', '--val-frac', '0.001',
    '--cache-dir', dir, '--out', join(dir, 'm.charnn'), '--quiet', '--seed', '1'], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`charnn train failed on ${corpus}: ${r.stderr}`);
  const lines = r.stderr.trim().split('\n');
  return Number(lines[lines.length - 1]);
}

const small = join(dir, 'small.txt');
const big = join(dir, 'big.txt');
const smallBytes = await writeCorpus(small, 1);
const bigBytes = await writeCorpus(big, bigMb);
const smallKiB = peakRssKiB(small);
const t0 = Date.now();
const bigKiB = peakRssKiB(big);
const bigSeconds = (Date.now() - t0) / 1000;
const result = {
  smallCorpusBytes: smallBytes,
  bigCorpusBytes: bigBytes,
  smallPeakRssMB: +(smallKiB / 1024).toFixed(1),
  bigPeakRssMB: +(bigKiB / 1024).toFixed(1),
  differenceMB: +((bigKiB - smallKiB) / 1024).toFixed(1),
  bigRunSeconds: bigSeconds,
  withinBudget: (bigKiB - smallKiB) / 1024 <= 50,
};
console.log(JSON.stringify(result));
if (!keep) rmSync(dir, { recursive: true, force: true });
process.exitCode = result.withinBudget ? 0 : 1;
