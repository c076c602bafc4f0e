import { spawnSync } from 'node:child_process';
import { resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UsageError } from '../src/errors.js';
import { keepLastOccurrences } from '../src/cli/repeated-options.js';
import { dumpCommand } from '../src/cli/dump-command.js';
import { sampleCommand } from '../src/cli/sample-command.js';
import { trainCommand } from '../src/cli/train-command.js';

const BIN = resolve(__dirname, '..', 'bin', 'charnn.js');

const builders = new Map<string, (y: never) => unknown>([
  ['sample', sampleCommand.builder as never],
  ['dump', dumpCommand.builder as never],
  ['train', trainCommand(() => {}).builder as never],
]);
const keep = (args: string[]) => keepLastOccurrences(args, builders as never);

describe('an option given twice: the last one wins (keepLastOccurrences)', () => {
  it('keeps the last occurrence of each option with its value, across aliases, camelCase and --x=v', () => {
    expect(keep(['sample', '-m', 'a', '--prime', 'x', '--model', 'b', '--prime', 'y'])).toEqual(['sample', '--model', 'b', '--prime', 'y']);
    expect(keep(['sample', '--length', '3', '--length=7', '-m', 'a'])).toEqual(['sample', '--length=7', '-m', 'a']);
    expect(keep(['sample', '--prime-file', 'a', '--primeFile', 'b'])).toEqual(['sample', '--primeFile', 'b']);
    // The yargs pitfall this replaces: a repeated number ending in 1 was added to the first.
    expect(keep(['train', 'c.txt', '--batch', '3', '-b', '1'])).toEqual(['train', 'c.txt', '-b', '1']);
  });

  it('flags take no value; --no-x is the same option; negative numbers and - are values; -- ends options', () => {
    expect(keep(['sample', '-q', 'x', '--no-quiet', '-m', 'm'])).toEqual(['sample', 'x', '--no-quiet', '-m', 'm']);
    expect(keep(['sample', '--length', '-1', '--length', '5', '--prime-file', '-'])).toEqual(['sample', '--length', '5', '--prime-file', '-']);
    expect(keep(['dump', 'a.txt', '--seq', '4', '--', '--seq', '5'])).toEqual(['dump', 'a.txt', '--seq', '4', '--', '--seq', '5']);
  });

  it('leaves unknown options, positionals and unknown commands as they are (yargs reports them)', () => {
    expect(keep(['sample', '--bogus', '1', '--bogus', '2'])).toEqual(['sample', '--bogus', '1', '--bogus', '2']);
    expect(keep(['frobnicate', '--x', '1', '--x', '2'])).toEqual(['frobnicate', '--x', '1', '--x', '2']);
  });

  it('an option that takes a value, given without one, is a usage error (not its default)', () => {
    for (const args of [
      ['train', 'c.txt', '--precision'],
      ['train', 'c.txt', '--iters', '--quiet'],
      ['train', 'c.txt', '--backend', '--', 'x'],
      ['sample', '-m', 'a', '--length'],
      ['sample', '--temp', '-m', 'a'],
    ]) {
      expect(() => keep(args), args.join(' ')).toThrow(UsageError);
    }
    expect(() => keep(['train', 'c.txt', '--iters'])).toThrow(/^--iters needs a value$/);
    // Values that start with "-": stdin and negative numbers.
    expect(keep(['sample', '--prime-file', '-', '--temp', '-0.5', '--length', '-1'])).toEqual(['sample', '--prime-file', '-', '--temp', '-0.5', '--length', '-1']);
  });

  it('through the command: one line, exit 2', () => {
    const r = spawnSync(process.execPath, [BIN, 'train', 'c.txt', '--precision'], { encoding: 'utf8' });
    expect(r.status).toBe(2);
    expect(r.stderr).toBe('charnn: --precision needs a value (see charnn train --help)\n');
  });
});
