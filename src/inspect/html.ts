import { basename } from 'node:path';
import { Detokenizer } from '../data/detokenizer.js';
import { cellTitle, quantityBounded } from '../model/cells/index.js';
import type { DumpContext, DumpWriter } from './dump-writer.js';
import type { DataOut } from './output.js';
import type { StateBlock } from './states.js';
import { PATTERN_PRESETS, VIEWER_FUNCTIONS, type ViewerMeta } from './viewer.js';

/** JSON that is safe inside a <script> element (no `</script>`, no `<!--`). */
function scriptJSON(value: unknown): string {
  return JSON.stringify(value).replace(/</g, '\\u003c').replace(/\u2028/g, '\\u2028').replace(/\u2029/g, '\\u2029');
}

function escapeHtml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

const STYLE = `
:root { font-family: system-ui, sans-serif; color: #222; }
body { margin: 0; }
header { position: sticky; top: 0; background: #f7f7f7; border-bottom: 1px solid #ccc; padding: 0.5em 1em; z-index: 1; }
h1 { font-size: 1.1em; margin: 0 0 0.2em; }
#subtitle { color: #666; font-size: 0.85em; margin: 0 0 0.5em; }
.row { display: flex; flex-wrap: wrap; gap: 0.6em; align-items: center; margin: 0.3em 0; font-size: 0.9em; }
#cell { width: 5em; }
#pattern { font-family: ui-monospace, monospace; width: 20em; }
.legend { display: inline-block; width: 10em; height: 0.9em; vertical-align: middle; border: 1px solid #999;
  background: linear-gradient(to right, rgb(70,70,255), rgb(255,255,255), rgb(255,70,70)); }
#current { font-weight: 600; }
#hover, #rank-status { color: #555; }
#ranking { display: grid; grid-template-columns: repeat(auto-fill, minmax(17em, 1fr)); margin: 0.3em 0; padding: 0; list-style: none;
  font-size: 0.85em; max-height: 7.5em; overflow-y: auto; }
#text { font-family: ui-monospace, Menlo, Consolas, monospace; white-space: pre-wrap; word-break: break-all;
  line-height: 1.5; padding: 1em; font-size: 14px; }
.tok { border-radius: 2px; }
.nl { color: #aaa; }
`;

const BODY = `
<header>
  <h1 id="title"></h1>
  <p id="subtitle"></p>
  <div class="row">
    <label>layer <select id="layer"></select></label>
    <label>quantity <select id="quantity"></select></label>
    <label>cell <input id="cell" type="number" min="0" value="0"></label>
    <button id="prev" title="previous cell">&#9664;</button><button id="next" title="next cell">&#9654;</button>
    <span>&minus;1 <span class="legend"></span> +1</span>
    <span id="current"></span>
    <span id="hover"></span>
  </div>
  <div class="row">
    <label>cells most correlated with <input id="pattern" placeholder="a regex, or @column" spellcheck="false"></label>
    <button id="rank">rank</button>
    <select id="preset"></select>
    <span id="rank-status"></span>
  </div>
  <ol id="ranking"></ol>
</header>
<main id="text"></main>
`;

/**
 * One self-contained HTML page (no network, no external files): the text coloured by a chosen
 * cell's activation, after Karpathy, Johnson and Fei-Fei, "Visualizing and Understanding
 * Recurrent Networks" (2015), with a cell picker and a ranking of the cells most correlated
 * with a pattern. Written as it streams: the viewer code first, then a data block per window,
 * then the call that starts the viewer. Activations are stored as int8 (value × 127), the
 * unbounded ones (c, m) as tanh(value), so all shown values lie in [-1, 1].
 */
export class HtmlWriter implements DumpWriter {
  private readonly detok: Detokenizer | null;

  private constructor(
    private readonly ctx: DumpContext,
    private readonly out: DataOut,
    private readonly pattern: string,
  ) {
    this.detok = ctx.vocab.level === 'word' ? new Detokenizer() : null;
  }

  static async open(ctx: DumpContext, out: DataOut, pattern = ''): Promise<HtmlWriter> {
    const w = new HtmlWriter(ctx, out, pattern);
    const title = `charnn: ${basename(ctx.modelPath)} over ${ctx.sourceName}`;
    await out.write(
      `<!doctype html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<meta name="viewport" content="width=device-width, initial-scale=1">\n` +
        `<title>${escapeHtml(title)}</title>\n<style>${STYLE}</style>\n</head>\n<body>\n${BODY}\n` +
        `<script>\n${VIEWER_FUNCTIONS.map((f) => f.toString()).join('\n\n')}\n</script>\n`,
    );
    return w;
  }

  async block(b: StateBlock): Promise<void> {
    const n = b.ids.length;
    const H = this.ctx.model.config.hidden;
    const Q = this.ctx.quantities.length;
    const bytes = new Int8Array(Q * n * H);
    this.ctx.quantities.forEach((q, k) => {
      const v = b.values[k];
      const squash = !quantityBounded(this.ctx.model.config.cell, q.name);
      for (let i = 0; i < n * H; i++) {
        const x = squash ? Math.tanh(v[i]) : v[i];
        bytes[k * n * H + i] = Math.round(Math.max(-1, Math.min(1, x)) * 127);
      }
    });
    const block: { t: string[]; p?: string[]; d: string } = { t: b.tokens, d: Buffer.from(bytes.buffer).toString('base64') };
    if (this.detok) {
      const detok = this.detok;
      const p: string[] = [];
      block.t = b.tokens.map((token) => {
        const shown = detok.push(token);
        // The detokenizer returns the token, or infix punctuation's joined form, after any space.
        const space = shown.startsWith(' ') && token !== ' ' ? ' ' : '';
        p.push(space);
        return shown.slice(space.length);
      });
      block.p = p;
    }
    await this.out.write(`<script type="application/json" class="charnn-block">${scriptJSON(block)}</script>\n`);
  }

  async finish(tokens: number): Promise<string[]> {
    const c = this.ctx.model.config;
    const meta: ViewerMeta = {
      title: `${basename(this.ctx.modelPath)} over ${this.ctx.sourceName}`,
      subtitle: `${c.layers}-layer ${cellTitle(c.cell)}, ${c.hidden} cells per layer, ${this.ctx.vocab.level} level, ${tokens.toLocaleString('en-US')} tokens; the colour of each token is the chosen cell's value after reading it (blue −1, white 0, red +1)`,
      hidden: c.hidden,
      quantities: this.ctx.quantities.map((q) => ({ layer: q.layer, name: q.name })),
      pattern: this.pattern,
      presets: PATTERN_PRESETS,
    };
    await this.out.write(`<script>viewerMain(${scriptJSON(meta)});</script>\n</body>\n</html>\n`);
    await this.out.close();
    return [this.out.name];
  }
}
