import { type DType, type Tensor, shapeSize } from './backend.js';

export type CpuArray = Float32Array | Float64Array | Int32Array;

/**
 * A tensor in host memory: a typed array (or a row-block view of one, via subarray, so views
 * share storage and cost nothing). Shared by the reference and native backends; the native
 * addon reads and writes `data` in place, without copies.
 */
export class CpuTensor implements Tensor {
  readonly size: number;
  constructor(
    readonly data: CpuArray,
    readonly shape: readonly number[],
    readonly dtype: DType,
  ) {
    this.size = shapeSize(shape);
    if (data.length !== this.size) {
      throw new Error(`tensor data length ${data.length} does not match shape [${shape.join(', ')}]`);
    }
  }

  /** Rows [start, start + count) of the first dimension, sharing storage. */
  rows(start: number, count: number): CpuTensor {
    const rowSize = this.shape.length <= 1 ? this.size : this.size / this.shape[0];
    const rowsTotal = this.shape.length <= 1 ? 1 : this.shape[0];
    if (start < 0 || count < 0 || start + count > rowsTotal) {
      throw new Error(`rows ${start}..${start + count} out of range for shape [${this.shape.join(', ')}]`);
    }
    const shape = this.shape.length <= 1 ? [count * rowSize] : [count, ...this.shape.slice(1)];
    return new CpuTensor(this.data.subarray(start * rowSize, (start + count) * rowSize), shape, this.dtype);
  }
}

/** Narrow a handle to a host tensor; a handle from another backend is a programming error. */
export function cpu(t: Tensor): CpuTensor {
  if (!(t instanceof CpuTensor)) throw new Error('tensor does not belong to a CPU backend');
  return t;
}
