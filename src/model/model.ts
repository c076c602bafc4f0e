import type { Backend, Tensor } from '../backend/backend.js';
import type { CellLayer, CellSpec, LayerParams, RecordedValue } from './cells/cell.js';
import { cellSpec } from './cells/index.js';
import { type ModelConfig, validateModelConfig } from './config.js';
import { ParamInitializer, ParamSet, layerInputWidth, paramSpecs } from './params.js';

/**
 * A stacked recurrent language model: tokens -> (one-hot | embedding) -> L recurrent layers
 * -> linear -> softmax. The model owns its parameters; the work of running it over windows
 * of T steps and B streams is done by a `WindowRunner`, of which a trainer, an evaluator and a
 * sampler each keep their own (with their own carried state).
 */
export class Model {
  constructor(
    readonly backend: Backend,
    readonly config: ModelConfig,
    readonly params: ParamSet,
  ) {}

  /** A freshly initialised model. */
  static create(backend: Backend, config: ModelConfig, seed: number): Model {
    validateModelConfig(config);
    const init = new ParamInitializer(seed);
    const specs = paramSpecs(config);
    const tensors = specs.map((s) => backend.upload(init.values(s), s.shape));
    return new Model(backend, config, new ParamSet(specs, tensors));
  }

  /** A model from stored parameter values (a checkpoint), in `paramSpecs` order by name. */
  static fromValues(backend: Backend, config: ModelConfig, values: (name: string) => ArrayLike<number>): Model {
    validateModelConfig(config);
    const specs = paramSpecs(config);
    const tensors = specs.map((s) => backend.upload(values(s.name), s.shape));
    return new Model(backend, config, new ParamSet(specs, tensors));
  }

  /**
   * `sparseEmbeddingGrad`: a training runner gives the embedding table's gradient as the rows
   * the window read only (see `trainStep`); for optimizers whose update of a zero-gradient row
   * is no update (SGD, Adagrad), so that the large table costs nothing per step beyond them.
   */
  runner(T: number, B: number, opts: { training: boolean; sparseEmbeddingGrad?: boolean }): WindowRunner {
    return new WindowRunner(this, T, B, opts.training, opts.sparseEmbeddingGrad ?? false);
  }
}

/** Layer l's entries of a parameter (or gradient) set, by the cell's short names. */
function layerParams(set: ParamSet, cell: CellSpec, l: number, D: number, H: number): LayerParams {
  return Object.fromEntries(cell.params(D, H).map((p) => [p.name, set.get(`layers.${l}.${p.name}`)]));
}

/**
 * Runs a model over windows of T steps x B streams, carrying each stream's hidden state from
 * one window to the next. Inputs and targets are time-major id arrays of length T*B.
 */
export class WindowRunner {
  readonly inputs: Tensor; // i32 [T*B]
  readonly targets: Tensor; // i32 [T*B]
  readonly logits: Tensor; // [T*B, V]; after a training step, dLoss/dlogits
  readonly losses: Tensor; // [T*B] nats per position
  private readonly be: Backend;
  private readonly cfg: ModelConfig;
  private readonly cell: CellSpec;
  private readonly layers: CellLayer[];
  /** Each layer's parameters and gradients by short name (handles into the ParamSets). */
  private readonly layerParams: LayerParams[];
  private readonly embedded: Tensor | null; // [T*B, E]
  /** Dropped-out copies of each layer's input (index l, for l > 0 or an embedding) and of the top output. */
  private readonly dropped: Array<Tensor | null>;
  private readonly droppedTop: Tensor | null;
  private readonly dH: Tensor | null; // [T*B, H] gradient scratch
  private readonly dEmbedded: Tensor | null; // [T*B, E]
  /** Row-sparse embedding gradient: the window's distinct input ids and each position's slot among them. */
  private readonly sparseEmbed: {
    rowIds: Tensor; // i32 [T*B, 1]: the first `count` hold the distinct ids
    slots: Tensor; // i32 [T*B]: position -> index into rowIds
    values: Tensor; // [T*B, E]: row k is the gradient of table row rowIds[k]
    hostRowIds: Int32Array;
    hostSlots: Int32Array;
    slotOf: Map<number, number>;
    count: number;
  } | null;
  private dropoutSeed = 0;

