/**
 * The HTML viewer's code. These functions run in the browser: html.ts embeds their source text
 * (Function.prototype.toString) in the page, so each must be self-contained, referring only to
 * the others listed in VIEWER_FUNCTIONS and to browser globals. They are ordinary TypeScript
 * here so that the compiler checks them and tests can call the pure ones in Node.
 */

/** What the page's last script passes to viewerMain. */
export interface ViewerMeta {
  title: string;
  subtitle: string;
  hidden: number;
  /** The recorded quantities in block order: layer (0-based) and name (h, c, i, f, g, o, r, z, n). */
  quantities: Array<{ layer: number; name: string }>;
  /** The pattern ranked when the page opens ('' = none). */
  pattern: string;
  presets: Array<{ label: string; pattern: string }>;
}

/** Built-in patterns for the ranking, after Karpathy, Johnson and Fei-Fei (2015). */
export const PATTERN_PRESETS: ViewerMeta['presets'] = [
  { label: 'inside quotes', pattern: '"[^"]*"' },
  { label: 'inside parentheses', pattern: '\\([^()]*\\)' },
  { label: 'position in line', pattern: '@column' },
  { label: 'digits', pattern: '[0-9]' },
  { label: 'whitespace', pattern: '\\s' },
  { label: 'vowels', pattern: '[aeiouAEIOU]' },
  { label: 'last character of a line', pattern: '.(?=\\n)' },
  { label: 'start of a word', pattern: '\\b\\w' },
];

/**
 * The signal a pattern defines over the tokens: for a regex, 1 for a token any of whose
 * characters lies inside a match and 0 otherwise (flags: `g` and `m`, or those of a /.../flags
 * literal); for `@column`, each token's position in its line (characters since the last line
 * break). `prefixes[i]` is the text before token i that belongs to no token (word level: the
 * space the detokenizer puts there). Throws on an invalid regex.
 */
export function patternSignal(tokens: readonly string[], prefixes: readonly string[] | null, pattern: string): Float64Array {
  const n = tokens.length;
  const starts = new Int32Array(n);
  const ends = new Int32Array(n);
  let text = '';
  for (let i = 0; i < n; i++) {
    if (prefixes) text += prefixes[i];
    starts[i] = text.length;
    text += tokens[i];
    ends[i] = text.length;
  }
  const signal = new Float64Array(n);
  if (pattern.trim() === '@column') {
    let lineStart = 0;
    let cursor = 0;
    for (let i = 0; i < n; i++) {
      for (; cursor < starts[i]; cursor++) if (text.charCodeAt(cursor) === 10) lineStart = cursor + 1;
      signal[i] = starts[i] - lineStart;
      for (; cursor < ends[i]; cursor++) if (text.charCodeAt(cursor) === 10) lineStart = cursor + 1;
    }
    return signal;
  }
  const literal = /^\/(.*)\/([a-z]*)$/s.exec(pattern);
  let flags = literal ? literal[2] : 'm';
  if (!flags.includes('g')) flags += 'g';
  const re = new RegExp(literal ? literal[1] : pattern, flags);
  // Mark the characters inside matches: +1 where a match starts, -1 where it ends.
  const delta = new Int32Array(text.length + 1);
  let m: RegExpExecArray | null;
  while ((m = re.exec(text)) !== null) {
    if (m[0].length === 0) {
      re.lastIndex++;
      continue;
    }
    delta[m.index]++;
    delta[m.index + m[0].length]--;
  }
  // covered[k] = characters inside a match among the first k: a token is inside when its range has any.
  const covered = new Int32Array(text.length + 1);
  let depth = 0;
  for (let k = 0; k < text.length; k++) {
    depth += delta[k];
    covered[k + 1] = covered[k] + (depth > 0 ? 1 : 0);
  }
  for (let i = 0; i < n; i++) signal[i] = covered[ends[i]] - covered[starts[i]] > 0 ? 1 : 0;
  return signal;
}

/**
 * Pearson correlation of a signal with every cell of every quantity. `values[q]` holds
 * quantity q as [T, H] row-major (any numeric array). Returns the `top` cells by |r|, best
 * first; cells that never change get r = 0. Returns null when the signal is constant (a
 * pattern that matches everything or nothing).
 */
