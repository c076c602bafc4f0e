#!/usr/bin/env node
// Checks text sampled from a model trained on corpora/numbers.txt: reads it from stdin and counts
// the whole lines "N: words" whose words spell N (the first and last lines, possibly cut off, are
// skipped). Prints "right R of L lines" and each wrong line.
//   charnn sample -m numbers.charnn --length 600 --temp 0.5 | node scripts/check-numbers.mjs
import { readFileSync } from 'node:fs';
import { spell } from './number-words.mjs';

const lines = readFileSync(0, 'utf8').split('\n').slice(1, -1);
let right = 0;
const wrong = [];
for (const line of lines) {
  const m = /^(\d{1,4}): (.*)$/.exec(line);
  if (m && String(Number(m[1])) === m[1] && spell(Number(m[1])) === m[2]) right++;
  else wrong.push(line);
}
console.log(`right ${right} of ${lines.length} lines`);
for (const w of wrong) console.log(`  wrong: ${w}`);
