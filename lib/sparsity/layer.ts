// One parameter tensor as the sparsifier sees it: its matrix view, tiles, buffers.
// The buffers live where the parameter does (host arrays, or Tensors on its device).
import { rangeError, typeError } from '../errors';
import type { ParamData } from '../optim/optimizer';
import { booleanOption, checkKnownKeys, optionKeys, positiveInt, type BlockDims } from '../options';
import { disposeTensors, sizeOf, Tensor } from '../tensor';
import type { F32, Storage, U8 } from './storage';
import { isFloat32Array } from '../util/typedArrays';

export type { ParamData };
/** The 0/1 masks of a Sparsifier over D: Uint8Arrays for host parameters, uint8 Tensors for Tensor ones. */
export type HardOf<D extends ParamData> = D extends Tensor ? Tensor : Uint8Array;

export interface ParamSpec<D extends ParamData = ParamData> {
  name: string;
  data: D;
  /** The tensor's shape; its matrix view is shape[0] x (the rest). */
  shape: readonly number[];
  /** Default: true for tensors of rank >= 2 (weights), false for rank 1 (biases, norms). */
  sparsify?: boolean;
  /** Tile size for block sparsity, e.g. [16, 16]. */
  block?: BlockDims;
}

const PARAM_KEYS = optionKeys<ParamSpec>({ name: true, data: true, shape: true, sparsify: true, block: true });

/** Checks one params[] entry before anything is allocated; returns where its data lives. */
export function checkParam(spec: ParamSpec, index: number): 'host' | Tensor['device'] {
  // (an array, a typed array or a Tensor in place of the entry: a type error, not an unknown key "0")
  if (typeof spec !== 'object' || spec === null || Array.isArray(spec) || ArrayBuffer.isView(spec) || spec instanceof Tensor)
    throw typeError('ERR_SPARTAN_TYPE', `params[${index}] must be an object { name, data, shape }`);
  checkKnownKeys(spec, PARAM_KEYS, `params[${index}]`);
  if (typeof spec.name !== 'string' || spec.name === '') throw typeError('ERR_SPARTAN_TYPE', `params[${index}].name must be a non-empty string`);
  const d = spec.data;
  if (!isFloat32Array(d) && !(d instanceof Tensor && d.dtype === 'float32'))
    throw typeError('ERR_SPARTAN_TYPE', `params[${index}].data (${spec.name}) must be a Float32Array or a float32 Tensor`);
  if (d instanceof Tensor && d.disposed) throw typeError('ERR_SPARTAN_DISPOSED', `params[${index}].data (${spec.name}) has been disposed`);
  if (!Array.isArray(spec.shape) || spec.shape.length === 0)
    throw typeError('ERR_SPARTAN_TYPE', `params[${index}].shape (${spec.name}) must be a non-empty array of dimensions`);
  spec.shape.forEach((x, j) => positiveInt(x, `params[${index}].shape[${j}] (${spec.name})`)); // a number that is no dimension: ERR_SPARTAN_SHAPE
  // its type only (a string 'false' would mask the layer); the Layer applies the default by rank
  booleanOption(spec.sparsify, `params[${index}].sparsify (${spec.name})`, maskedByDefault(spec.shape));
  return d instanceof Tensor ? d.device : 'host';
}

/** Which parameters are masked when a spec does not say: weights (rank >= 2), not biases or scales. */
export const maskedByDefault = (shape: readonly number[]): boolean => shape.length >= 2;

export class Layer<F extends F32 = Float32Array, U extends U8 = Uint8Array> {
  readonly name: string;
  readonly theta: F;
  readonly shape: readonly number[];
  readonly numel: number;
  readonly sparsify: boolean;
  readonly rows: number;
  readonly cols: number;
  /** Effective tile ([1, 1] when unstructured or after a fallback). */
  readonly block: [number, number];
  /** Why a requested block size was not used. */
  readonly blockFallback?: string;
  readonly entries: number;
  readonly cost: number;
  // buffers, allocated once
  readonly scores: F;
  readonly mask: F; // soft mask per entry (Spartan), 1 otherwise
  readonly hard: U; // forward set per entry
  readonly prevHard: U;
  readonly backwardSet: U; // Top-KAST backward set B
  private weightsBuf: F; // W fed to the forward pass (theta itself when not sparsified)
  private gradBuf: F; // dL/dtheta
  private readonly storage: Storage;
  private upstreamBuf?: F;
  private vjpBuf?: F;