export function rankCells(signal: ArrayLike<number>, values: ReadonlyArray<ArrayLike<number>>, H: number, top: number): Array<{ q: number; cell: number; r: number }> | null {
  const T = signal.length;
  let mx = 0;
  for (let t = 0; t < T; t++) mx += signal[t];
  mx /= T;
  let sxx = 0;
  for (let t = 0; t < T; t++) sxx += (signal[t] - mx) * (signal[t] - mx);
  if (!(sxx > 0)) return null;
  const out: Array<{ q: number; cell: number; r: number }> = [];
  for (let q = 0; q < values.length; q++) {
    const v = values[q];
    const sxv = new Float64Array(H);
    const sv = new Float64Array(H);
    const svv = new Float64Array(H);
    for (let t = 0; t < T; t++) {
      const dx = signal[t] - mx;
      const row = t * H;
      for (let j = 0; j < H; j++) {
        const y = v[row + j];
        sxv[j] += dx * y;
        sv[j] += y;
        svv[j] += y * y;
      }
    }
    for (let j = 0; j < H; j++) {
      const vyy = svv[j] - (sv[j] * sv[j]) / T;
      const r = vyy > 1e-12 ? sxv[j] / Math.sqrt(sxx * vyy) : 0;
      out.push({ q, cell: j, r });
    }
  }
  out.sort((a, b) => Math.abs(b.r) - Math.abs(a.r) || a.q - b.q || a.cell - b.cell);
  return out.slice(0, top);
}

/**
 * Background colour for an activation in [-1, 1]: blue for -1, white for 0, red for +1 (never
 * fully saturated, so that dark text stays readable).
 */
export function activationColor(v: number): string {
  const x = Math.max(-1, Math.min(1, v));
  const fade = Math.round(255 - 185 * Math.abs(x));
  return x >= 0 ? `rgb(255, ${fade}, ${fade})` : `rgb(${fade}, ${fade}, 255)`;
}

/**
 * The page's entry point: reads the data blocks, builds the text, and wires the cell picker
 * and the correlation ranking. Exposes `window.charnn` ({ select, rank, value }) for scripting.
 */
