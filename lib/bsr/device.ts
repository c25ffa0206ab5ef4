// A BSR matrix in CUDA memory and its products with CUDA tensors (tensor cores:
// TF32 for float32 matrices, fp16 / bf16 with float32 accumulation for half ones).
import { native, type DeviceBuffer } from '../native';
import { rangeError, typeError } from '../errors';
import { asSpartanError, empty, requireCuda, tensor, Tensor } from '../tensor';
import { BsrMatrix, type BlockSize } from './matrix';
import type { BsrDtype } from './half';
import { isFloat32Array } from '../util/typedArrays';

interface NativeBsrCuda {
  bsrMatmulCuda(
    linear: boolean, rows: number, cols: number, block: number, dtype: number, rowPtr: DeviceBuffer, colIdx: DeviceBuffer,
    values: DeviceBuffer, rowPerm: DeviceBuffer, x: unknown, n: number, bias: unknown, relu: boolean, out: unknown, async: boolean,
  ): undefined | Promise<undefined>;
}
const addon = native as unknown as NativeBsrCuda;
const DTYPE_CODE = { float32: 0, float16: 1, bfloat16: 2 } as const;

function upload(data: Int32Array | Uint16Array | Float32Array, kind: 'int32' | 'uint16' | 'float32'): DeviceBuffer {
  const buf = new native.DeviceBuffer(data.byteLength, kind);  // exact size: an empty matrix has 0 blocks
  if (data.byteLength === 0) return buf;
  try {
    native.cudaUpload(buf, data, false);
  } catch (e) {
    buf.free();
    throw e;
  }
  return buf;
}

/** Block rows by stored blocks, most first (ties in row order): the kernel's schedule. */
function rowOrder(rowPtr: Int32Array): Int32Array {
  const rows = Array.from({ length: rowPtr.length - 1 }, (_, i) => i);
  rows.sort((a, b) => rowPtr[b + 1] - rowPtr[b] - (rowPtr[a + 1] - rowPtr[a]) || a - b);
  return Int32Array.from(rows);
}

export class DeviceBsrMatrix {
  readonly device = 'cuda' as const;
  readonly rows: number;
  readonly cols: number;
  readonly blockSize: BlockSize;
  readonly dtype: BsrDtype;
  readonly nnzBlocks: number;
  readonly density: number;
  #buffers: { rowPtr: DeviceBuffer; colIdx: DeviceBuffer; values: DeviceBuffer; rowPerm: DeviceBuffer } | null;

