// BsrMatrix: a rows x cols matrix in block compressed sparse row form (b x b blocks).
import { rangeError, typeError } from '../errors';
import { positiveInt } from '../options';
import { fromBfloat16, fromFloat16, type BsrDtype } from './half';
import { isFloat32Array, isInt32Array, isUint16Array } from '../util/typedArrays';

export type BlockSize = 16 | 32;

/** The raw arrays of a BSR matrix (see `BsrMatrix`). */
export interface BsrParts {
  rows: number;
  cols: number;
  blockSize: BlockSize;
  /** blockRows + 1 entries: the blocks of block row i are rowPtr[i] .. rowPtr[i+1]-1. */
  rowPtr: Int32Array;
  /** One block column per stored block, in [0, blockCols). */
  colIdx: Int32Array;
  /** nnzBlocks * b * b entries, each block row-major: Float32Array, or Uint16Array bits for float16 / bfloat16. */
  values: Float32Array | Uint16Array;
  dtype?: BsrDtype;
}


export function blockSizeOf(b: unknown, name = 'block'): BlockSize {
  if (b !== 16 && b !== 32) throw rangeError('ERR_SPARTAN_SHAPE', `${name} must be 16 or 32 (got ${String(b)})`);
  return b;
}

/**
 * A block-sparse matrix. rows and cols need not be multiples of the block size: the
 * last block row / column is partial and the padding of its blocks is ignored.
 * The arrays are used as they are (not copied); every product re-validates them.
 */
export class BsrMatrix {
  readonly rows: number;
  readonly cols: number;
  readonly blockSize: BlockSize;
  readonly dtype: BsrDtype;
  readonly rowPtr: Int32Array;
  readonly colIdx: Int32Array;
  readonly values: Float32Array | Uint16Array;

  constructor(parts: BsrParts) {
    if (parts === null || typeof parts !== 'object') throw typeError('ERR_SPARTAN_TYPE', 'BsrMatrix needs { rows, cols, blockSize, rowPtr, colIdx, values }');
    this.rows = positiveInt(parts.rows, 'rows');
    this.cols = positiveInt(parts.cols, 'cols');
    const b = (this.blockSize = blockSizeOf(parts.blockSize, 'blockSize'));
    const dtype = parts.dtype ?? 'float32';
    if (dtype !== 'float32' && dtype !== 'float16' && dtype !== 'bfloat16')
      throw typeError('ERR_SPARTAN_OPTION', `dtype must be 'float32', 'float16' or 'bfloat16' (got ${String(dtype)})`);
    this.dtype = dtype;
    if (!isInt32Array(parts.rowPtr)) throw typeError('ERR_SPARTAN_TYPE', 'rowPtr must be an Int32Array');
    if (!isInt32Array(parts.colIdx)) throw typeError('ERR_SPARTAN_TYPE', 'colIdx must be an Int32Array');
    if (dtype === 'float32' ? !isFloat32Array(parts.values) : !isUint16Array(parts.values))
      throw typeError('ERR_SPARTAN_TYPE', `values must be a ${dtype === 'float32' ? 'Float32Array' : 'Uint16Array'} for dtype ${dtype}`);
    this.rowPtr = parts.rowPtr;
    this.colIdx = parts.colIdx;
    this.values = parts.values;
    const nbr = this.blockRows, nbc = this.blockCols, nnz = this.colIdx.length;
    if (this.rowPtr.length !== nbr + 1) throw rangeError('ERR_SPARTAN_LENGTH', `rowPtr has length ${this.rowPtr.length}; expected blockRows + 1 = ${nbr + 1}`);
    if (this.values.length !== nnz * b * b)
      throw rangeError('ERR_SPARTAN_LENGTH', `values has length ${this.values.length}; expected colIdx.length * ${b * b} = ${nnz * b * b}`);
    if (this.rowPtr[0] !== 0) throw rangeError('ERR_SPARTAN_SHAPE', `rowPtr[0] is ${this.rowPtr[0]}; it must be 0`);
    for (let i = 1; i <= nbr; i++)
      if (this.rowPtr[i] < this.rowPtr[i - 1]) throw rangeError('ERR_SPARTAN_SHAPE', `rowPtr[${i}] is ${this.rowPtr[i]} < rowPtr[${i - 1}]; rowPtr must never decrease`);
    if (this.rowPtr[nbr] !== nnz) throw rangeError('ERR_SPARTAN_SHAPE', `rowPtr[${nbr}] is ${this.rowPtr[nbr]}; it must equal colIdx.length = ${nnz}`);
    for (let p = 0; p < nnz; p++)
      if (this.colIdx[p] < 0 || this.colIdx[p] >= nbc) throw rangeError('ERR_SPARTAN_SHAPE', `colIdx[${p}] is ${this.colIdx[p]}; block columns lie in [0, ${nbc})`);
  }

  get blockRows(): number {
    return Math.ceil(this.rows / this.blockSize);
  }
  get blockCols(): number {
    return Math.ceil(this.cols / this.blockSize);
  }
  get nnzBlocks(): number {
    return this.colIdx.length;
  }
  /** Stored blocks over all blocks of the (padded) block grid. */
  get density(): number {
    return this.nnzBlocks / (this.blockRows * this.blockCols);
  }

  /** The dense rows x cols matrix (float32; half values widened exactly). */
  toDense(): Float32Array {
    const { rows, cols, blockSize: b } = this;
    const out = new Float32Array(rows * cols);
    const v = this.values;
    const widen = this.dtype === 'float16' ? fromFloat16 : this.dtype === 'bfloat16' ? fromBfloat16 : (x: number) => x;
    for (let br = 0; br < this.blockRows; br++) {
      const mr = Math.min(b, rows - br * b);
      for (let p = this.rowPtr[br]; p < this.rowPtr[br + 1]; p++) {
        const c0 = this.colIdx[p] * b, kk = Math.min(b, cols - c0);
        for (let i = 0; i < mr; i++) {
          const o = (br * b + i) * cols + c0, s = p * b * b + i * b;
          for (let k = 0; k < kk; k++) out[o + k] += widen(v[s + k]);
        }
      }
    }
    return out;
  }
}
