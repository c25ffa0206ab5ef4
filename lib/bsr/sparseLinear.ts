// SparseLinear: an inference-time linear layer y = relu?(x W^T + b) with W in BSR form.
import { rangeError, typeError } from '../errors';
import { optionKeys, optionsObject } from '../options';
import type { BsrDtype } from './half';
import { fromDense } from './fromDense';
import { linear, linearAsync } from './matmul';
import { BsrMatrix, blockSizeOf, type BlockSize } from './matrix';
import { isFloat32Array } from '../util/typedArrays';

export interface SparseLinearOptions {
  /** outFeatures values. */
  bias?: Float32Array;
  /** Apply max(·, 0) after the bias. */
  relu?: boolean;
}

export interface SparseLinearFromDenseOptions extends SparseLinearOptions {
  /** Block size b (b x b blocks), 16 (default) or 32. */
  block?: BlockSize;
  /** Per-block or per-entry mask (see bsr.fromDense); default: blocks holding a non-zero weight. */
  mask?: Uint8Array | Float32Array;
  dtype?: BsrDtype;
}

const LINEAR_OPTS = optionKeys<SparseLinearOptions>({ bias: true, relu: true });
const FROM_DENSE_OPTS = optionKeys<SparseLinearFromDenseOptions>({ bias: true, relu: true, block: true, mask: true, dtype: true });
const OUT_OPTS = optionKeys<{ out?: Float32Array }>({ out: true });

export class SparseLinear {
  readonly weight: BsrMatrix;
  readonly bias: Float32Array | undefined;
  readonly relu: boolean;

  constructor(weight: BsrMatrix, opts?: SparseLinearOptions) {
    if (!(weight instanceof BsrMatrix)) throw typeError('ERR_SPARTAN_TYPE', 'weight must be a BsrMatrix');
    const o = optionsObject(opts, 'SparseLinear options', LINEAR_OPTS);
    if (o.bias !== undefined) {
      if (!isFloat32Array(o.bias)) throw typeError('ERR_SPARTAN_TYPE', 'options.bias must be a Float32Array');
      if (o.bias.length !== weight.rows) throw rangeError('ERR_SPARTAN_LENGTH', `options.bias has length ${o.bias.length}; expected outFeatures = ${weight.rows}`);
    }
    if (o.relu !== undefined && typeof o.relu !== 'boolean') throw typeError('ERR_SPARTAN_OPTION', 'options.relu must be a boolean');
    this.weight = weight;
    this.bias = o.bias;
    this.relu = o.relu === true;
  }

  /** From a dense row-major weight [outFeatures, inFeatures] (PyTorch's nn.Linear layout). */
  static fromDense(weight: Float32Array, shape: readonly [number, number], opts?: SparseLinearFromDenseOptions): SparseLinear {
    const o = optionsObject(opts, 'SparseLinear.fromDense options', FROM_DENSE_OPTS);
    if (!Array.isArray(shape) || shape.length !== 2) throw typeError('ERR_SPARTAN_TYPE', 'shape must be [outFeatures, inFeatures]');
    const b = blockSizeOf(o.block ?? 16, 'options.block');
    const A = fromDense(weight, shape[0], shape[1], [b, b], { mask: o.mask, dtype: o.dtype });
    return new SparseLinear(A, { bias: o.bias, relu: o.relu });
  }

  get inFeatures(): number {
    return this.weight.cols;
  }
  get outFeatures(): number {
    return this.weight.rows;
  }

  /** x: batch x inFeatures (row-major); returns batch x outFeatures. batch defaults to x.length / inFeatures. */
  forward(x: Float32Array | Uint16Array, batch?: number, opts?: { out?: Float32Array }): Float32Array {
    return linear(x, this.weight, { batch, bias: this.bias, relu: this.relu, out: optionsObject(opts, 'forward options', OUT_OPTS).out });
  }

  async forwardAsync(x: Float32Array | Uint16Array, batch?: number, opts?: { out?: Float32Array }): Promise<Float32Array> {
    return linearAsync(x, this.weight, { batch, bias: this.bias, relu: this.relu, out: optionsObject(opts, 'forwardAsync options', OUT_OPTS).out });
  }
}
