// Where an op runs, and its operands in the form the native call takes.
//   host:   plain typed arrays, CPU kernels (the original path, untouched);
//   tensor: Tensor operands, all on one device; outputs are Tensors there;
//   copy:   plain arrays with { device: 'cuda' }: copied in, computed on the
//           device, copied out into plain arrays.
import { native, type DeviceBuffer } from '../native';
import { typeError, rangeError } from '../errors';
import { asSpartanError, checkDevice, empty, requireCuda, tensor, Tensor, type Device, type DType, type HostArray } from '../tensor';
import { isDetached, isFloat32Array, isUint8Array } from '../util/typedArrays';

type Mode = 'host' | 'tensor' | 'copy';
type Handle = HostArray | DeviceBuffer;

export interface OutSlot {
  handle: unknown;
  /** The op's result for this output (after the native call): the host array or the Tensor. */
  result<R = unknown>(): R;
}

export class Placement {
  readonly mode: Mode;
  readonly device: Device;
  private readonly temps: Tensor[] = [];
  private readonly downloads: { from: Tensor; to: HostArray }[] = [];

  private constructor(mode: Mode, device: Device) {
    this.mode = mode;
    this.device = device;
  }

  /** Checks that every Tensor operand lives on one device (and matches `device` when given). */
  static resolve(operands: readonly unknown[], device: unknown): Placement {
    const wanted = device === undefined ? undefined : checkDevice(device, 'options.device');
    let seen: Device | undefined;
    let hostArrays = false;
    operands.forEach((x) => {
      if (x instanceof Tensor) {
        if (seen !== undefined && x.device !== seen)
          throw typeError('ERR_SPARTAN_DEVICE', `tensors on '${seen}' and '${x.device}' in one call; move them to one device first`);
        seen = x.device;
      } else if (ArrayBuffer.isView(x)) hostArrays = true;
    });
    if (seen !== undefined) {
      if (hostArrays) throw typeError('ERR_SPARTAN_DEVICE', `a call mixes ${seen} Tensors with plain arrays; pass Tensors (or plain arrays) only`);
      if (wanted !== undefined && wanted !== seen) throw typeError('ERR_SPARTAN_DEVICE', `options.device is '${wanted}' but the tensors live on '${seen}'`);
      return new Placement('tensor', seen);
    }
    if (wanted === 'cuda') {
      requireCuda();
      return new Placement('copy', 'cuda');
    }
    return new Placement('host', 'cpu');
  }

  get tensors(): boolean {
    return this.mode === 'tensor';
  }

  /** An input operand as the native call takes it (anything else passes through for the native type error). */
  input(x: unknown): unknown {
    if (x instanceof Tensor) return x.handle;
    if (this.mode === 'copy' && (isFloat32Array(x) || isUint8Array(x))) {
      const t = tensor(x, { device: 'cuda' });
      this.temps.push(t);
      return t.handle;
    }
    return x;
  }

  /** Element count of an operand (0 when it is neither a Tensor nor a typed array). */
  static sizeOf(x: unknown): number {
    if (x instanceof Tensor) return x.size;
    return ArrayBuffer.isView(x) && !(x instanceof DataView) ? (x as Float32Array).length : 0;
  }

  /**
   * ERR_SPARTAN_LENGTH when input `x` does not hold the n elements the sizes given as numbers
   * call for: checked before output() allocates n elements (huge sizes with a short input
   * otherwise fail there with V8's uncoded RangeError, or allocate gigabytes for nothing).
   * An operand that is not of a type in `dtypes`, detached or disposed is left to the native
   * call, which names what is wrong with it.
   */
  static expectSize(x: unknown, n: number, name: string, dtypes: readonly DType[]): void {
    let size: number;
    if (x instanceof Tensor) {
      if (x.disposed || !dtypes.includes(x.dtype)) return;
      size = x.size;
    } else if ((isFloat32Array(x) && dtypes.includes('float32')) || (isUint8Array(x) && dtypes.includes('uint8'))) {
      if (isDetached(x)) return;
      size = x.length;
    } else return;
    if (size !== n) throw rangeError('ERR_SPARTAN_LENGTH', `${name} has length ${size}; expected ${n}`);
  }

  /** An output of n elements: the caller's `out` or a new array/tensor where the op runs. */
  output(out: unknown, n: number, dtype: DType, shape?: readonly number[]): OutSlot {
    const s = shape ?? [n];
    if (this.mode === 'host') {
      const arr = out === undefined || out === null ? (dtype === 'float32' ? new Float32Array(n) : new Uint8Array(n)) : out;
      return { handle: arr, result: <R>() => arr as R };
    }
    if (this.mode === 'tensor') {
      let t: Tensor;
      if (out === undefined || out === null) t = empty(s, { device: this.device, dtype });
      else if (out instanceof Tensor) {
        if (out.device !== this.device) throw typeError('ERR_SPARTAN_DEVICE', `out lives on '${out.device}'; the op runs on '${this.device}'`);
        if (out.dtype !== dtype) throw typeError('ERR_SPARTAN_TYPE', `out must be a ${dtype} tensor (got ${out.dtype})`);
        if (out.size !== n) throw rangeError('ERR_SPARTAN_LENGTH', `out has ${out.size} elements; expected ${n}`);
        t = out;
      } else throw typeError('ERR_SPARTAN_TYPE', 'out must be a Tensor when the inputs are Tensors');
      return { handle: t.handle, result: <R>() => t as R };
    }
    // copy mode: compute into a device temporary, then copy into the host array.
    const arr = (out === undefined || out === null ? (dtype === 'float32' ? new Float32Array(n) : new Uint8Array(n)) : out) as HostArray;
    const wantType = dtype === 'float32' ? Float32Array : Uint8Array;
    if (!(arr instanceof wantType)) throw typeError('ERR_SPARTAN_TYPE', `out must be a ${wantType.name}`);
    if (arr.length !== n) throw rangeError('ERR_SPARTAN_LENGTH', `out has length ${arr.length}; expected ${n}`);  // before any device work
    const t = empty(s, { device: 'cuda', dtype });
    this.temps.push(t);
    this.downloads.push({ from: t, to: arr });
    return { handle: t.handle, result: <R>() => arr as R };
  }

  /** Runs the native call; copies results back and frees temporaries (also on error). */
  run<T>(call: () => T): T {
    try {
      const r = call();
      for (const d of this.downloads) native.cudaDownload(d.from.handle as DeviceBuffer, d.to, false);
      return r;
    } catch (e) {
      throw asSpartanError(e);
    } finally {
      this.release();
    }
  }

  async runAsync<T>(call: () => T | Promise<T>): Promise<T> {
    try {
      const r = await call();
      for (const d of this.downloads) await native.cudaDownload(d.from.handle as DeviceBuffer, d.to, true);
      return r;
    } catch (e) {
      throw asSpartanError(e);
    } finally {
      this.release();
    }
  }

  private release(): void {
    for (const t of this.temps) t.dispose();
    this.temps.length = 0;
  }
}

export type { Handle };
