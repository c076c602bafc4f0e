import { statSync } from 'node:fs';
import { readCheckpointMeta } from '../checkpoint/read.js';
import { Vocabulary } from '../data/vocabulary.js';
import { CharnnError } from '../errors.js';
import { cellTitle } from '../model/cells/index.js';
import { quoteText } from '../util/visible-text.js';

/** A loss history: [iteration, nats per token] pairs. */
export type LossHistory = Array<[number, number]>;

/** Everything `charnn info` reports about a model file (also its --json output). */
export interface ModelInfo {
  file: string;
  bytes: number;
  charnnVersion: string | null;
  model: { cell: string; layers: number; hidden: number; embed: number; tie: boolean; dropout: number; vocabSize: number };
  parameters: {
    /** Model parameters (what sampling needs). */
    model: number;
    /** Per parameter tensor: name, shape, elements. */
    tensors: Array<{ name: string; shape: number[]; size: number }>;
    /** Optimizer state values stored for resuming (0 without training state). */
    optimizer: number;
    /** Carried hidden-state values stored for resuming. */
    carriedState: number;
  };
  tokenizer: Record<string, unknown> | null;
  vocabulary: { level: string; size: number; unk: boolean; tokens: string[] };
  training: null | {
    config: Record<string, unknown>;
    corpus: Record<string, unknown> | null;
    backend: string | null;
    iteration: number | null;
    epoch: number | null;
    /** Fractional epochs done (from the data position), when it can be worked out. */
    progress: number | null;
    lr: number | null;
    tokensSeen: number | null;
    elapsedSeconds: number | null;
    /** min-char-rnn's smoothed training loss, per token. */
    smoothLoss: number | null;
    bestValLoss: number | null;
    bestValIteration: number | null;
    optimizerStep: number | null;
    history: { train: LossHistory; val: LossHistory };
  };
}

const num = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) ? v : null);
const rec = (v: unknown): Record<string, unknown> | null => (typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : null);

function history(v: unknown): LossHistory {
  if (!Array.isArray(v)) return [];
  return v.filter((p): p is [number, number] => Array.isArray(p) && p.length === 2 && typeof p[0] === 'number' && typeof p[1] === 'number' && Number.isFinite(p[1]));
}

/**
 * Describes a model file from its header alone (no tensor data is read, so it is instant for
 * any model size). Tolerates missing training fields: a model saved without a training run
 * has `training: null`.
 */
export async function describeModelFile(path: string): Promise<ModelInfo> {
  const header = await readCheckpointMeta(path);
  const meta = header.meta;
  const model = rec(meta.model);
  if (meta.kind !== 'charnn-model' || !model) {
    throw new CharnnError(`${path} is a charnn checkpoint but not a model file`, 'pass a file written by charnn train');
  }
  const vocab = Vocabulary.fromJSON(meta.vocabulary);
  const isState = (n: string) => n.startsWith('state.');
  const isOptim = (n: string) => n.startsWith('optim.');
  const tensors = header.tensors.filter((t) => !isState(t.name) && !isOptim(t.name)).map((t) => ({ name: t.name, shape: t.shape, size: t.length }));
  const sum = (pred: (n: string) => boolean) => header.tensors.filter((t) => pred(t.name)).reduce((a, t) => a + t.length, 0);
  const t = rec(meta.training);
  let training: ModelInfo['training'] = null;
  if (t) {
    const state = rec(t.state) ?? {};
    const config = rec(t.config) ?? {};
    const corpus = rec(t.corpus);
    const batcher = rec(t.batcher);
    const h = rec(state.history) ?? {};
    const epoch = num(state.epoch);
    // Windows per epoch as StreamBatcher counts them, for the fractional epoch.
    const trainTokens = num(corpus?.trainTokens);
    const B = num(config.batch);
    const T = num(config.seq);
    let progress: number | null = null;
    if (trainTokens && B && T && batcher && epoch !== null) {
      const windows = Math.floor((Math.floor(trainTokens / B) - 1) / T);
      const w = num(batcher.windowInEpoch);
      const e = num(batcher.epoch);
      if (windows > 0 && w !== null && e !== null) progress = e + w / windows;
    }
    training = {
      config,
      corpus,
      backend: typeof t.backend === 'string' ? t.backend : null,
      iteration: num(state.iteration),
      epoch,
      progress,
      lr: num(state.lr),
      tokensSeen: num(state.tokensSeen),
      elapsedSeconds: num(state.elapsedSeconds),
      smoothLoss: num(state.smoothLoss) !== null && T ? num(state.smoothLoss)! / T : null,
      bestValLoss: num(state.bestValLoss),
      bestValIteration: num(state.bestValLoss) !== null ? num(state.bestValIteration) : null,
      optimizerStep: num(t.optimizerStep),
      history: { train: history(h.train), val: history(h.val) },
    };
  }
  return {
    file: path,
    bytes: statSync(path).size,
    charnnVersion: typeof meta.charnnVersion === 'string' ? meta.charnnVersion : null,
    model: {
      cell: String(model.cell),
      layers: Number(model.layers),
      hidden: Number(model.hidden),
      embed: Number(model.embed),
      tie: model.tie === true,
      dropout: Number(model.dropout),
      vocabSize: Number(model.vocabSize),
    },
    parameters: { model: tensors.reduce((a, x) => a + x.size, 0), tensors, optimizer: sum(isOptim), carriedState: sum(isState) },
    tokenizer: rec(meta.tokenizer),
    vocabulary: { level: vocab.level, size: vocab.size, unk: vocab.unkId >= 0, tokens: [...vocab.tokens] },
    training,
  };
}

