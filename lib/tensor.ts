// Tensors: float32 or uint8 data with a shape, in host memory ('cpu') or in CUDA
// device memory ('cuda'). Every op accepts Tensors and returns its outputs where its
// inputs live. A CUDA tensor's memory is freed by dispose() or, if forgotten, when
// the garbage collector finalizes its handle.
import { native, type DeviceBuffer } from './native';
import { rangeError, typeError, SpartanError } from './errors';
import { isDetached, isFloat32Array, isUint8Array } from './util/typedArrays';
import { optionKeys, optionsObject } from './options';

export type Device = 'cpu' | 'cuda';
export type DType = 'float32' | 'uint8';
export type HostArray = Float32Array | Uint8Array;

export interface TensorOptions {
  device?: Device;
  /** Default [data.length]. The product must equal the element count. */
  shape?: readonly number[];
}

type EmptyOptions = { device?: Device; dtype?: DType };
const TENSOR_OPTS = optionKeys<TensorOptions>({ device: true, shape: true });
const EMPTY_OPTS = optionKeys<EmptyOptions>({ device: true, dtype: true });

export function checkDevice(device: unknown, name = 'device'): Device {
  if (device === undefined) return 'cpu';
  if (device !== 'cpu' && device !== 'cuda') throw typeError('ERR_SPARTAN_OPTION', `${name} must be 'cpu' or 'cuda' (got ${String(device)})`);
  return device;
}

// Whether CUDA is usable cannot change within a process (the addon caches the driver's
// answer too): asked once, not on every allocation or op.
let cuda: { usable: boolean; reason?: string } | undefined;
function cudaStatus() {
  if (!cuda) {
    const b = native.backend();
    cuda = { usable: b.cuda, reason: b.reason };
  }
  return cuda;
}

/** Throws ERR_SPARTAN_CUDA (a SpartanError) with the reason when CUDA is unusable here. */
export function requireCuda(): void {
  const c = cudaStatus();
  if (!c.usable) throw new SpartanError('ERR_SPARTAN_CUDA', `CUDA is not available: ${c.reason ?? 'unknown reason'}`);
}

/** Native runtime faults (plain Errors with an ERR_SPARTAN_CUDA code) as SpartanError. */
export function asSpartanError(e: unknown): unknown {
  const code = (e as { code?: unknown })?.code;
  if (e instanceof Error && !(e instanceof SpartanError) && !(e instanceof TypeError) && !(e instanceof RangeError) &&
      (code === 'ERR_SPARTAN_CUDA' || code === 'ERR_SPARTAN_INTERNAL' || code === 'ERR_SPARTAN_OUT_OF_MEMORY'))
    return new SpartanError(code, e.message);
  return e;
}

function shapeOf(shape: unknown, count: number | undefined): number[] {
  if (shape === undefined) {
    if (count === undefined) throw typeError('ERR_SPARTAN_SHAPE', 'a shape is required');
    return [count];
  }
  if (typeof shape === 'number') shape = [shape];
  if (!Array.isArray(shape)) throw typeError('ERR_SPARTAN_TYPE', 'shape must be an array of sizes');
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isSafeInteger(d) || d < 0) throw rangeError('ERR_SPARTAN_SHAPE', `shape entries must be integers >= 0 (got ${String(d)})`);
    n *= d;
  }
  if (count !== undefined && n !== count) throw rangeError('ERR_SPARTAN_SHAPE', `shape [${shape.join(', ')}] holds ${n} elements; the data has ${count}`);
  return [...shape];
}

export class Tensor {
  readonly device: Device;
  readonly dtype: DType;
  readonly shape: readonly number[];
  readonly size: number;
  #host: HostArray | null;
  #device: DeviceBuffer | null;

  /** `instanceof Tensor` holds only for objects this class constructed: an object made with
   *  Object.create(Tensor.prototype), or a Proxy of a tensor, lacks the private fields every
   *  accessor reads, and would fail later with an engine TypeError instead of ERR_SPARTAN_TYPE. */
  static [Symbol.hasInstance](x: unknown): boolean {
    return typeof x === 'object' && x !== null && #host in x;
  }

  /** @internal Use tensor() or empty(). */
  constructor(device: Device, dtype: DType, shape: readonly number[], host: HostArray | null, buffer: DeviceBuffer | null) {
    this.device = device;
    this.dtype = dtype;
    this.shape = Object.freeze([...shape]);
    this.size = shape.reduce((a, b) => a * b, 1);
    this.#host = host;
    this.#device = buffer;
  }

  get disposed(): boolean {
    return this.device === 'cpu' ? this.#host === null : this.#device === null || this.#device.freed;
  }

