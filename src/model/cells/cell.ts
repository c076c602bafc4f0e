import type { Backend, Tensor } from '../../backend/backend.js';

/**
 * What a recurrent cell is, in one place: everything the rest of charnn needs to know about it.
 * Each cell is one module in this folder exporting a `CellSpec`; `index.ts` lists them. Layers,
 * the trainer, `dump`, LSTMVis, export/import, the FLOP and parameter counts and the CLI read
 * these specs and never switch on a cell's name.
 */

/** How a parameter starts (ParamInitializer draws them in parameter order). */
export type ParamInit =
  | { kind: 'uniform'; bound: number }
  | { kind: 'normal'; std: number }
  | { kind: 'constant'; value: number }
  /** A [k*H] bias whose gate block j (H wide) is values[j] (the LSTM's forget-gate bias 1). */
  | { kind: 'gateConstants'; hidden: number; values: readonly number[] };

/** One parameter of a layer: `layers.<l>.<name>`, its shape for input width D and H units. */
export interface CellParam {
  name: string;
  shape: number[];
  init: ParamInit;
}

/** A layer's parameters (or their gradients) by name: `Wx`, `Wh`, `b`, ... as the cell declares. */
export type LayerParams = Readonly<Record<string, Tensor>>;

/**
 * A product of the layer's input x: [T*B, D] with one of its weights, computed for the whole
 * window by the model (one GEMM, or a row gather for one-hot input) before `forward`:
 * out = x @ weight. After `backward`, dOut holds dLoss/dout, from which the model derives the
 * weight's gradient (x^T @ dOut) and its share of the input gradient (dOut @ weight^T).
 */
export interface InputProjection {
  weight: string;
  out: Tensor; // [T*B, W]
  dOut: Tensor; // [T*B, W] (empty without gradients)
}

/** A value of every position that `dump` reads: columns [offset, offset + H) of tensor [T*B, W]. */
export interface RecordedValue {
  tensor: Tensor;
  offset: number;
}

/** One layer of a cell, working over windows of T steps and B streams (see Recurrence). */
export interface CellLayer {
  /** The state carried between windows: h, and c for a cell with a memory cell; each [B, H]. */
  readonly h: Tensor;
  readonly c: Tensor | null;
  /** The products of the input this layer needs, in parameter order. */
  readonly inputs: readonly InputProjection[];
  /** h of every step, [T*B, H]: the layer's output. */
  outputs(): Tensor;
  /** Forget the carried state (start of an epoch, or of a new text). */
  resetState(): void;
  /** The recurrence over the window, the input projections being in place. */
  forward(p: LayerParams): void;
  /**
   * Backpropagate through the window (truncated BPTT: the carried state is a constant). dH:
   * [T*B, H] holds dLoss/dh_t from above and is used as scratch. Writes the input projections'
   * dOut and the gradients of the cell's other parameters into `g`.
   */
  backward(p: LayerParams, g: LayerParams, dH: Tensor): void;
  /** Where quantity `name` (one of the spec's `quantities`) of every step lives after forward. */
  recorded(name: string): RecordedValue;
}

/** A quantity `dump` can record, and the `--what` group that selects it. */
export interface CellQuantity {
  name: string;
  group: string;
  /**
   * Whether its values lie in [-1, 1] (h, gate activations). The HTML viewer and LSTMVis show
   * the others (a cell state, the mLSTM's m) through tanh.
   */
  bounded: boolean;
}

/** A tensor as PyTorch's state_dict holds it: row-major float32. */
export interface TorchTensor {
  name: string;
  shape: number[];
  data: Float32Array;
}

/**
 * A layer's mapping to its PyTorch twin (python/charnn_torch.py): the state_dict entries of
 * layer l, and the conversions both ways. `values(name)` gives charnn's layer parameters by
 * their short name (`Wx`), `get(name)` the PyTorch tensor by its state_dict name (checked for
 * shape by the caller).
 */
export interface TorchLayerMapping {
  /** What the Python side builds for this cell (for messages and the README). */
  module: string;
  specs(l: number, D: number, H: number): Array<{ name: string; shape: number[] }>;
  toTorch(l: number, D: number, H: number, values: (name: string) => Float32Array): TorchTensor[];
  fromTorch(l: number, D: number, H: number, get: (name: string) => Float32Array): Map<string, Float32Array>;
}

export interface CellSpec {
  /** `--model` value and the checkpoint's `model.cell`. */
  readonly name: string;
  /** How messages name it: `LSTM`. */
  readonly title: string;
  /** One line for `--help` and the README. */
  readonly summary: string;
  /** Gate activations, in the order the backend stores them, each H wide (`pre` columns). */
  readonly gates: readonly string[];
  /** Whether the cell carries a memory cell c besides h. */
  readonly hasCellState: boolean;
  /** Layers when `--layers` is not given (min-char-rnn's single layer for the vanilla RNN). */
  readonly defaultLayers?: number;
  /** How weight matrices start, for H units (the output layer's too). */
  weightInit(H: number): ParamInit;
  /** Layer parameters, in checkpoint order, for input width D. */
  params(D: number, H: number): CellParam[];
  /** The layer's working memory and steps. */
  layer(be: Backend, H: number, T: number, B: number, withGradients: boolean): CellLayer;
  /**
   * Floating-point operations of a training step per token (forward + backward) for a layer of
   * input width D (0 for one-hot: a row lookup), 2 per multiply-add of the matrix products.
   */
  flopsPerToken(D: number, H: number): number;
  /** What `dump` can record, in order. */
  readonly quantities: readonly CellQuantity[];
  readonly torch: TorchLayerMapping;
}