const BARS = '▁▂▃▄▅▆▇█';

/** Values averaged into at most `width` buckets (for plots narrower than the history). */
export function resample(values: readonly number[], width: number): number[] {
  if (values.length <= width) return [...values];
  const out: number[] = [];
  for (let k = 0; k < width; k++) {
    const a = Math.floor((k * values.length) / width);
    const b = Math.floor(((k + 1) * values.length) / width);
    let s = 0;
    for (let i = a; i < b; i++) s += values[i];
    out.push(s / (b - a));
  }
  return out;
}

/** A terminal sparkline (▁ low .. █ high), scaled to [lo, hi] (default: the values' own range). */
export function sparkline(values: readonly number[], width = 40, lo?: number, hi?: number): string {
  const v = resample(values, width);
  const min = lo ?? Math.min(...v);
  const max = hi ?? Math.max(...v);
  return v.map((x) => BARS[max > min ? Math.round(((x - min) / (max - min)) * (BARS.length - 1)) : 0]).join('');
}

/** A token as it appears in a vocabulary listing: quoted, so whitespace and invisible characters are visible. */
function showToken(t: string): string {
  return quoteText(t);
}

function group(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

function fmtBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  if (n < 1024 ** 3) return `${(n / 1024 ** 2).toFixed(1)} MiB`;
  return `${(n / 1024 ** 3).toFixed(2)} GiB`;
}

