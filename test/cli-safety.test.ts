import { linkSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { charnn, type RunResult, structuredCorpus, trainTiny, writeCorpus } from './sample-helpers.js';

/**
 * Through the real command: outputs never destroy inputs, an option given twice takes its last
 * value, every text input goes through one decoder, line endings, invisible characters in
 * messages, and third-party noise kept off stderr.
 */
let dir: string;
let text: string;
let corpus: string;
let model: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'charnn-safety-'));
  text = structuredCorpus(200);
  corpus = writeCorpus(dir, 'corpus.txt', text);
  model = trainTiny(dir, 'tiny', corpus);
});

function oneLineError(r: RunResult, code: number, message: RegExp): void {
  expect(r.code, r.stderr).toBe(code);
  const lines = r.stderr.trimEnd().split('\n');
  expect(lines, r.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^charnn: /);
  expect(lines[0]).toMatch(message);
}

describe('outputs never overwrite inputs or files of another kind', { timeout: 60_000 }, () => {
  it('dump --out naming its own text (as given, as ./x, by a symlink or a hard link) is refused in every format; the text is intact', () => {
    const input = writeCorpus(dir, 'in.txt', text);
    symlinkSync('in.txt', join(dir, 'in-link.txt'));
    linkSync(input, join(dir, 'in-hard.txt'));
    for (const format of ['jsonl', 'html']) {
      for (const out of ['in.txt', './in.txt', 'in-link.txt', 'in-hard.txt']) {
        const r = charnn(['dump', '-m', model, 'in.txt', '--out', out, '--format', format, '--max-tokens', '5'], undefined, { cwd: dir });
        oneLineError(r, 2, new RegExp(`^charnn: ${out.replace('.', '\\.')} is the text dump reads.*writing it would destroy it`));
      }
    }
    for (const format of ['npy', 'lstmvis']) oneLineError(charnn(['dump', '-m', model, 'in.txt', '--out', 'in.txt', '--format', format], undefined, { cwd: dir }), 2, /in\.txt is the text dump reads/);
    oneLineError(charnn(['dump', '-m', model, 'in.txt', '--out', model, '--max-tokens', '5'], undefined, { cwd: dir }), 2, /tiny\.charnn is the model dump reads/);
    expect(readFileSync(input, 'utf8')).toBe(text);
  });

  it('dump refuses to overwrite a file that is not an earlier dump (also inside an npy directory), and rewrites its own', () => {
    const notes = writeCorpus(dir, 'notes.txt', 'keep me');
    oneLineError(charnn(['dump', '-m', model, corpus, '--out', notes, '--max-tokens', '5']), 1, /notes\.txt exists and is not a charnn dump \(JSON lines\); dump would overwrite it/);
    const npy = join(dir, 'npy');
    mkdirSync(npy);
    writeFileSync(join(npy, 'manifest.json'), '{"mine": true}');
    oneLineError(charnn(['dump', '-m', model, corpus, '--out', npy, '--format', 'npy', '--max-tokens', '5']), 1, /manifest\.json exists and is not a charnn dump manifest/);
    expect(readFileSync(join(npy, 'manifest.json'), 'utf8')).toBe('{"mine": true}');
    const jsonl = join(dir, 'again.jsonl');
    for (let i = 0; i < 2; i++) expect(charnn(['dump', '-m', model, corpus, '--out', jsonl, '--max-tokens', '5', '-q']).code).toBe(0);
    expect(readFileSync(jsonl, 'utf8').split('\n')).toHaveLength(6);
    expect(readFileSync(notes, 'utf8')).toBe('keep me');
  });

  it('info --svg, export (and its sidecar), import and train refuse their inputs and foreign files', () => {
    const notes = writeCorpus(dir, 'notes2.txt', 'keep me');
    oneLineError(charnn(['info', '-m', model, '--svg', model]), 2, /tiny\.charnn is the model info reads/);
    oneLineError(charnn(['info', '-m', model, '--svg', notes]), 1, /notes2\.txt exists and is not a charnn loss plot/);
    const st = join(dir, 'tiny.safetensors');
    expect(charnn(['export', '-m', model, st, '-q']).code).toBe(0);
    oneLineError(charnn(['export', '-m', model, model]), 2, /tiny\.charnn is the model export reads/);
    // The sidecar of notes2.txt.safetensors would be notes2.txt.json; of x.safetensors, x.json.
    writeFileSync(join(dir, 'side.json'), '{"mine": 1}');
    oneLineError(charnn(['export', '-m', model, join(dir, 'side.safetensors')]), 1, /side\.json exists and is not a charnn export description; export would overwrite it/);
    oneLineError(charnn(['import', st, '-o', st]), 2, /tiny\.safetensors is the safetensors file import reads/);
    oneLineError(charnn(['import', st, '-o', join(dir, 'tiny.json')]), 2, /tiny\.json is the description import reads/);
    oneLineError(charnn(['train', corpus, '-o', corpus, '--iters', '1']), 2, /corpus\.txt is the corpus train reads/);
    // The --val text is an input too (a usage error naming it, not 'exists and is not a charnn checkpoint').
    oneLineError(charnn(['train', corpus, '--val', notes, '-o', notes, '--iters', '1']), 2, /notes2\.txt is the validation text train reads/);
    // Resuming a best checkpoint with --out beside it: the new .best would replace the input.
    oneLineError(charnn(['train', '--resume', join(dir, 'tiny.best.charnn'), '-o', model, '--iters', '1']), 2, /tiny\.best\.charnn is the checkpoint train reads/);
    expect(readFileSync(notes, 'utf8')).toBe('keep me');
    expect(readFileSync(join(dir, 'side.json'), 'utf8')).toBe('{"mine": 1}');
  });
});

