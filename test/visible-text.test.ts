import { describe, expect, it } from 'vitest';
import { escapeInvisible, quoteText } from '../src/util/visible-text.js';

describe('quoteText / escapeInvisible: invisible characters are written as escapes', () => {
  it('escapes no-break, zero-width, BOM, separators, C1 controls and DEL; keeps the plain space and visible text', () => {
    expect(quoteText('\u00a0')).toBe('"\\u00A0"');
    expect(quoteText('\u200b')).toBe('"\\u200B"');
    expect(quoteText('\ufeff')).toBe('"\\uFEFF"');
    expect(quoteText('\u2028\u2029')).toBe('"\\u2028\\u2029"');
    expect(quoteText('\u0085\u007f')).toBe('"\\u0085\\u007F"');
    expect(quoteText('\u3164')).toBe('"\\u3164"'); // Hangul filler: a letter that prints as nothing
    expect(quoteText('\u{e0001}')).toBe('"\\u{E0001}"'); // a tag character (Cf) beyond the BMP
    expect(quoteText(' ')).toBe('" "');
    expect(quoteText('\n\r\t')).toBe('"\\n\\r\\t"');
    expect(quoteText('é€😀"\\')).toBe('"é€😀\\"\\\\"');
  });

  it('keeps a message on one line', () => {
    expect(escapeInvisible('a\nb\u2028c d')).toBe('a\\nb\\u2028c d');
  });
});
