#!/usr/bin/env node
// Checks text sampled from a model trained on corpora/counting.txt, read from stdin: a line is
// right when it holds five numbers, each one more than the one before. The first and last lines
// (which a sample may cut) are skipped. Prints "right R of L lines", then the wrong ones.
//   charnn sample -m counting.charnn --length 300 --temp 0.5 | node scripts/check-counting.mjs
import { readFileSync } from 'node:fs';

const lines = readFileSync(0, 'utf8').split('\n').slice(1, -1);
const counts = (line) => {
  const parts = line.split(' ');
  if (parts.length !== 5 || !parts.every((p) => /^(0|[1-9]\d*)$/.test(p))) return false;
  return parts.every((p, i) => i === 0 || Number(p) === Number(parts[i - 1]) + 1);
};
const wrong = lines.filter((l) => !counts(l));
console.log(`right ${lines.length - wrong.length} of ${lines.length} lines`);
for (const w of wrong) console.log(`  wrong: ${w}`);
