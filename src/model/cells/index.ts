import type { CellSpec } from './cell.js';
import { gru } from './gru.js';
import { lstm } from './lstm.js';
import { mlstm } from './mlstm.js';
import { rnn } from './rnn.js';

/**
 * Every recurrent cell charnn knows, in the order `--model` lists them. Adding a cell is a
 * module in this folder exporting a CellSpec and a line here (see README, "Adding a cell").
 */
export const CELLS: readonly CellSpec[] = [rnn, lstm, gru, mlstm];

/** The cell `charnn train` uses without `--model`. */
export const DEFAULT_CELL = lstm.name;

/** Layers when `--layers` is not given: the cell's own default, else `layers`. */
export function defaultLayers(name: string, layers: number): number {
  return findCell(name)?.defaultLayers ?? layers;
}

/** The cells' names: `--model` choices and the values a checkpoint's `model.cell` may take. */
export const CELL_NAMES: readonly string[] = CELLS.map((c) => c.name);

/** The spec of a cell by name; undefined for one charnn does not know. */
export function findCell(name: string): CellSpec | undefined {
  return CELLS.find((c) => c.name === name);
}

/** The spec of a cell by name, for a name already validated (an unknown one is a bug). */
export function cellSpec(name: string): CellSpec {
  const spec = findCell(name);
  if (!spec) throw new Error(`unknown cell ${JSON.stringify(name)}`);
  return spec;
}

/** Whether quantity `name` of a `cell` model lies in [-1, 1] (see CellQuantity.bounded). */
export function quantityBounded(cell: string, name: string): boolean {
  return cellSpec(cell).quantities.find((q) => q.name === name)?.bounded ?? false;
}

/** How messages name a cell: its title (`LSTM`), or for a name charnn does not know, the name in capitals. */
export function cellTitle(name: string): string {
  return findCell(name)?.title ?? name.toUpperCase();
}

/** "rnn, lstm, gru or mlstm": for messages. */
export function cellNameList(): string {
  return `${CELL_NAMES.slice(0, -1).join(', ')} or ${CELL_NAMES[CELL_NAMES.length - 1]}`;
}

/** The `dump --what` groups the cells offer, in first-seen order (h, c, gates, ...). */
export const QUANTITY_GROUPS: readonly string[] = [...new Set(CELLS.flatMap((c) => c.quantities.map((q) => q.group)))];

export type { CellSpec } from './cell.js';