describe('an option given twice takes its last value (every command)', { timeout: 60_000 }, () => {
  it('sample: --prime, --length and -m/--model repeated', () => {
    const once = charnn(['sample', '-m', model, '--prime', '12+', '--length', '7', '--seed', '1']);
    expect(once.code, once.stderr).toBe(0);
    const twice = charnn(['sample', '--model', 'nope.charnn', '-m', model, '--prime', 'a', '--prime', '12+', '--length', '3', '--length', '7', '--seed', '9', '--seed', '1']);
    expect(twice.code, twice.stderr).toBe(0);
    expect(twice.stdout).toBe(once.stdout);
    expect([...once.stdout.slice(3)]).toHaveLength(7);
  });

  it('eval and info: the last --batch / --vocab wins', () => {
    const a = JSON.parse(charnn(['eval', '-m', model, corpus, '--json', '--batch', '3', '--batch', '1']).stdout);
    expect(a.batch).toBe(1);
    const info = charnn(['info', '-m', model, '--vocab', '50', '--vocab', '2']);
    expect(info.stdout).toMatch(/… and \d+ more/);
  });
});

describe('one decoder for every text input', { timeout: 60_000 }, () => {
  it('--prime, --prime-file FILE and --prime-file -: a BOM is dropped, bad bytes name their offset or become U+FFFD with --invalid-utf8 replace', () => {
    const args = ['sample', '-m', model, '--length', '10', '--seed', '1'];
    const plain = charnn([...args, '--prime', '12+']).stdout;
    const bom = writeCorpus(dir, 'bom-prime.txt', '\ufeff12+');
    expect(charnn([...args, '--prime-file', bom]).stdout).toBe(plain);
    expect(charnn([...args, '--prime-file', '-'], '\ufeff12+').stdout).toBe(plain);
    expect(charnn([...args, '--prime', '\ufeff12+']).stdout).toBe(plain);
    const badPath = join(dir, 'bad-prime.txt');
    writeFileSync(badPath, Buffer.from([0x31, 0x32, 0x2b, 0xff]));
    oneLineError(charnn([...args, '--prime-file', badPath]), 1, /prime file .*bad-prime\.txt is not valid UTF-8 \(bad bytes near byte offset 3\)/);
    // Replaced, the bad byte is U+FFFD, a character this model never saw.
    oneLineError(charnn([...args, '--prime-file', badPath, '--invalid-utf8', 'replace']), 1, /the text has 1 character the model never saw in training: "\ufffd"/);
    const skipped = charnn([...args, '--prime-file', badPath, '--invalid-utf8', 'replace', '--unknown', 'skip']);
    expect(skipped.code, skipped.stderr).toBe(0);
    expect(skipped.stdout).toBe(plain);
  });
});