  /** @internal Use bsr.toDevice(A). */
  constructor(a: BsrMatrix) {
    requireCuda();
    // A fresh BsrMatrix over copies re-validates the structure as it is now; the device
    // copies are never written from JS, so the kernel can trust them.
    const v = new BsrMatrix({ rows: a.rows, cols: a.cols, blockSize: a.blockSize, dtype: a.dtype, rowPtr: a.rowPtr.slice(), colIdx: a.colIdx.slice(), values: a.values.slice() });
    this.rows = v.rows;
    this.cols = v.cols;
    this.blockSize = v.blockSize;
    this.dtype = v.dtype;
    this.nnzBlocks = v.nnzBlocks;
    this.density = v.density;
    const made: DeviceBuffer[] = [];
    try {
      const b = (d: Int32Array | Uint16Array | Float32Array, k: 'int32' | 'uint16' | 'float32') => {
        const x = upload(d, k);
        made.push(x);
        return x;
      };
      this.#buffers = {
        rowPtr: b(v.rowPtr, 'int32'),
        colIdx: b(v.colIdx, 'int32'),
        values: b(v.values, v.dtype === 'float32' ? 'float32' : 'uint16'),
        rowPerm: b(rowOrder(v.rowPtr), 'int32'),
      };
    } catch (e) {
      made.forEach((x) => x.free());
      throw asSpartanError(e);
    }
  }

  get disposed(): boolean {
    return this.#buffers === null;
  }

  /** @internal */
  get buffers() {
    if (!this.#buffers) throw typeError('ERR_SPARTAN_DISPOSED', 'the device BSR matrix has been disposed');
    return this.#buffers;
  }

  dispose(): void {
    if (!this.#buffers) return;
    Object.values(this.#buffers).forEach((b) => b.free());
    this.#buffers = null;
  }
}

/** Copies a BSR matrix to the GPU (ERR_SPARTAN_CUDA where CUDA is not usable). */
export function toDevice(a: BsrMatrix): DeviceBsrMatrix {
  if (!(a instanceof BsrMatrix)) throw typeError('ERR_SPARTAN_TYPE', 'toDevice takes a BsrMatrix (see bsr.fromDense)');
  return new DeviceBsrMatrix(a);
}

export interface DeviceProductOptions {
  n?: number;
  batch?: number;
  bias?: Float32Array | Tensor;
  relu?: boolean;
  out?: Float32Array | Tensor;
}

/** Y = A X (or X A^T when linear) on the GPU. Tensor x gives a Tensor; a Float32Array x is copied in and out. */
export function deviceProduct(linear: boolean, A: DeviceBsrMatrix, x: unknown, o: DeviceProductOptions, async: boolean): Tensor | Float32Array | Promise<Tensor | Float32Array> {
  const bufs = A.buffers;
  if (o.relu !== undefined && typeof o.relu !== 'boolean') throw typeError('ERR_SPARTAN_OPTION', 'options.relu must be a boolean');
  const hostX = isFloat32Array(x);
  if (!hostX && !(x instanceof Tensor && x.device === 'cuda' && x.dtype === 'float32'))
    throw typeError('ERR_SPARTAN_TYPE', 'x must be a float32 CUDA Tensor or a Float32Array for a device BSR matrix');
  const size = hostX ? (x as Float32Array).length : (x as Tensor).size;
  const given = linear ? o.batch : o.n;
  const n = given ?? size / A.cols;
  if (!Number.isSafeInteger(n) || n < 1 || n * A.cols !== size)
    throw rangeError('ERR_SPARTAN_LENGTH', `x has ${size} entries, not ${given === undefined ? 'a positive multiple of' : `${given} x`} A.cols = ${A.cols}`);
  // out: a float32 CUDA Tensor when x is one, a Float32Array in copy mode; checked before any device work
  const outSize = A.rows * n;
  if (o.out !== undefined && o.out !== null) {
    if (hostX ? !isFloat32Array(o.out) : !(o.out instanceof Tensor && o.out.device === 'cuda' && o.out.dtype === 'float32'))
      throw typeError(hostX ? 'ERR_SPARTAN_TYPE' : 'ERR_SPARTAN_DEVICE', `out must be ${hostX ? 'a Float32Array' : 'a float32 CUDA Tensor'} like x`);
    const len = o.out instanceof Tensor ? o.out.size : o.out.length;
    if (len !== outSize) throw rangeError('ERR_SPARTAN_LENGTH', `out has ${len} entries; expected ${outSize}`);
  }
  const temps: Tensor[] = [];
  const temp = (t: Tensor) => (temps.push(t), t);
  const release = () => temps.forEach((t) => t.dispose());
  try {
    const xt = hostX ? temp(tensor(x as Float32Array, { device: 'cuda' })) : (x as Tensor);
    const bias = o.bias === undefined || o.bias === null ? null : o.bias instanceof Tensor ? o.bias : temp(tensor(o.bias, { device: 'cuda' }));
    let yt: Tensor;
    if (o.out instanceof Tensor) yt = o.out;
    else yt = hostX ? temp(empty([A.rows * n], { device: 'cuda' })) : empty(linear ? [n, A.rows] : [A.rows, n], { device: 'cuda' });
    const hostOut = hostX ? ((o.out as Float32Array | undefined) ?? new Float32Array(outSize)) : null;
    const r = addon.bsrMatmulCuda(linear, A.rows, A.cols, A.blockSize, DTYPE_CODE[A.dtype], bufs.rowPtr, bufs.colIdx, bufs.values, bufs.rowPerm,
      xt.handle, n, bias ? bias.handle : null, o.relu === true, yt.handle, async);
    const finish = () => {
      if (!hostOut) return yt;
      native.cudaDownload(yt.handle as DeviceBuffer, hostOut, false);
      return hostOut;
    };
    if (!async) {
      const y = finish();
      release();
      return y;
    }
    return (r as Promise<undefined>).then(finish).catch((e) => { throw asSpartanError(e); }).finally(release);
  } catch (e) {
    release();
    throw asSpartanError(e);
  }
}
