import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildTokenCache, tokenize, type TokenizerConfig } from '../src/data/index.js';
import { CharnnError } from '../src/errors.js';
import { seededRandom } from './checkpoint-helpers.js';

/**
 * Fuzzing the tokenizer with random bytes: whatever arrives, in whatever chunks, it either
 * produces tokens that agree with a plain TextDecoder, or stops with a one-line CharnnError
 * (invalid UTF-8, binary data), never with another exception; and a failed cache build leaves
 * no files behind.
 */
type Rng = () => number;

const PIECES = ['a', ' ', '\n', '\r\n', 'é', '日本', '🙂', '👍🏽', 'e\u0301', '.', ',', '(x)', '\uFEFF', '\t'];

/** Random input mixing valid text, stray bytes, cut multi-byte sequences and (rarely) NULs. */
function randomBytes(random: Rng): Uint8Array {
  const parts: number[] = [];
  const n = Math.floor(random() * 200);
  const style = random();
  for (let i = 0; i < n; i++) {
    const r = random();
    if (style < 0.3 || r < 0.6) {
      for (const b of new TextEncoder().encode(PIECES[Math.floor(random() * PIECES.length)])) parts.push(b);
    } else if (r < 0.8) {
      parts.push(0x80 + Math.floor(random() * 0x80)); // a lead, continuation or invalid byte
    } else if (r < 0.98) {
      parts.push(1 + Math.floor(random() * 255));
    } else {
      parts.push(0);
    }
  }
  return Uint8Array.from(parts);
}

/** The bytes as a stream, cut at random places (often inside multi-byte sequences). */
async function* chunked(bytes: Uint8Array, random: Rng): AsyncGenerator<Uint8Array> {
  let i = 0;
  while (i < bytes.length) {
    const size = 1 + Math.floor(random() * 9);
    yield bytes.slice(i, i + size);
    i += size;
  }
}

async function run(bytes: Uint8Array, config: TokenizerConfig, random: Rng): Promise<{ tokens: string[] } | { error: unknown }> {
  const tokens: string[] = [];
  try {
    for await (const chunk of tokenize(chunked(bytes, random), config)) tokens.push(...chunk);
    return { tokens };
  } catch (error) {
    return { error };
  }
}

function expectOneLineCharnnError(error: unknown, message: RegExp): void {
  expect(error).toBeInstanceOf(CharnnError);
  const e = error as CharnnError;
  expect(e.message).toMatch(message);
  expect(e.message).not.toContain('\n');
  expect(e.hint).toBeTruthy();
}

describe('tokenizer fuzz (random bytes)', () => {
  it('char level, --invalid-utf8 error: the exact text when valid, a one-line error otherwise', async () => {
    const random = seededRandom(2024);
    let valid = 0;
    let invalid = 0;
    for (let i = 0; i < 800; i++) {
      const bytes = randomBytes(random);
      const result = await run(bytes, { level: 'char', invalidUtf8: 'error', wordSplit: 'punct' }, random);
      let text: string | null = null;
      try {
        text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
      } catch {
        // not UTF-8
      }
      if ('tokens' in result) {
        expect(text, 'accepted bytes that are not UTF-8').not.toBeNull();
        expect(bytes.includes(0)).toBe(false);
        expect(result.tokens.join('')).toBe(text);
        expect(result.tokens.every((t) => [...t].length === 1)).toBe(true);
        valid++;
      } else {
        expectOneLineCharnnError(result.error, /is not valid UTF-8 \(bad bytes near byte offset \d+\)|looks like a binary file \(NUL byte at offset \d+\)/);
        expect(text === null || bytes.includes(0)).toBe(true);
        invalid++;
      }
    }
    // Both paths were exercised.
    expect(valid).toBeGreaterThan(100);
    expect(invalid).toBeGreaterThan(100);
  });

  it('the reported offset of bad UTF-8 is where the bytes stop being valid', async () => {
    const random = seededRandom(77);
    for (let i = 0; i < 300; i++) {
      const bytes = randomBytes(random);
      if (bytes.includes(0)) continue;
      const result = await run(bytes, { level: 'char', invalidUtf8: 'error', wordSplit: 'punct' }, random);
      if ('tokens' in result) continue;
      const offset = Number(/offset (\d+)/.exec((result.error as Error).message)![1]);
      // Everything before the offset decodes (as a prefix: a sequence may be cut at the end).
      const prefix = bytes.subarray(0, offset);
      expect(() => new TextDecoder('utf-8', { fatal: true }).decode(prefix, { stream: true })).not.toThrow();
      expect(offset).toBeLessThan(bytes.length + 1);
    }
  });

  it('char level, --invalid-utf8 replace: never fails on text without NULs, and matches TextDecoder', async () => {
    const random = seededRandom(99);
    for (let i = 0; i < 600; i++) {
      const bytes = randomBytes(random);
      const result = await run(bytes, { level: 'char', invalidUtf8: 'replace', wordSplit: 'punct' }, random);
      if (bytes.includes(0)) {
        if ('error' in result) expectOneLineCharnnError(result.error, /looks like a binary file/);
        continue;
      }
      expect('tokens' in result, String((result as { error?: unknown }).error)).toBe(true);
      if ('tokens' in result) expect(result.tokens.join('')).toBe(new TextDecoder('utf-8').decode(bytes));
    }
  });

  it('word level (punct and space): tokens are non-empty and hold no whitespace but a lone newline', async () => {
    const random = seededRandom(5);
    for (let i = 0; i < 600; i++) {
      const bytes = randomBytes(random);
      const wordSplit = i % 2 ? 'punct' : 'space';
      const result = await run(bytes, { level: 'word', invalidUtf8: i % 3 ? 'replace' : 'error', wordSplit }, random);
      if ('error' in result) {
        expectOneLineCharnnError(result.error, /is not valid UTF-8|looks like a binary file/);
        continue;
      }
      for (const t of result.tokens) {
        expect(t.length).toBeGreaterThan(0);
        if (t !== '\n') expect(t).not.toMatch(/\s/u);
      }
    }
  });

  it('building a token cache from random bytes succeeds or fails with a CharnnError, leaving no files', async () => {
    const random = seededRandom(31);
    const dir = mkdtempSync(join(tmpdir(), 'charnn-fuzz-'));
    const kept: string[] = [];
    for (let i = 0; i < 100; i++) {
      const bytes = randomBytes(random);
      const path = join(dir, `c${i}.ids`);
      const config: TokenizerConfig = { level: i % 2 ? 'char' : 'word', invalidUtf8: i % 3 ? 'replace' : 'error', wordSplit: 'punct' };
      try {
        const cache = await buildTokenCache(chunked(bytes, random), config, path);
        expect(cache.vocab.size).toBeGreaterThanOrEqual(2);
        cache.close();
        kept.push(`c${i}.ids`);
      } catch (error) {
        expectOneLineCharnnError(error, /not valid UTF-8|binary file|contains no tokens|only one distinct token/);
      }
    }
    expect(readdirSync(dir).sort()).toEqual(kept.sort());
  });
});
