// Where a Sparsifier keeps its buffers: host typed arrays when its parameters are
// Float32Arrays, Tensors on the parameters' device when they are Tensors. The Sparsifier's
// logic is the same for both because every op takes either; what is not an op (copies,
// fills, counts, host snapshots for checkpoints) goes through here. The CUDA branches are
// small on purpose: the 'cpu' Tensor branch runs everything else, so the CPU tests cover it.
import { native, type DeviceBuffer } from '../native';
import { empty, Tensor, type Device } from '../tensor';

export type F32 = Float32Array | Tensor;
export type U8 = Uint8Array | Tensor;

/** What a native call takes for a buffer: the host array, or the device buffer (typed as an array for the binding). */
export function handle<T extends Float32Array | Uint8Array>(x: T | Tensor): T {
  return (x instanceof Tensor ? x.handle : x) as T;
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
    if (!this.tensors) return new Float32Array(n).fill(fill);
    const t = empty(shape ?? [n], { device: this.where as Device, dtype: 'float32' });
    this.write(t, new Float32Array(n).fill(fill));
    return t;
  }

  u8(n: number, fill = 0): U8 {
    if (!this.tensors) return new Uint8Array(n).fill(fill);
    const t = empty([n], { device: this.where as Device, dtype: 'uint8' });
    this.write(t, new Uint8Array(n).fill(fill));
    return t;
  }

  /** dst = src (same length and type). */
  copy(dst: F32 | U8, src: F32 | U8): void {
    if (dst instanceof Tensor && dst.device === 'cuda') native.cudaCopy(dst.handle as DeviceBuffer, handle(src) as unknown as DeviceBuffer);
    else (handle(dst) as Float32Array).set(handle(src) as Float32Array);
  }

  /** A new buffer holding a copy of x, where x lives. */
  clone(x: F32): F32 {
    if (!(x instanceof Tensor)) return x.slice();
    const t = this.f32(x.size, 0, x.shape);
    this.copy(t, x);
    return t;
  }

  /** A new buffer holding a copy of host values. */
  fromHost(values: Float32Array): F32 {
    if (!this.tensors) return values.slice();
    const t = empty([values.length], { device: this.where as Device, dtype: 'float32' });
    this.write(t, values);
    return t;
  }

  /** Host values of x to read: the array itself on the host (do not keep it), a copy from a device. */
  view<T extends Float32Array | Uint8Array>(x: T | Tensor): T {
    return (x instanceof Tensor && x.device === 'cuda' ? x.toArray() : handle(x)) as T;
  }

  /** A host copy of x (checkpoints). */
  snapshot<T extends Float32Array | Uint8Array>(x: T | Tensor): T {
    return (x instanceof Tensor ? x.toArray() : x.slice()) as T;
  }

  /** x = values (a host array of x's length). */
  write(x: F32 | U8, values: Float32Array | Uint8Array): void {
    if (x instanceof Tensor && x.device === 'cuda') native.cudaUpload(x.handle as DeviceBuffer, values, false);
    else (handle(x) as Float32Array).set(values);
  }

  /** Changes x on the host: in place there, downloaded and uploaded again from a device (for rare steps: freezing, finalizing). */
  edit<T extends Float32Array | Uint8Array>(x: T | Tensor, change: (values: T) => void): void {
    const values = this.view(x);
    change(values);
    if (x instanceof Tensor && x.device === 'cuda') this.write(x, values);
  }

  /** Entries of a 0/1 mask that are 1 (on a device: counted there, only the count comes back). */
  countOnes(x: U8): number {
    if (x instanceof Tensor && x.device === 'cuda') {
      let z = this.zeros.get(x.size);
      if (!z) this.zeros.set(x.size, (z = this.u8(x.size) as Tensor));
      return native.countChanges(x.handle as Uint8Array, z.handle as Uint8Array);
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