describe('line endings at character level', { timeout: 60_000 }, () => {
  it('a \\r\\n or \\r corpus trains a model without \\r (lf, the default); eval and primes read \\r\\n as \\n; --line-endings keep keeps \\r', () => {
    const crlf = writeCorpus(dir, 'crlf.txt', text.replace(/\n/g, '\r\n'));
    const cr = writeCorpus(dir, 'cr.txt', text.replace(/\n/g, '\r'));
    for (const [name, path] of [['crlf', crlf], ['cr', cr]] as const) {
      const m = trainTiny(dir, name, path);
      const info = JSON.parse(charnn(['info', '-m', m, '--json']).stdout);
      expect(info.vocabulary.tokens).toContain('\n');
      expect(info.vocabulary.tokens).not.toContain('\r');
      const sample = charnn(['sample', '-m', m, '--prime', '1\r\n2\r', '--length', '200', '--seed', '1']);
      expect(sample.code, sample.stderr).toBe(0);
      expect(sample.stdout).not.toContain('\r');
      expect(sample.stdout.startsWith('1\n2\n')).toBe(true);
      // The same text with any line endings scores the same, with no unknown characters.
      const scores = [corpus, crlf, cr].map((t) => JSON.parse(charnn(['eval', '-m', m, t, '--json']).stdout));
      for (const s of scores) {
        expect(s.unknown.count).toBe(0);
        expect(s.nats).toBeCloseTo(scores[0].nats, 6);
      }
    }
    const kept = trainTiny(dir, 'kept', crlf, { 'line-endings': 'keep' });
    expect(JSON.parse(charnn(['info', '-m', kept, '--json']).stdout).vocabulary.tokens).toContain('\r');
    expect(charnn(['info', '-m', kept]).stdout).toMatch(/line endings kept as they are/);
    // A checkpoint without the setting (every one written before it existed) reads text as it is.
    const r = JSON.parse(charnn(['eval', '-m', kept, crlf, '--json']).stdout);
    expect(r.unknown.count).toBe(0);
    expect(r.tokensRead).toBe([...text.replace(/\n/g, '\r\n')].length);
  });
});

describe('messages and stderr', { timeout: 60_000 }, () => {
  it('invisible characters in messages are escaped: no-break space, zero-width space, BOM inside, line separator', () => {
    const r = charnn(['sample', '-m', model, '--prime', '1\u00a02\u200b3\u2028', '--length', '3']);
    oneLineError(r, 1, /the text has 3 characters the model never saw in training: "\\u00A0", "\\u200B", "\\u2028"/);
  });

  it('a word-level corpus whose every word is below --min-count is a one-line usage error', () => {
    const abc = writeCorpus(dir, 'abc.txt', 'a b c d e f g h\n'.repeat(50));
    oneLineError(charnn(['train', abc, '--level', 'word', '--min-count', '1000', '--cache-dir', join(dir, 'cache'), '-q']), 2, /abc\.txt with --min-count 1000 leaves one token, "<unk>"/);
  });

  it('--device gpu: only charnn\'s own lines reach stderr (no Dawn or Vulkan warnings)', () => {
    const r = charnn(['sample', '-m', model, '--device', 'gpu', '--length', '3', '--seed', '1']);
    if (r.code === 0) expect(r.stderr.split('\n').filter(Boolean).every((l) => l.startsWith('charnn: '))).toBe(true);
    else oneLineError(r, 1, /^charnn: no usable GPU/);
  });
});