  /** `spec` passed checkParam(); `storage` is where its data lives; `masked`: the method masks (not dense). */
  constructor(spec: ParamSpec, storage: Storage, masked: boolean) {
    this.name = spec.name;
    this.theta = spec.data as F;
    this.storage = storage;
    this.shape = spec.shape.slice();
    this.numel = spec.shape.reduce((a, b) => a * b, 1);
    const size = sizeOf(spec.data);
    if (this.numel !== size)
      throw rangeError('ERR_SPARTAN_SHAPE', `${spec.name}: shape [${spec.shape}] has ${this.numel} entries but data has ${size}`);
    this.sparsify = spec.sparsify ?? maskedByDefault(spec.shape);
    this.rows = spec.shape[0];
    this.cols = this.numel / this.rows;
    let block: [number, number] = [1, 1];
    if (spec.block !== undefined) {
      const b = spec.block;
      if (!Array.isArray(b) || b.length !== 2 || !b.every((d) => Number.isSafeInteger(d) && d >= 1))
        throw rangeError('ERR_SPARTAN_SHAPE', `${spec.name}: block must be a pair of positive integers (got ${JSON.stringify(b)})`);
      if (this.rows % b[0] === 0 && this.cols % b[1] === 0) block = [b[0], b[1]];
      else this.blockFallback = `${this.rows}x${this.cols} does not divide into ${b[0]}x${b[1]} blocks: unstructured`;
    }
    this.block = block;
    this.cost = block[0] * block[1];
    this.entries = this.numel / this.cost;
    // every layer has masks (all ones when not sparsified): states hold one per layer
    const made: (F32 | U8)[] = [];
    const keep = <T extends F32 | U8>(x: T): T => (made.push(x), x);
    const own = this.sparsify && masked; // W and dL/dtheta buffers; otherwise theta and the caller's gradient serve
    try {
      this.scores = keep(storage.f32(this.entries)) as F;
      this.mask = keep(storage.f32(this.entries, 1)) as F;
      this.hard = keep(storage.u8(this.entries, 1)) as U;
      this.prevHard = keep(storage.u8(this.entries, 1)) as U;
      this.backwardSet = keep(storage.u8(this.entries, 1)) as U;
      this.weightsBuf = (own ? keep(storage.f32(this.numel, 0, this.shape)) : this.theta) as F;
      this.gradBuf = keep(storage.f32(own ? this.numel : 0, 0, own ? this.shape : [0])) as F;
    } catch (e) {
      disposeTensors(made); // out of device memory part-way: free this layer's share
      throw e;
    }
  }

  /** W, the buffer weights() hands out for this parameter (theta itself when not sparsified). */
  get weights(): F {
    return this.weightsBuf;
  }
  /** dL/dtheta, the buffer backward() hands out for this parameter when it computes one. */
  get grad(): F {
    return this.gradBuf;
  }

  /**
   * Before a Sparsifier call: the caller's theta must be attached (ERR_SPARTAN_DETACHED naming
   * the parameter, nothing changed); a W or gradient buffer the caller transferred away (say to a
   * worker thread) is replaced, as both are rewritten whole before they are read again.
   */
  checkAttached(): void {
    if (isFloat32Array(this.theta) && this.theta.length !== this.numel)
      throw typeError('ERR_SPARTAN_DETACHED', `parameter "${this.name}": its array was detached (transferred); the Sparsifier needs its parameters' memory where it runs`);
    if (this.weightsBuf === this.theta) return; // W is theta and the caller's gradient serves: no buffers of its own
    if (isFloat32Array(this.weightsBuf) && this.weightsBuf.length !== this.numel) this.weightsBuf = this.storage.f32(this.numel, 0, this.shape) as F;
    if (isFloat32Array(this.gradBuf) && this.gradBuf.length !== this.numel) this.gradBuf = this.storage.f32(this.numel, 0, this.shape) as F;
  }

  /** dL/dm per entry, and its soft top-k VJP: Spartan's three-kernel backward only (block
   * layers, and every layer on a device), so allocated on first use (the fused element-mask
   * gradient needs neither). */
  get upstream(): F {
    return (this.upstreamBuf ??= this.storage.f32(this.entries) as F);
  }
  get vjp(): F {
    return (this.vjpBuf ??= this.storage.f32(this.entries) as F);
  }

  /** Frees the layer's own device buffers (never theta, which is the caller's). */
  dispose(): void {
    disposeTensors([this.scores, this.mask, this.hard, this.prevHard, this.backwardSet, this.grad, this.upstreamBuf, this.vjpBuf]);
    if (this.weights !== this.theta) disposeTensors([this.weights]);
  }

  get blocked(): boolean {
    return this.cost > 1;
  }
}
