// Y = A * X and Y = X * A^T with a BsrMatrix A (native, multi-threaded).
import { native } from '../native';
import { rangeError, typeError } from '../errors';
import { optionKeys, optionsObject, positiveInt } from '../options';
import { BsrMatrix } from './matrix';
import { Tensor } from '../tensor';
import { DeviceBsrMatrix, deviceProduct } from './device';
import { isDetached, isFloat32Array, isUint16Array } from '../util/typedArrays';

interface NativeBsr {
  bsrMatmul(
    linear: boolean, rows: number, cols: number, block: number, rowPtr: Int32Array, colIdx: Int32Array,
    values: Float32Array | Uint16Array, dtype: number, x: unknown, n: number, bias: unknown, relu: boolean, out: unknown, async: boolean,
  ): undefined | Promise<undefined>;
}
// The addon's BSR entry point (declared here so lib/native.ts stays as it is).
const addon = native as unknown as NativeBsr;
const DTYPE_CODE = { float32: 0, float16: 1, bfloat16: 2 } as const;

export interface BsrMatmulOptions {
  /** Columns of X and Y. Default: x.length / A.cols. */
  n?: number;
  /** One value per row of A (per output feature), added before the ReLU. */
  bias?: Float32Array | Tensor;
  /** Apply max(·, 0) to the result. */
  relu?: boolean;
  /** Receives Y (exact length, must not overlap an input). A CUDA Tensor for a device matrix. */
  out?: Float32Array | Tensor;
}

export interface BsrLinearOptions {
  /** Rows of X and Y. Default: x.length / A.cols. */
  batch?: number;
  /** One value per output feature (per row of A). */
  bias?: Float32Array | Tensor;
  relu?: boolean;
  out?: Float32Array | Tensor;
}

function count(given: unknown, x: unknown, A: BsrMatrix, name: string): number {
  const cols = A.cols;
  if (given !== undefined) {
    const n = positiveInt(given, `options.${name}`);
    // x against n before the A.rows x n output is allocated (a huge n with a short x would fail
    // there uncoded); another type, or a detached x, is the native call's to name
    const typed = isFloat32Array(x) || (A.dtype !== 'float32' && isUint16Array(x));
    if (typed && !isDetached(x) && x.length !== n * cols) throw rangeError('ERR_SPARTAN_LENGTH', `x has length ${x.length}; expected ${n * cols}`);
    return n;
  }
  if (!isFloat32Array(x) && !isUint16Array(x)) throw typeError('ERR_SPARTAN_TYPE', 'x must be a Float32Array (or a Uint16Array for a half-precision matrix)');
  const m = x.length / cols;
  if (!Number.isInteger(m) || m < 1)
    throw rangeError('ERR_SPARTAN_LENGTH', `x has length ${x.length}, not a positive multiple of A.cols = ${cols}`);
  return m;
}

const MATMUL_OPTS = optionKeys<BsrMatmulOptions>({ n: true, bias: true, relu: true, out: true });
const LINEAR_OPTS = optionKeys<BsrLinearOptions>({ batch: true, bias: true, relu: true, out: true });

function call(linear: boolean, A: BsrMatrix | DeviceBsrMatrix, x: Float32Array | Uint16Array | Tensor, opts: BsrMatmulOptions & BsrLinearOptions, async: boolean) {
  const o = optionsObject(opts, linear ? 'bsr.linear options' : 'bsr.matmul options', linear ? LINEAR_OPTS : MATMUL_OPTS);
  if (A instanceof DeviceBsrMatrix) return deviceProduct(linear, A, x, o, async);
  if (!(A instanceof BsrMatrix)) throw typeError('ERR_SPARTAN_TYPE', 'A must be a BsrMatrix (see bsr.fromDense)');
  if (x instanceof Tensor || o.out instanceof Tensor || o.bias instanceof Tensor)
    throw typeError('ERR_SPARTAN_DEVICE', 'a host BsrMatrix takes host arrays; use bsr.toDevice(A) for CUDA tensors');
  if (o.relu !== undefined && typeof o.relu !== 'boolean') throw typeError('ERR_SPARTAN_OPTION', 'options.relu must be a boolean');
  const n = count(linear ? o.batch : o.n, x, A, linear ? 'batch' : 'n');
  const out = o.out ?? new Float32Array(A.rows * n);
  const p = addon.bsrMatmul(linear, A.rows, A.cols, A.blockSize, A.rowPtr, A.colIdx, A.values, DTYPE_CODE[A.dtype], x, n, o.bias ?? null, o.relu === true, out, async);
  return async ? (p as Promise<undefined>).then(() => out) : out;
}

/** Host or device: a Tensor result for a device matrix with a Tensor x, else a Float32Array. */
type Result<A, X> = A extends DeviceBsrMatrix ? (X extends Tensor ? Tensor : Float32Array) : Float32Array;

/**
 * Y = A * X: X is A.cols x n row-major, Y is A.rows x n. X is a Float32Array, or, for a
 * float16 / bfloat16 matrix, a Uint16Array of the same type. Accumulates in float32.
 * With a device matrix (bsr.toDevice), X is a float32 CUDA Tensor (Y is one too) or a
 * Float32Array (copied in and out); half matrices convert X on the device.
 */
export function matmul<A extends BsrMatrix | DeviceBsrMatrix, X extends Float32Array | Uint16Array | Tensor>(A: A, x: X, opts?: BsrMatmulOptions): Result<A, X> {
  return call(false, A, x, opts ?? {}, false) as Result<A, X>;
}

export async function matmulAsync<A extends BsrMatrix | DeviceBsrMatrix, X extends Float32Array | Uint16Array | Tensor>(A: A, x: X, opts?: BsrMatmulOptions): Promise<Result<A, X>> {
  return call(false, A, x, opts ?? {}, true) as Promise<Result<A, X>>;
}

/**
 * Y = X * A^T, a linear layer with weight A (out x in): X is batch x A.cols, Y is
 * batch x A.rows. Same dtypes and devices as `matmul`.
 */
export function linear<A extends BsrMatrix | DeviceBsrMatrix, X extends Float32Array | Uint16Array | Tensor>(x: X, A: A, opts?: BsrLinearOptions): Result<A, X> {
  return call(true, A, x, opts ?? {}, false) as Result<A, X>;
}

export async function linearAsync<A extends BsrMatrix | DeviceBsrMatrix, X extends Float32Array | Uint16Array | Tensor>(x: X, A: A, opts?: BsrLinearOptions): Promise<Result<A, X>> {
  return call(true, A, x, opts ?? {}, true) as Promise<Result<A, X>>;
}
