import { existsSync, mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { activationColor, patternSignal, rankCells } from '../src/inspect/viewer.js';
import { charnn, structuredCorpus, trainTiny, writeCorpus } from './sample-helpers.js';

/** Debian's Chromium, which scripts/ensure-test-packages.sh installs (CI runs it before the tests). */
const CHROMIUM = '/usr/bin/chromium';

describe('HTML viewer logic', () => {
  it('a regex marks the tokens inside its matches; @column gives the position in the line', () => {
    const tokens = [...'a "bc" (d)\nef "g"'];
    expect(Array.from(patternSignal(tokens, null, '"[^"]*"'))).toEqual([0, 0, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
    expect(Array.from(patternSignal(tokens, null, '\\([^()]*\\)'))).toEqual([0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]);
    expect(Array.from(patternSignal(tokens, null, '@column'))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 0, 1, 2, 3, 4, 5]);
    expect(Array.from(patternSignal(tokens, null, '/B/i'))).toEqual(tokens.map((t) => (t === 'b' ? 1 : 0)));
    // Word level: the spaces between tokens belong to no token.
    const words = ['he', 'said', '"', 'hi', '"', '.'];
    const spaces = ['', ' ', ' ', '', '', ''];
    expect(Array.from(patternSignal(words, spaces, '"[^"]*"'))).toEqual([0, 0, 1, 1, 1, 0]);
    expect(Array.from(patternSignal(words, spaces, ' said'))).toEqual([0, 1, 0, 0, 0, 0]);
    expect(() => patternSignal(words, spaces, '(')).toThrow();
  });

  it('rankCells finds the cell that follows the signal, with its sign', () => {
    const T = 200;
    const H = 5;
    const signal = Array.from({ length: T }, (_, t) => (t % 7 < 3 ? 1 : 0));
    const noise = (t: number, j: number) => Math.sin(t * 12.9898 + j * 78.233) * 0.5;
    const q0 = Float32Array.from({ length: T * H }, (_, k) => noise(Math.floor(k / H), k % H));
    const q1 = Float32Array.from({ length: T * H }, (_, k) => {
      const t = Math.floor(k / H);
      const j = k % H;
      return j === 3 ? -signal[t] + 0.1 * noise(t, j) : noise(t, j);
    });
    const ranked = rankCells(signal, [q0, q1], H, 3)!;
    expect(ranked[0]).toMatchObject({ q: 1, cell: 3 });
    expect(ranked[0].r).toBeLessThan(-0.95);
    expect(rankCells(new Array(T).fill(1), [q0], H, 3)).toBeNull();
    expect(activationColor(0)).toBe('rgb(255, 255, 255)');
    expect(activationColor(1)).toBe('rgb(255, 70, 70)');
    expect(activationColor(-1)).toBe('rgb(70, 70, 255)');
  });
});

describe('charnn dump --format html in headless Chromium', { timeout: 40000 }, () => {
  let dir: string;
  let page: string;
  let states: any[];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'charnn-html-'));
    const text = structuredCorpus(300);
    const corpus = writeCorpus(dir, 'corpus.txt', text);
    const model = trainTiny(dir, 'tiny', corpus, { iters: '200', 'eval-every': '200' });
    const sample = writeCorpus(dir, 'sample.txt', text.slice(0, 600));
    page = join(dir, 'page.html');
    const r = charnn(['dump', '-m', model, sample, '--backend', 'ts', '--format', 'html', '--out', page, '--pattern', '"[^"]*"']);
    if (r.code !== 0) throw new Error(r.stderr);
    const j = charnn(['dump', '-m', model, sample, '--backend', 'ts', '--what', 'h,c', '-q']);
    states = j.stdout.trimEnd().split('\n').map((l) => JSON.parse(l));
  }, 30000);

  it('is one self-contained page', () => {
    const html = readFileSync(page, 'utf8');
    expect(html.startsWith('<!doctype html>')).toBe(true);
    expect(html).not.toMatch(/<script[^>]+src=|<link[^>]+href=|https?:\/\/(?!www\.w3\.org)/);
    expect(html.match(/class="charnn-block"/g)!.length).toBeGreaterThanOrEqual(3);
  });

  it('colours the text by the chosen cell; picking another cell changes the colours', async (ctx) => {
    if (!existsSync(CHROMIUM)) {
      const note = `${CHROMIUM} is missing and could not be installed; run scripts/ensure-test-packages.sh (as root) to run this test`;
      console.warn(`skipped: ${note}`);
      ctx.skip(note);
      return;
    }
    const { chromium } = await import('playwright-core');
    const userDataDir = mkdtempSync(join(tmpdir(), 'charnn-chromium-'));
    const browser = await chromium.launchPersistentContext(userDataDir, {
      executablePath: CHROMIUM,
      headless: true,
      args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run'],
    });
    try {
      const tab = await browser.newPage();
      const errors: string[] = [];
      tab.on('pageerror', (e) => errors.push(String(e)));
      await tab.goto(pathToFileURL(page).href);
      await tab.waitForSelector('body[data-ready="true"]', { timeout: 15000 });
      expect(errors).toEqual([]);
      expect(await tab.locator('#text span.tok').count()).toBe(600);

      const colours = () => tab.$$eval('#text span.tok', (spans) => spans.slice(0, 120).map((s) => getComputedStyle(s).backgroundColor));
      const expectColours = async (layer: number, quantity: 'h' | 'c', cell: number) => {
        const expected = states.slice(0, 120).map((s) => {
          const v = s.layers[layer][quantity][cell];
          return activationColor(Math.round((quantity === 'c' ? Math.tanh(v) : v) * 127) / 127);
        });
        expect(await colours()).toEqual(expected);
      };

      // The page opened on the cell most correlated with "inside quotes".
      const status = await tab.textContent('#rank-status');
      expect(status).toMatch(/^\d+ of 600 tokens inside matches$/);
      const entries = await tab.$$eval('.rank-entry', (a) => a.map((x) => x.textContent ?? ''));
      expect(entries.length).toBe(20);
      const top = /^1\. layer (\d+) (h|c) cell (\d+): r = (-?[\d.]+)$/.exec(entries[0])!;
      expect(top).not.toBeNull();
      expect(await tab.textContent('#current')).toBe(`layer ${top[1]} ${top[2]} cell ${top[3]}`);
      // The ranking agrees with one computed here from the exact values.
      const text = states.map((s) => s.token as string);
      const signal = patternSignal(text, null, '"[^"]*"');
      const values = ['h', 'c'].map((q) => Float64Array.from(states.flatMap((s) => s.layers[0][q].map((v: number) => (q === 'c' ? Math.tanh(v) : v)))));
      const ours = rankCells(signal, values, 16, 1)!;
      expect(Math.abs(Number(top[4]) - ours[0].r)).toBeLessThan(0.02);

      // Pick cell 5 of h with the cell picker: the colours follow it.
      await tab.selectOption('#quantity', { label: 'h' });
      await tab.fill('#cell', '5');
      await tab.dispatchEvent('#cell', 'change');
      expect(await tab.textContent('#current')).toBe('layer 0 h cell 5');
      const h5 = await colours();
      await expectColours(0, 'h', 5);
      // Next cell (the ▶ button): different colours.
      await tab.click('#next');
      expect(await tab.textContent('#current')).toBe('layer 0 h cell 6');
      await expectColours(0, 'h', 6);
      expect(await colours()).not.toEqual(h5);
      // A ranking entry selects its cell.
      await tab.click('.rank-entry >> nth=1');
      const second = /^2\. layer (\d+) (h|c) cell (\d+)/.exec(entries[1])!;
      expect(await tab.textContent('#current')).toBe(`layer ${second[1]} ${second[2]} cell ${second[3]}`);
      await expectColours(Number(second[1]), second[2] as 'h' | 'c', Number(second[3]));
      // A user-given pattern: the position in the line.
      await tab.fill('#pattern', '@column');
      await tab.press('#pattern', 'Enter');
      expect(await tab.textContent('#rank-status')).toBe('correlation with the position in the line');
      expect(errors).toEqual([]);
    } finally {
      await browser.close();
    }
  });
});