export function fmtDuration(seconds: number): string {
  if (seconds < 60) return `${seconds.toFixed(1)} s`;
  const s = Math.round(seconds);
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const ss = String(s % 60).padStart(2, '0');
  return h > 0 ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** The per-token unit of a level: "bits per character" or "bits per word". */
function bitsUnit(level: string): string {
  return level === 'char' ? 'bits/char' : 'bits/word';
}

/** `charnn info` as text: aligned label/value lines, with loss sparklines. */
export function renderInfoText(info: ModelInfo, opts: { vocabLimit?: number } = {}): string {
  const lines: string[] = [];
  const row = (label: string, value: string) => lines.push(`${label.padEnd(12)}${value}`);
  const more = (value: string) => lines.push(`${''.padEnd(12)}${value}`);
  const m = info.model;
  row('file', `${info.file} (${fmtBytes(info.bytes)}${info.charnnVersion ? `, written by charnn ${info.charnnVersion}` : ''})`);
  row('model', `${cellTitle(m.cell)}, ${m.layers} layer${m.layers === 1 ? '' : 's'} × ${m.hidden} units, ${m.embed > 0 ? `embedding ${m.embed}${m.tie ? ' tied to the output layer' : ''}` : 'one-hot input'}, dropout ${m.dropout}`);
  const p = info.parameters;
  const extra = [p.optimizer > 0 ? `${group(p.optimizer)} optimizer state` : '', p.carriedState > 0 ? `${group(p.carriedState)} carried state` : ''].filter(Boolean);
  row('parameters', `${group(p.model)}${extra.length ? ` (file also holds ${extra.join(' and ')} values for resuming)` : ''}`);
  more(p.tensors.map((t) => `${t.name} [${t.shape.join('×')}]`).join(', '));
  const v = info.vocabulary;
  const limit = opts.vocabLimit ?? 40;
  const noun = v.level === 'char' ? 'characters' : 'tokens';
  const tk = info.tokenizer;
  const split = v.level === 'word' && tk ? `, split ${String(tk.wordSplit ?? 'punct')}${tk.vocabSize ? `, --vocab-size ${String(tk.vocabSize)}` : ''}${tk.minCount ? `, --min-count ${String(tk.minCount)}` : ''}` : '';
  const endings = v.level === 'char' ? `, line endings ${tk?.lineEndings === 'lf' ? 'read as \\n' : 'kept as they are'}` : '';
  row('vocabulary', `${group(v.size)} ${noun} (${v.level} level${split}${endings})`);
  more(v.tokens.slice(0, limit).map(showToken).join(' ') + (v.size > limit ? ` … and ${group(v.size - limit)} more (--json lists all)` : ''));
  const t = info.training;
  if (!t) {
    row('training', 'none recorded (the file holds a model only)');
    return lines.join('\n') + '\n';
  }
  const c = t.config;
  const opt = rec(c.optimizer);
  const epochText = t.progress !== null ? `epoch ${t.progress.toFixed(2)}` : t.epoch !== null ? `epoch ${t.epoch}` : '';
  row('training', [t.iteration !== null ? `iteration ${group(t.iteration)}` : '', epochText, t.tokensSeen !== null ? `${group(t.tokensSeen)} tokens seen` : '', t.elapsedSeconds !== null ? fmtDuration(t.elapsedSeconds) : '', t.backend ? `${t.backend} backend` : ''].filter(Boolean).join(', '));
  const optText = opt ? `${String(opt.name)} lr ${t.lr ?? String(opt.lr)}${opt.lr !== t.lr && t.lr !== null ? ` (from ${String(opt.lr)})` : ''}` : '';
  more([optText, `batch ${String(c.batch)} × seq ${String(c.seq)}`, c.clip ? `clip ${String(c.clip)}` : '', c.clipNorm ? `clip-norm ${String(c.clipNorm)}` : '', scheduleText(rec(c.schedule)), typeof c.plateauDecay === 'number' && c.plateauDecay < 1 ? `lr × ${c.plateauDecay} on validation plateaus` : '', `seed ${String(c.seed)}`].filter(Boolean).join(', '));
  if (t.corpus) {
    const k = t.corpus;
    const split = typeof c.valFile === 'string' ? `${group(Number(k.valTokens))} validation in --val ${c.valFile}` : `${group(Number(k.valTokens))} validation, --val-frac ${String(c.valFrac)}`;
    row('corpus', `${String(k.source)}: ${group(Number(k.tokens))} tokens (${group(Number(k.trainTokens))} training, ${split})`);
  }
  const bits = (nats: number) => `${nats.toFixed(4)} nats/token = ${(nats / Math.LN2).toFixed(4)} ${bitsUnit(v.level)}`;
  if (t.smoothLoss !== null) row('loss', `training ${bits(t.smoothLoss)} (smoothed)`);
  const lastVal = t.history.val.at(-1);
  if (lastVal) {
    more(`validation ${bits(lastVal[1])} at iteration ${group(lastVal[0])}${t.bestValLoss !== null && t.bestValIteration !== null ? `; best ${t.bestValLoss.toFixed(4)} at iteration ${group(t.bestValIteration)}` : ''}`);
  }
  const curves: Array<[string, LossHistory]> = [
    ['training', t.history.train],
    ['validation', t.history.val],
  ];
  const all = [...t.history.train, ...t.history.val].map((x) => x[1]);
  if (all.length > 1) {
    const lo = Math.min(...all);
    const hi = Math.max(...all);
    row('loss curve', `nats/token, one scale for both (${lo.toFixed(3)} to ${hi.toFixed(3)}); --svg FILE draws it`);
    for (const [name, h] of curves) {
      if (h.length === 0) continue;
      more(`${name.padEnd(11)}${sparkline(h.map((x) => x[1]), 40, lo, hi)} ${h[0][1].toFixed(3)} → ${h[h.length - 1][1].toFixed(3)} (iterations ${group(h[0][0])}–${group(h[h.length - 1][0])})`);
    }
  }
  return lines.join('\n') + '\n';
}

/** `charnn info --json`: one line. */
export function renderInfoJSON(info: ModelInfo): string {
  return JSON.stringify(info) + '\n';
}

function escapeXml(s: string): string {
  return s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!);
}

/** A number with few digits, for axis labels. */
function tick(v: number): string {
  return Math.abs(v) >= 1000 ? group(v) : Number(v.toPrecision(3)).toString();
}

/**
 * The loss curves as a small standalone SVG: training (smoothed) and validation loss in nats
 * per token against iterations, with axes, ticks and a legend.
 */
