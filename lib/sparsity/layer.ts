// One parameter tensor as the sparsifier sees it: its matrix view, tiles, buffers.
import { rangeError, typeError } from '../errors';
import type { BlockDims } from '../options';

export interface ParamSpec {
  name: string;
  data: Float32Array;
  /** The tensor's shape; its matrix view is shape[0] x (the rest). */
  shape: readonly number[];
  /** Default: true for tensors of rank >= 2 (weights), false for rank 1 (biases, norms). */
  sparsify?: boolean;
  /** Tile size for block sparsity, e.g. [16, 16]. */
  block?: BlockDims;
}

export class Layer {
  readonly name: string;
  readonly theta: Float32Array;
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
  readonly scores: Float32Array;
  readonly mask: Float32Array; // soft mask per entry (Spartan), 1 otherwise
  readonly hard: Uint8Array; // forward set per entry
  readonly prevHard: Uint8Array;
  readonly backwardSet: Uint8Array; // Top-KAST backward set B
  readonly weights: Float32Array; // W fed to the forward pass (theta itself when not sparsified)
  readonly grad: Float32Array; // dL/dtheta
  private upstreamBuf?: Float32Array;
  private vjpBuf?: Float32Array;

  constructor(spec: ParamSpec, index: number) {
    if (typeof spec !== 'object' || spec === null) throw typeError('ERR_SPARTAN_TYPE', `params[${index}] must be an object`);
    if (typeof spec.name !== 'string' || spec.name === '') throw typeError('ERR_SPARTAN_TYPE', `params[${index}].name must be a non-empty string`);
    if (!(spec.data instanceof Float32Array)) throw typeError('ERR_SPARTAN_TYPE', `params[${index}].data (${spec.name}) must be a Float32Array`);
    if (!Array.isArray(spec.shape) || spec.shape.length === 0 || !spec.shape.every((d) => Number.isSafeInteger(d) && d >= 1))
      throw typeError('ERR_SPARTAN_TYPE', `params[${index}].shape (${spec.name}) must be an array of positive integers`);
    this.name = spec.name;
    this.theta = spec.data;
    this.shape = spec.shape.slice();
    this.numel = spec.shape.reduce((a, b) => a * b, 1);
    if (this.numel !== spec.data.length)
      throw rangeError('ERR_SPARTAN_SHAPE', `${spec.name}: shape [${spec.shape}] has ${this.numel} entries but data has ${spec.data.length}`);
    this.sparsify = spec.sparsify ?? spec.shape.length >= 2;
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
    this.scores = new Float32Array(this.entries);
    this.mask = new Float32Array(this.entries).fill(1);
    this.hard = new Uint8Array(this.entries).fill(1);
    this.prevHard = new Uint8Array(this.entries).fill(1);
    this.backwardSet = new Uint8Array(this.entries).fill(1);
    this.weights = this.sparsify ? new Float32Array(this.numel) : this.theta;
    this.grad = new Float32Array(this.sparsify ? this.numel : 0); // unsparsified gradients are handed through
  }

  /** dL/dm per entry, and its soft top-k VJP: Spartan's three-kernel backward only (block
   * layers), so allocated on first use (the fused element-mask gradient needs neither). */
  get upstream(): Float32Array {
    return (this.upstreamBuf ??= new Float32Array(this.entries));
  }
  get vjp(): Float32Array {
    return (this.vjpBuf ??= new Float32Array(this.entries));
  }

  get blocked(): boolean {
    return this.cost > 1;
  }
}