  constructor(
    readonly model: Model,
    readonly T: number,
    readonly B: number,
    readonly training: boolean,
    sparseEmbeddingGrad = false,
  ) {
    const be = (this.be = model.backend);
    const c = (this.cfg = model.config);
    const TB = T * B;
    const useDropout = training && c.dropout > 0;
    this.inputs = be.zeros([TB], 'i32');
    this.targets = be.zeros([TB], 'i32');
    this.logits = be.zeros([TB, c.vocabSize]);
    this.losses = be.zeros([TB]);
    const cell = cellSpec(c.cell);
    this.layers = [];
    this.layerParams = [];
    for (let l = 0; l < c.layers; l++) {
      this.layers.push(cell.layer(be, c.hidden, T, B, training));
      this.layerParams.push(layerParams(model.params, cell, l, layerInputWidth(c, l), c.hidden));
    }
    this.cell = cell;
    this.embedded = c.embed > 0 ? be.zeros([TB, c.embed]) : null;
    this.dropped = this.layers.map((_, l) => {
      if (!useDropout) return null;
      if (l > 0) return be.zeros([TB, c.hidden]);
      return c.embed > 0 ? be.zeros([TB, c.embed]) : null;
    });
    this.droppedTop = useDropout ? be.zeros([TB, c.hidden]) : null;
    this.dH = training ? be.zeros([TB, c.hidden]) : null;
    this.dEmbedded = training && c.embed > 0 ? be.zeros([TB, c.embed]) : null;
    // A tied table's gradient is dense anyway: every row gets the output layer's share.
    this.sparseEmbed =
      training && sparseEmbeddingGrad && c.embed > 0 && !c.tie
        ? {
            rowIds: be.zeros([TB, 1], 'i32'),
            slots: be.zeros([TB], 'i32'),
            values: be.zeros([TB, c.embed]),
            hostRowIds: new Int32Array(TB),
            hostSlots: new Int32Array(TB),
            slotOf: new Map(),
            count: 0,
          }
        : null;
  }

  /**
   * Zeroed gradients to pass to `trainStep`, shaped like the parameters; with a row-sparse
   * embedding gradient, its entry is this runner's [T*B, E] row buffer rather than a dense
   * [V, E] table that would never be written.
   */
  gradients(): ParamSet {
    const be = this.be;
    const specs = this.model.params.specs;
    const sp = this.sparseEmbed;
    if (!sp) return ParamSet.zeros(be, specs);
    return new ParamSet(
      specs,
      specs.map((s) => (s.name === 'embed' ? sp.values : be.zeros(s.shape))),
      specs.map((s) => (s.name === 'embed' ? sp.rowIds : null)),
    );
  }

  /** Load a window: ids time-major (t*B + b). Targets may be omitted when only logits are wanted. */
  setWindow(inputs: Int32Array, targets?: Int32Array): void {
    this.be.write(this.inputs, inputs);
    if (targets) this.be.write(this.targets, targets);
    if (this.sparseEmbed) this.indexEmbeddingRows(inputs);
  }

  /** The window's distinct input ids, in order of first appearance, and each position's slot. */
  private indexEmbeddingRows(inputs: Int32Array): void {
    const sp = this.sparseEmbed!;
    sp.slotOf.clear();
    for (let n = 0; n < inputs.length; n++) {
      let slot = sp.slotOf.get(inputs[n]);
      if (slot === undefined) {
        slot = sp.slotOf.size;
        sp.slotOf.set(inputs[n], slot);
        sp.hostRowIds[slot] = inputs[n];
      }
      sp.hostSlots[n] = slot;
    }
    sp.count = sp.slotOf.size;
    this.be.write(sp.rowIds, sp.hostRowIds);
    this.be.write(sp.slots, sp.hostSlots);
  }

  /** Forget every stream's carried state. */
  resetState(): void {
    for (const l of this.layers) l.resetState();
  }

  /** The carried state tensors, layer by layer: h (and c for a cell with a memory cell), each [B, H]. */
  stateTensors(): Array<{ h: Tensor; c: Tensor | null }> {
    return this.layers.map((l) => ({ h: l.h, c: l.c }));
  }

  /** Top-layer h of every position, [T*B, H] (for dumps and tests). */
  layerOutputs(l: number): Tensor {
    return this.layers[l].outputs();
  }

  /**
   * Where quantity `name` of layer l (one of the cell's `quantities`: h, c, a gate, ...) is for
   * every position after forward: columns [offset, offset + H) of a [T*B, W] tensor.
   */
  layerRecorded(l: number, name: string): RecordedValue {
    return this.layers[l].recorded(name);
  }

  /** Site-specific dropout seed, so each layer's mask differs within a window. */
  private seedFor(site: number): number {
    return (this.dropoutSeed + Math.imul(site + 1, 0x9e3779b9)) >>> 0;
  }