  /** @internal What the native ops take: the host array or the device buffer. */
  get handle(): HostArray | DeviceBuffer {
    if (this.disposed) throw typeError('ERR_SPARTAN_DISPOSED', 'the tensor has been disposed');
    return (this.device === 'cpu' ? this.#host : this.#device) as HostArray | DeviceBuffer;
  }

  /** A host copy of the data (Float32Array or Uint8Array by dtype). */
  toArray(): HostArray {
    const h = this.handle;
    if (this.device === 'cpu') return (h as HostArray).slice();
    const out = this.dtype === 'float32' ? new Float32Array(this.size) : new Uint8Array(this.size);
    try {
      native.cudaDownload(h as DeviceBuffer, out, false);
    } catch (e) {
      throw asSpartanError(e);
    }
    return out;
  }

  /** toArray() on a worker thread: the event loop stays free while the copy waits for the device. */
  async toArrayAsync(): Promise<HostArray> {
    const h = this.handle;
    if (this.device === 'cpu') return (h as HostArray).slice();
    const out = this.dtype === 'float32' ? new Float32Array(this.size) : new Uint8Array(this.size);
    await (native.cudaDownload(h as DeviceBuffer, out, true) as Promise<undefined>).catch((e) => { throw asSpartanError(e); });
    return out;
  }

  /** The data as float32 (uint8 masks become 0/1 floats). */
  toFloat32Array(): Float32Array {
    const a = this.toArray();
    return isFloat32Array(a) ? a : Float32Array.from(a);
  }

  async toFloat32ArrayAsync(): Promise<Float32Array> {
    const a = await this.toArrayAsync();
    return isFloat32Array(a) ? a : Float32Array.from(a);
  }

  /** Frees the memory now (idempotent). Later use throws ERR_SPARTAN_DISPOSED. */
  dispose(): void {
    if (this.#device) this.#device.free();
    this.#device = null;
    this.#host = null;
  }

  toString(): string {
    return `Tensor(${this.dtype}, [${this.shape.join(', ')}], ${this.device}${this.disposed ? ', disposed' : ''})`;
  }
}

/** @internal What a native call takes for an operand: the host array, or a Tensor's handle (typed as the array for the binding). */
export function handle<T extends HostArray>(x: T | Tensor): T {
  return (x instanceof Tensor ? x.handle : x) as T;
}

/** Element count of a host array or a Tensor. */
export function sizeOf(x: HostArray | Tensor): number {
  return x instanceof Tensor ? x.size : x.length;
}

/** Disposes the Tensors among xs (host arrays and empty slots are skipped). */
export function disposeTensors(xs: Iterable<unknown>): void {
  for (const x of xs) if (x instanceof Tensor) x.dispose();
}

function allocDevice(dtype: DType, size: number): DeviceBuffer {
  requireCuda();
  try {
    return new native.DeviceBuffer(size * (dtype === 'float32' ? 4 : 1), dtype);
  } catch (e) {
    throw asSpartanError(e);
  }
}

/** A tensor holding a copy of `data` on `device` (default 'cpu'). */
export function tensor(data: Float32Array | Uint8Array | readonly number[], opts?: TensorOptions): Tensor {
  const o = optionsObject(opts, 'tensor options', TENSOR_OPTS);
  const device = checkDevice(o.device, 'options.device');
  let host: HostArray;
  if (isFloat32Array(data) || isUint8Array(data)) {
    try {
      host = data.slice();
    } catch (e) {  // a detached buffer: slice() throws (a Proxy of an array is not one by isFloat32Array)
      throw Object.assign(typeError(isDetached(data) ? 'ERR_SPARTAN_DETACHED' : 'ERR_SPARTAN_TYPE', `data cannot be read: ${(e as Error).message}`), { cause: e });
    }
  }
  else if (Array.isArray(data)) {
    // Float32Array.from would read 'a', null or a hole as NaN and throw an uncoded TypeError on 1n
    const bad = data.findIndex((x, i) => typeof x !== 'number' || !(i in data));
    if (bad >= 0) throw typeError('ERR_SPARTAN_TYPE', `data[${bad}] is ${bad in data ? typeof data[bad] : 'a hole'}; an array's entries must be numbers`);
    host = Float32Array.from(data as number[]);
  }
  else throw typeError('ERR_SPARTAN_TYPE', 'data must be a Float32Array, a Uint8Array or an array of numbers');
  const dtype: DType = isUint8Array(host) ? 'uint8' : 'float32';
  const shape = shapeOf(o.shape, host.length);
  if (device === 'cpu') return new Tensor('cpu', dtype, shape, host, null);
  const buf = allocDevice(dtype, host.length);
  try {
    native.cudaUpload(buf, host, false);
  } catch (e) {
    buf.free();
    throw asSpartanError(e);
  }
  return new Tensor('cuda', dtype, shape, null, buf);
}

/** An uninitialised tensor (zeros on the CPU; unspecified contents on CUDA). */
export function empty(shape: number | readonly number[], opts?: EmptyOptions): Tensor {
  const o = optionsObject(opts, 'empty options', EMPTY_OPTS);
  const device = checkDevice(o.device, 'options.device');
  const dtype = o.dtype ?? 'float32';
  if (dtype !== 'float32' && dtype !== 'uint8') throw typeError('ERR_SPARTAN_OPTION', `dtype must be 'float32' or 'uint8' (got ${String(dtype)})`);
  const s = shapeOf(shape, undefined);
  const size = s.reduce((a, b) => a * b, 1);
  if (device === 'cpu' && size > 2 ** 32) throw rangeError('ERR_SPARTAN_SHAPE', `shape [${s.join(', ')}] holds ${size} entries; a cpu tensor holds at most 2^32`);
  if (device === 'cpu') return new Tensor('cpu', dtype, s, dtype === 'float32' ? new Float32Array(size) : new Uint8Array(size), null);
  return new Tensor('cuda', dtype, s, null, allocDevice(dtype, size));
}

/** Waits for all queued device work (for timing). A no-op without CUDA. */
export function synchronize(): void {
  if (!cudaStatus().usable) return;
  try {
    native.cudaSynchronize();
  } catch (e) {
    throw asSpartanError(e);
  }
}