export function lossCurveSvg(info: ModelInfo): string {
  const W = 640;
  const Hh = 320;
  const left = 60;
  const right = 20;
  const top = 30;
  const bottom = 45;
  const t = info.training;
  const train = t?.history.train ?? [];
  const val = t?.history.val ?? [];
  const pts = [...train, ...val];
  const title = `${info.file}: loss (nats/token)`;
  const head = `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${Hh}" viewBox="0 0 ${W} ${Hh}" font-family="sans-serif" font-size="12">\n<rect width="${W}" height="${Hh}" fill="white"/>\n<text x="${W / 2}" y="18" text-anchor="middle" font-size="14">${escapeXml(title)}</text>\n`;
  if (pts.length === 0) return `${head}<text x="${W / 2}" y="${Hh / 2}" text-anchor="middle">no loss history recorded</text>\n</svg>\n`;
  let x0 = Math.min(...pts.map((p) => p[0]));
  let x1 = Math.max(...pts.map((p) => p[0]));
  let y0 = Math.min(...pts.map((p) => p[1]));
  let y1 = Math.max(...pts.map((p) => p[1]));
  if (x1 === x0) {
    x0 -= 1;
    x1 += 1;
  }
  const pad = (y1 - y0) * 0.05 || Math.abs(y0) * 0.05 || 1;
  y0 -= pad;
  y1 += pad;
  const X = (x: number) => left + ((x - x0) / (x1 - x0)) * (W - left - right);
  const Y = (y: number) => top + (1 - (y - y0) / (y1 - y0)) * (Hh - top - bottom);
  const parts: string[] = [head];
  // Axes and ticks.
  parts.push(`<g stroke="#333" fill="none"><line x1="${left}" y1="${Y(y0)}" x2="${left}" y2="${Y(y1)}"/><line x1="${left}" y1="${Y(y0)}" x2="${X(x1)}" y2="${Y(y0)}"/></g>\n`);
  for (let k = 0; k <= 4; k++) {
    const yv = y0 + ((y1 - y0) * k) / 4;
    const xv = x0 + ((x1 - x0) * k) / 4;
    parts.push(`<line x1="${left - 4}" y1="${Y(yv).toFixed(1)}" x2="${W - right}" y2="${Y(yv).toFixed(1)}" stroke="#eee"/><text x="${left - 6}" y="${(Y(yv) + 4).toFixed(1)}" text-anchor="end">${tick(yv)}</text>\n`);
    parts.push(`<text x="${X(xv).toFixed(1)}" y="${Hh - bottom + 16}" text-anchor="middle">${tick(Math.round(xv))}</text>\n`);
  }
  parts.push(`<text x="${(left + W - right) / 2}" y="${Hh - 8}" text-anchor="middle">iteration</text>\n`);
  const line = (h: LossHistory, color: string, name: string, dots: boolean) => {
    if (h.length === 0) return;
    const d = h.map((p) => `${X(p[0]).toFixed(1)},${Y(p[1]).toFixed(1)}`).join(' ');
    parts.push(`<polyline class="${name}" fill="none" stroke="${color}" stroke-width="2" points="${d}"/>\n`);
    if (dots || h.length === 1) for (const p of h) parts.push(`<circle cx="${X(p[0]).toFixed(1)}" cy="${Y(p[1]).toFixed(1)}" r="3" fill="${color}"/>\n`);
  };
  line(train, '#1f77b4', 'train', false);
  line(val, '#ff7f0e', 'val', true);
  parts.push(
    `<g transform="translate(${W - right - 170}, ${top + 6})"><rect width="165" height="40" fill="white" stroke="#ccc"/>` +
      `<line x1="8" y1="13" x2="30" y2="13" stroke="#1f77b4" stroke-width="2"/><text x="36" y="17">training (smoothed)</text>` +
      `<line x1="8" y1="30" x2="30" y2="30" stroke="#ff7f0e" stroke-width="2"/><text x="36" y="34">validation</text></g>\n`,
  );
  parts.push('</svg>\n');
  return parts.join('');
}

/** The learning-rate schedule as `info` shows it (empty for a constant rate without warm-up, as older files have). */
function scheduleText(s: Record<string, unknown> | null): string {
  if (!s) return '';
  const warmup = typeof s.warmup === 'number' && s.warmup > 0 ? `warm-up ${s.warmup}` : '';
  const decay = s.kind === 'cosine' || s.kind === 'linear' ? `${String(s.kind)} decay to ${String(s.floor)} × lr` : '';
  return [warmup, decay].filter(Boolean).join(', ');
}
