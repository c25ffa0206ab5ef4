// Dense weights (and an optional mask) to a BsrMatrix.
import { rangeError, typeError } from '../errors';
import { optionKeys, optionsObject, positiveInt } from '../options';
import { toBfloat16, toFloat16, type BsrDtype } from './half';
import { BsrMatrix, blockSizeOf } from './matrix';
import { isFloat32Array, isUint8Array } from '../util/typedArrays';

export interface FromDenseOptions {
  /**
   * Which blocks to store. Per block ((blockRows x blockCols), row-major) or per entry
   * (rows x cols), as a Uint8Array or Float32Array: an entry is kept when it is non-zero
   * (the mask selects, it does not scale). A block is stored when any of its entries is
   * kept; entries a per-entry mask drops are stored as 0. Default: the blocks holding a
   * non-zero weight.
   */
  mask?: Uint8Array | Float32Array;
  /** Storage type of the values (default 'float32'); half types round to nearest even. */
  dtype?: BsrDtype;
}


/**
 * Builds the BSR form of a row-major rows x cols Float32Array with b x b blocks
 * (block = [b, b], b = 16 or 32). rows and cols need not be multiples of b.
 */
const FROM_DENSE_OPTS = optionKeys<FromDenseOptions>({ mask: true, dtype: true });

export function fromDense(weights: Float32Array, rows: number, cols: number, block: readonly [number, number], opts?: FromDenseOptions): BsrMatrix {
  const o = optionsObject(opts, 'bsr.fromDense options', FROM_DENSE_OPTS);
  if (!isFloat32Array(weights)) throw typeError('ERR_SPARTAN_TYPE', 'weights must be a Float32Array');
  const R = positiveInt(rows, 'rows'), C = positiveInt(cols, 'cols');
  if (!Array.isArray(block) || block.length !== 2) throw typeError('ERR_SPARTAN_TYPE', 'block must be a pair [b, b]');
  const b = blockSizeOf(block[0], 'block[0]');
  if (block[1] !== b) throw rangeError('ERR_SPARTAN_SHAPE', `BSR blocks are square: block must be [${b}, ${b}] (got [${block[0]}, ${block[1]}])`);
  if (weights.length !== R * C) throw rangeError('ERR_SPARTAN_LENGTH', `weights has length ${weights.length}; expected rows * cols = ${R * C}`);
  const dtype = o.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'float16' && dtype !== 'bfloat16')
    throw typeError('ERR_SPARTAN_OPTION', `options.dtype must be 'float32', 'float16' or 'bfloat16' (got ${String(dtype)})`);
  const nbr = Math.ceil(R / b), nbc = Math.ceil(C / b);

  let perBlock = false;
  const mask = o.mask;
  if (mask !== undefined) {
    if (!isUint8Array(mask) && !isFloat32Array(mask)) throw typeError('ERR_SPARTAN_TYPE', 'options.mask must be a Uint8Array or a Float32Array');
    if (mask.length === nbr * nbc && mask.length !== R * C) perBlock = true;
    else if (mask.length !== R * C)
      throw rangeError('ERR_SPARTAN_LENGTH', `options.mask has length ${mask.length}; expected ${nbr * nbc} (one per block) or ${R * C} (one per entry)`);
    if (isFloat32Array(mask))
      for (let i = 0; i < mask.length; i++) if (Number.isNaN(mask[i])) throw rangeError('ERR_SPARTAN_NON_FINITE', `options.mask[${i}] is NaN`);
  }
  for (let i = 0; i < weights.length; i++)
    if (!Number.isFinite(weights[i])) throw rangeError('ERR_SPARTAN_NON_FINITE', `weights[${i}] is ${weights[i]}; every weight must be finite`);

  // Pass 1: which blocks are stored.
  const keep = new Uint8Array(nbr * nbc);
  if (mask !== undefined && perBlock) {
    for (let i = 0; i < keep.length; i++) keep[i] = mask[i] !== 0 ? 1 : 0;
  } else {
    const src = mask ?? weights;
    for (let r = 0; r < R; r++) {
      const kb = Math.floor(r / b) * nbc, row = r * C;
      for (let c = 0; c < C; c++) if (src[row + c] !== 0) keep[kb + Math.floor(c / b)] = 1;
    }
  }
  const rowPtr = new Int32Array(nbr + 1);
  let nnz = 0;
  for (let br = 0; br < nbr; br++) {
    for (let bc = 0; bc < nbc; bc++) nnz += keep[br * nbc + bc];
    rowPtr[br + 1] = nnz;
  }
  if (nnz * b * b > 2 ** 32) throw rangeError('ERR_SPARTAN_SHAPE', 'too many stored blocks for one matrix');
  const colIdx = new Int32Array(nnz);
  const values = dtype === 'float32' ? new Float32Array(nnz * b * b) : new Uint16Array(nnz * b * b);
  const round = dtype === 'float16' ? toFloat16 : dtype === 'bfloat16' ? toBfloat16 : null;

  // Pass 2: copy (and round) the stored blocks, padding with zeros.
  let p = 0;
  for (let br = 0; br < nbr; br++) {
    const mr = Math.min(b, R - br * b);
    for (let bc = 0; bc < nbc; bc++) {
      if (!keep[br * nbc + bc]) continue;
      colIdx[p] = bc;
      const kk = Math.min(b, C - bc * b);
      for (let i = 0; i < mr; i++) {
        const src = (br * b + i) * C + bc * b, dst = p * b * b + i * b;
        for (let k = 0; k < kk; k++) {
          let w = weights[src + k];
          if (mask !== undefined && !perBlock && mask[src + k] === 0) w = 0;
          if (round) {
            const h = round(w);
            if (dtype === 'float16' && (h & 0x7c00) === 0x7c00)
              throw rangeError('ERR_SPARTAN_NON_FINITE', `weights[${src + k}] = ${w} overflows float16 (largest finite: 65504)`);
            values[dst + k] = h;
          } else values[dst + k] = w;
        }
      }
      p++;
    }
  }
  return new BsrMatrix({ rows: R, cols: C, blockSize: b, rowPtr, colIdx, values, dtype });
}
