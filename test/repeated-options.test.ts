import { describe, expect, it } from 'vitest';
import { keepLastOccurrences } from '../src/cli/repeated-options.js';
import { dumpCommand } from '../src/cli/dump-command.js';
import { sampleCommand } from '../src/cli/sample-command.js';
import { trainCommand } from '../src/cli/train-command.js';

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
});
