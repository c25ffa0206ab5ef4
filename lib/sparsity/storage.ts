// Where a Sparsifier keeps its buffers: host typed arrays when its parameters are
// Float32Arrays, Tensors on the parameters' device when they are Tensors. The Sparsifier's
// logic is the same for both because every op takes either; what is not an op (copies,
// fills, counts, host snapshots for checkpoints) goes through here. The CUDA branches are
// small on purpose: the 'cpu' Tensor branch runs everything else, so the CPU tests cover it.
import { native, type DeviceBuffer } from '../native';
import { asSpartanError, empty, handle, Tensor, type Device, type DType } from '../tensor';

export type F32 = Float32Array | Tensor;
export type U8 = Uint8Array | Tensor;

const onCuda = (x: unknown): x is Tensor => x instanceof Tensor && x.device === 'cuda';

/** Runs a CUDA runtime call; its failures become SpartanErrors (ERR_SPARTAN_CUDA) like every op's. */
function cudaCall<T>(call: () => T): T {
  try {
    return call();
  } catch (e) {
    throw asSpartanError(e);
  }
}

export class Storage {
  /** 'host': plain typed arrays; otherwise Tensors on this device. */
  readonly where: 'host' | Device;
  private readonly zeros = new Map<number, Tensor>(); // uint8 zeros by length, for device counts

  constructor(where: 'host' | Device) {
    this.where = where;
  }

  get tensors(): boolean {
    return this.where !== 'host';
  }

  f32(n: number, fill = 0, shape?: readonly number[]): F32 {
    return this.tensors ? this.tensor('float32', shape ?? [n], (t) => this.fill(t, fill)) : new Float32Array(n).fill(fill);
  }

  u8(n: number, fill = 0): U8 {
    return this.tensors ? this.tensor('uint8', [n], (t) => this.fill(t, fill)) : new Uint8Array(n).fill(fill);
  }

  /** A new tensor where this storage lives, set by `init` (and freed again if that fails). */
  private tensor(dtype: DType, shape: readonly number[], init: (t: Tensor) => void): Tensor {
    const t = empty(shape, { device: this.where as Device, dtype });
    try {
      init(t);
    } catch (e) {
      t.dispose();
      throw e;
    }
    return t;
  }

  /** Every entry of x = v (on a device: one upload, nothing read back). */
  fill(x: F32 | U8, v: number): void {
    if (!onCuda(x)) (handle(x) as Float32Array).fill(v);
    else this.write(x, x.dtype === 'uint8' ? new Uint8Array(x.size).fill(v) : new Float32Array(x.size).fill(v));
  }

  /** dst = src (same length and type, both where this storage lives). */
  copy(dst: F32 | U8, src: F32 | U8): void {
    if (onCuda(dst) && onCuda(src)) cudaCall(() => native.cudaCopy(dst.handle as DeviceBuffer, src.handle as DeviceBuffer));
    else if (!onCuda(dst) && !onCuda(src)) (handle(dst) as Float32Array).set(handle(src) as Float32Array);
    else throw new Error('internal: Storage.copy between host and device'); // every caller passes buffers of one storage
  }

  /** A new buffer holding a copy of x, where x lives. */
  clone(x: F32): F32 {
    return x instanceof Tensor ? this.tensor('float32', x.shape, (t) => this.copy(t, x)) : x.slice();
  }

  /** A new buffer holding a copy of host values. */
  fromHost(values: Float32Array): F32 {
    return this.tensors ? this.tensor('float32', [values.length], (t) => this.write(t, values)) : values.slice();
  }

  /** Host values of x to read: the array itself on the host (do not keep it), a copy from a device. */
  view<T extends Float32Array | Uint8Array>(x: T | Tensor): T {
    return (onCuda(x) ? x.toArray() : handle(x)) as T;
  }

  /** A host copy of x (checkpoints). */
  snapshot<T extends Float32Array | Uint8Array>(x: T | Tensor): T {
    return (x instanceof Tensor ? x.toArray() : x.slice()) as T;
  }

  /** x = values (a host array of x's length). */
  write(x: F32 | U8, values: Float32Array | Uint8Array): void {
    if (onCuda(x)) cudaCall(() => native.cudaUpload(x.handle as DeviceBuffer, values, false));
    else (handle(x) as Float32Array).set(values);
  }

  /** Changes x on the host: in place there, downloaded and uploaded again from a device (rare steps only). */
  edit<T extends Float32Array | Uint8Array>(x: T | Tensor, change: (values: T) => void): void {
    const values = this.view(x);
    change(values);
    if (onCuda(x)) this.write(x, values);
  }

  /** Entries of a 0/1 mask that are 1 (on a device: counted there, only the count comes back). */
  countOnes(x: U8): number {
    if (onCuda(x)) {
      let z = this.zeros.get(x.size);
      if (!z) this.zeros.set(x.size, (z = this.u8(x.size) as Tensor));
      const zeros = z;
      return cudaCall(() => native.countChanges(x.handle as Uint8Array, zeros.handle as Uint8Array));
    }
    const h = handle(x as Uint8Array);
    let n = 0;
    for (let i = 0; i < h.length; i++) n += h[i];
    return n;
  }

  /** Frees the device buffers this storage made for itself. */
  dispose(): void {
    for (const z of this.zeros.values()) z.dispose();
    this.zeros.clear();
  }
}