  /**
   * Forward over the loaded window: logits for every position and, with `withLoss`, the loss
   * of every position against the targets. `dropoutSeed` is used only when training with
   * dropout (the trainer draws it from its RNG, so runs are reproducible).
   */
  forward(withLoss: boolean, dropoutSeed = 0): void {
    const be = this.be;
    const c = this.cfg;
    const P = this.model.params;
    this.dropoutSeed = dropoutSeed;
    for (let l = 0; l < c.layers; l++) {
      const ws = this.layers[l];
      const p = this.layerParams[l];
      if (l === 0 && c.embed === 0) {
        // One-hot input: x @ W is a row gather.
        for (const proj of ws.inputs) be.gatherRows(p[proj.weight], this.inputs, proj.out);
      } else {
        let x: Tensor;
        if (l === 0) {
          be.gatherRows(P.get('embed'), this.inputs, this.embedded!);
          x = this.embedded!;
        } else {
          x = this.layers[l - 1].outputs();
        }
        const d = this.dropped[l];
        if (d) {
          be.dropout(x, d, c.dropout, this.seedFor(l));
          x = d;
        }
        for (const proj of ws.inputs) be.gemm(false, false, 1, x, p[proj.weight], 0, proj.out);
      }
      ws.forward(p);
    }
    const top = this.topOutput();
    if (this.droppedTop) be.dropout(this.layers[c.layers - 1].outputs(), this.droppedTop, c.dropout, this.seedFor(c.layers));
    // logits: [T*B, V] = top: [T*B, H] @ out.W: [H, V], or @ embed^T: [E = H, V] when tied.
    if (c.tie) be.gemm(false, true, 1, top, P.get('embed'), 0, this.logits);
    else be.gemm(false, false, 1, top, P.get('out.W'), 0, this.logits);
    be.addRowVector(this.logits, P.get('out.b'));
    if (withLoss) be.softmaxCrossEntropy(this.logits, this.targets, this.losses, null, 0);
  }

  private topOutput(): Tensor {
    return this.droppedTop ?? this.layers[this.cfg.layers - 1].outputs();
  }

  /**
   * Forward with loss, then backward: fills `grads` (same specs as the parameters) with the
   * gradient of gradScale * (sum of the window's losses), overwriting every gradient, and
   * returns the gradients: `grads` itself, or with a runner made with `sparseEmbeddingGrad`,
   * `grads` with the embedding's entry replaced by the rows the window read (row-sparse).
   */
  trainStep(grads: ParamSet, gradScale: number, dropoutSeed = 0): ParamSet {
    if (!this.training) throw new Error('trainStep on a runner made without gradients');
    const be = this.be;
    const c = this.cfg;
    const P = this.model.params;
    this.forward(false, dropoutSeed);
    be.softmaxCrossEntropy(this.logits, this.targets, this.losses, this.logits, gradScale);
    const dLogits = this.logits;
    const top = this.topOutput();
    be.sumRows(dLogits, grads.get('out.b'), false);
    const dH = this.dH!;
    if (c.tie) {
      // The output layer's share of the tied table's gradient: [V, E] = dLogits^T @ top. The
      // input side's rows are added to it below.
      be.gemm(true, false, 1, dLogits, top, 0, grads.get('embed'));
      be.gemm(false, false, 1, dLogits, P.get('embed'), 0, dH);
    } else {
      be.gemm(true, false, 1, top, dLogits, 0, grads.get('out.W'));
      be.gemm(false, true, 1, dLogits, P.get('out.W'), 0, dH);
    }
    if (this.droppedTop) be.dropout(dH, dH, c.dropout, this.seedFor(c.layers));
    for (let l = c.layers - 1; l >= 0; l--) {
      const ws = this.layers[l];
      const p = this.layerParams[l];
      const g = layerParams(grads, this.cell, l, layerInputWidth(c, l), c.hidden);
      ws.backward(p, g, dH);
      if (l === 0 && c.embed === 0) {
        for (const proj of ws.inputs) {
          be.fill(g[proj.weight], 0);
          be.scatterAddRows(proj.dOut, this.inputs, g[proj.weight]);
        }
        continue;
      }
      const x = this.dropped[l] ?? (l === 0 ? this.embedded! : this.layers[l - 1].outputs());
      // Gradient into this layer's input (the layer below's output, or the embedding): the sum
      // over the cell's input projections of dOut @ W^T.
      const dX = l === 0 ? this.dEmbedded! : dH;
      ws.inputs.forEach((proj, k) => {
        be.gemm(true, false, 1, x, proj.dOut, 0, g[proj.weight]);
        be.gemm(false, true, 1, proj.dOut, p[proj.weight], k === 0 ? 0 : 1, dX);
      });
      if (this.dropped[l]) be.dropout(dX, dX, c.dropout, this.seedFor(l));
      if (l === 0) return this.embeddingGrad(dX, grads);
    }
    return grads;
  }

  /** Adds the input side's gradient of the embedding table, dX: [T*B, E], into the gradients. */
  private embeddingGrad(dX: Tensor, grads: ParamSet): ParamSet {
    const be = this.be;
    const sp = this.sparseEmbed;
    if (sp) {
      be.fill(sp.values, 0);
      be.scatterAddRows(dX, sp.slots, sp.values);
      return grads.withSparseRows('embed', be.rows(sp.values, 0, sp.count), be.rows(sp.rowIds, 0, sp.count));
    }
    const dE = grads.get('embed');
    // Tied weights: dE already holds the output layer's share.
    if (!this.cfg.tie) be.fill(dE, 0);
    be.scatterAddRows(dX, this.inputs, dE);
    return grads;
  }
}