export function viewerMain(meta: ViewerMeta): void {
  const H = meta.hidden;
  const Q = meta.quantities.length;
  const tokens: string[] = [];
  const prefixes: string[] = [];
  let hasPrefixes = false;
  const chunks: Int8Array[][] = meta.quantities.map(() => []);
  for (const el of Array.from(document.querySelectorAll('script.charnn-block'))) {
    const block = JSON.parse(el.textContent || '{}') as { t: string[]; p?: string[]; d: string };
    const n = block.t.length;
    for (let i = 0; i < n; i++) {
      tokens.push(block.t[i]);
      prefixes.push(block.p ? block.p[i] : '');
    }
    if (block.p) hasPrefixes = true;
    const raw = atob(block.d);
    const bytes = new Int8Array(raw.length);
    for (let i = 0; i < raw.length; i++) bytes[i] = (raw.charCodeAt(i) << 24) >> 24;
    for (let q = 0; q < Q; q++) chunks[q].push(bytes.subarray(q * n * H, (q + 1) * n * H));
    el.remove();
  }
  const T = tokens.length;
  const values: Int8Array[] = chunks.map((list) => {
    const all = new Int8Array(T * H);
    let at = 0;
    for (const c of list) {
      all.set(c, at);
      at += c.length;
    }
    return all;
  });

  const $ = <E extends HTMLElement>(id: string) => document.getElementById(id) as E;
  $('title').textContent = meta.title;
  $('subtitle').textContent = meta.subtitle;
  const palette: string[] = [];
  for (let k = -128; k < 128; k++) palette.push(activationColor(k / 127));

  // The text: one span per token, the detokenizer's spaces between them as plain text.
  const textEl = $('text');
  const frag = document.createDocumentFragment();
  const spans: HTMLSpanElement[] = [];
  for (let i = 0; i < T; i++) {
    if (prefixes[i]) frag.appendChild(document.createTextNode(prefixes[i]));
    const s = document.createElement('span');
    s.className = 'tok';
    s.dataset.i = String(i);
    if (tokens[i] === '\n') {
      s.textContent = '\u21b5';
      s.classList.add('nl');
      frag.appendChild(s);
      frag.appendChild(document.createTextNode('\n'));
    } else {
      s.textContent = tokens[i];
      frag.appendChild(s);
    }
    spans.push(s);
  }
  textEl.appendChild(frag);

  const layerSel = $<HTMLSelectElement>('layer');
  const quantitySel = $<HTMLSelectElement>('quantity');
  const cellInput = $<HTMLInputElement>('cell');
  const layers = Array.from(new Set(meta.quantities.map((q) => q.layer)));
  for (const l of layers) layerSel.add(new Option(`layer ${l}`, String(l)));
  cellInput.max = String(H - 1);
  const state = { q: 0, cell: 0 };

  const fillQuantities = (layer: number) => {
    quantitySel.innerHTML = '';
    meta.quantities.forEach((q, index) => {
      if (q.layer === layer) quantitySel.add(new Option(q.name === 'c' ? 'c (shown as tanh c)' : q.name, String(index)));
    });
  };
  const paint = () => {
    const v = values[state.q];
    for (let i = 0; i < T; i++) spans[i].style.backgroundColor = palette[v[i * H + state.cell] + 128];
    const q = meta.quantities[state.q];
    $('current').textContent = `layer ${q.layer} ${q.name} cell ${state.cell}`;
  };
  const select = (q: number, cell: number) => {
    if (!(q >= 0 && q < Q)) throw new Error(`no quantity ${q}`);
    state.q = q;
    state.cell = Math.max(0, Math.min(H - 1, Math.floor(cell)));
    const layer = meta.quantities[q].layer;
    layerSel.value = String(layer);
    fillQuantities(layer);
    quantitySel.value = String(q);
    cellInput.value = String(state.cell);
    paint();
  };
  layerSel.addEventListener('change', () => {
    const layer = Number(layerSel.value);
    const same = meta.quantities.findIndex((q) => q.layer === layer && q.name === meta.quantities[state.q].name);
    select(same >= 0 ? same : meta.quantities.findIndex((q) => q.layer === layer), state.cell);
  });
  quantitySel.addEventListener('change', () => select(Number(quantitySel.value), state.cell));
  cellInput.addEventListener('change', () => select(state.q, Number(cellInput.value)));
  $('prev').addEventListener('click', () => select(state.q, (state.cell + H - 1) % H));
  $('next').addEventListener('click', () => select(state.q, (state.cell + 1) % H));

  textEl.addEventListener('mouseover', (e) => {
    const i = Number((e.target as HTMLElement).dataset?.i);
    if (!Number.isInteger(i)) return;
    const v = values[state.q][i * H + state.cell] / 127;
    $('hover').textContent = `token ${i} ${JSON.stringify(tokens[i])}: ${v.toFixed(3)}`;
  });

  // The ranking: cells of every recorded quantity by |correlation| with the pattern's signal.
  const patternInput = $<HTMLInputElement>('pattern');
  const presetSel = $<HTMLSelectElement>('preset');
  presetSel.add(new Option('presets…', ''));
  for (const p of meta.presets) presetSel.add(new Option(p.label, p.pattern));
  const list = $('ranking');
  const status = $('rank-status');
  const rank = (pattern: string) => {
    list.innerHTML = '';
    patternInput.value = pattern;
    if (!pattern) {
      status.textContent = '';
      return [];
    }
    let signal: Float64Array;
    try {
      signal = patternSignal(tokens, hasPrefixes ? prefixes : null, pattern);
    } catch (err) {
      status.textContent = `not a valid pattern: ${(err as Error).message}`;
      return [];
    }
    const ranked = rankCells(signal, values, H, 20);
    if (!ranked) {
      status.textContent = 'the pattern matches every token or none: nothing to correlate';
      return [];
    }
    let inside = 0;
    for (let t = 0; t < T; t++) inside += signal[t] ? 1 : 0;
    status.textContent = pattern.trim() === '@column' ? 'correlation with the position in the line' : `${inside} of ${T} tokens inside matches`;
    for (const [k, { q, cell, r }] of ranked.entries()) {
      const li = document.createElement('li');
      const a = document.createElement('a');
      a.href = '#';
      a.className = 'rank-entry';
      a.textContent = `${k + 1}. layer ${meta.quantities[q].layer} ${meta.quantities[q].name} cell ${cell}: r = ${r.toFixed(3)}`;
      a.addEventListener('click', (e) => {
        e.preventDefault();
        select(q, cell);
      });
      li.appendChild(a);
      list.appendChild(li);
    }
    return ranked;
  };
  $('rank').addEventListener('click', () => rank(patternInput.value));
  patternInput.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') rank(patternInput.value);
  });
  presetSel.addEventListener('change', () => {
    if (presetSel.value) rank(presetSel.value);
    presetSel.value = '';
  });

  (window as unknown as { charnn: unknown }).charnn = {
    select,
    rank,
    value: (q: number, cell: number, i: number) => values[q][i * H + cell] / 127,
    tokens: T,
  };
  select(0, 0);
  const ranked = meta.pattern ? rank(meta.pattern) : [];
  if (ranked.length > 0) select(ranked[0].q, ranked[0].cell);
  document.body.dataset.ready = 'true';
}

/** Everything the page embeds, in order. */
export const VIEWER_FUNCTIONS: ReadonlyArray<(...args: never[]) => unknown> = [patternSignal, rankCells, activationColor, viewerMain];
