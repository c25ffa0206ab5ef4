// Block sparsity on row-major rows x cols matrices cut into b0 x b1 tiles.
import { native } from '../native';
import { typeError } from '../errors';
import { blockDims, float32Out, lengthOf, matrixShape, optionsObject, type BlockDims } from '../options';

function scores(theta: Float32Array, rows: number, cols: number, block: BlockDims, opts: { out?: Float32Array } | undefined, async: boolean) {
  const b = blockDims(block);
  const [r, c] = matrixShape(rows, cols, b);
  const out = float32Out(optionsObject(opts).out, (r / b[0]) * (c / b[1]));
  const p = native.blockScores(theta, r, c, b[0], b[1], out, async);
  return async ? (p as Promise<undefined>).then(() => out) : out;
}

/** Sum of |theta| over each tile: a (rows/b0) x (cols/b1) row-major Float32Array (float64 sums). */
export function blockScores(theta: Float32Array, rows: number, cols: number, block: BlockDims, opts?: { out?: Float32Array }): Float32Array {
  return scores(theta, rows, cols, block, opts, false) as Float32Array;
}

export async function blockScoresAsync(theta: Float32Array, rows: number, cols: number, block: BlockDims, opts?: { out?: Float32Array }): Promise<Float32Array> {
  return scores(theta, rows, cols, block, opts, true);
}

function expand<T extends Float32Array | Uint8Array>(blockMask: T, rows: number, cols: number, block: BlockDims, opts: { out?: T } | undefined, async: boolean) {
  const b = blockDims(block);
  const [r, c] = matrixShape(rows, cols, b);
  const o = optionsObject(opts);
  const out = (o.out ?? (blockMask instanceof Uint8Array ? new Uint8Array(r * c) : new Float32Array(r * c))) as T;
  const p = native.expandBlockMask(blockMask, r, c, b[0], b[1], out, async);
  return async ? (p as Promise<undefined>).then(() => out) : out;
}

/** Broadcasts a (rows/b0) x (cols/b1) block mask to rows x cols. Float32Array or Uint8Array, output of the same type. */
export function expandBlockMask<T extends Float32Array | Uint8Array>(blockMask: T, rows: number, cols: number, block: BlockDims, opts?: { out?: T }): T {
  return expand(blockMask, rows, cols, block, opts, false) as T;
}

export async function expandBlockMaskAsync<T extends Float32Array | Uint8Array>(blockMask: T, rows: number, cols: number, block: BlockDims, opts?: { out?: T }): Promise<T> {
  return expand(blockMask, rows, cols, block, opts, true);
}

export interface ApplyMaskOptions {
  /** [rows, cols]; required with `block`. Default [1, theta.length]. */
  shape?: readonly [number, number];
  /** Tile size when `mask` (and `hard`) hold one entry per block. */
  block?: BlockDims;
  /** A hard 0/1 mask at the same granularity as `mask`, multiplied in too. */
  hard?: Uint8Array;
  /** Receives the result; may be `theta` itself (in place). */
  out?: Float32Array;
}

function apply(theta: Float32Array, mask: Float32Array | Uint8Array, opts: ApplyMaskOptions | undefined, async: boolean) {
  const o = optionsObject(opts);
  const n = lengthOf(theta);
  let rows = 1, cols = Math.max(n, 1), b: [number, number] = [1, 1];
  if (o.block !== undefined) {
    if (o.shape === undefined) throw typeError('ERR_SPARTAN_OPTION', 'applyMask: a block mask needs options.shape = [rows, cols]');
    b = blockDims(o.block, 'options.block');
  }
  if (o.shape !== undefined) {
    if (!Array.isArray(o.shape) || o.shape.length !== 2) throw typeError('ERR_SPARTAN_TYPE', 'options.shape must be a pair [rows, cols]');
    [rows, cols] = matrixShape(o.shape[0], o.shape[1], b);
  }
  const out = float32Out(o.out, n);
  const p = native.applyMask(theta, mask, o.hard, rows, cols, b[0], b[1], o.block !== undefined, out, async);
  return async ? (p as Promise<undefined>).then(() => out) : out;
}

/** out = theta * mask (* hard), with block masks broadcast over their tiles; one fused pass after validation. */
export function applyMask(theta: Float32Array, mask: Float32Array | Uint8Array, opts?: ApplyMaskOptions): Float32Array {
  return apply(theta, mask, opts, false) as Float32Array;
}

export async function applyMaskAsync(theta: Float32Array, mask: Float32Array | Uint8Array, opts?: ApplyMaskOptions): Promise<Float32Array> {
  return apply(theta, mask, opts, true);
}
