// Block sparsity on row-major rows x cols matrices cut into b0 x b1 tiles.
import { native } from '../native';
import { typeError } from '../errors';
import { blockDims, matrixShape, optionKeys, optionsObject, type BlockDims } from '../options';
import { Tensor, type Device } from '../tensor';
import { Placement } from './placement';
import { isUint8Array } from '../util/typedArrays';

/** The output of an op on a theta operand: a Tensor when theta is one. */
export type Like<V, H> = V extends Tensor ? Tensor : H;
type Operand = Float32Array | Tensor;
type DeviceOpts<T> = { out?: T | Tensor; device?: Device };

function runOn<T>(p: Placement, async: boolean, call: () => T | Promise<T>) {
  return p.mode === 'host' ? call() : async ? p.runAsync(call) : p.run(call as () => T);
}

const DEVICE_OPTS = optionKeys<DeviceOpts<Float32Array>>({ out: true, device: true });

function scores(theta: Operand, rows: number, cols: number, block: BlockDims, opts: DeviceOpts<Float32Array> | undefined, async: boolean) {
  const b = blockDims(block);
  const [r, c] = matrixShape(rows, cols, b);
  const o = optionsObject(opts, 'blockScores options', DEVICE_OPTS);
  const p = Placement.resolve([theta, o.out], o.device);
  Placement.expectSize(theta, r * c, 'theta', ['float32']); // before the output is allocated
  return runOn(p, async, () => {
    const out = p.output(o.out, (r / b[0]) * (c / b[1]), 'float32', theta instanceof Tensor ? [r / b[0], c / b[1]] : undefined);
    const q = native.blockScores(p.input(theta), r, c, b[0], b[1], out.handle, async);
    return async ? (q as Promise<undefined>).then(() => out.result<Float32Array | Tensor>()) : out.result<Float32Array | Tensor>();
  });
}

/** Sum of |theta| over each tile: a (rows/b0) x (cols/b1) row-major Float32Array (float64 sums). */
export function blockScores<V extends Operand>(theta: V, rows: number, cols: number, block: BlockDims, opts?: DeviceOpts<Float32Array>): Like<V, Float32Array> {
  return scores(theta, rows, cols, block, opts, false) as Like<V, Float32Array>;
}

export async function blockScoresAsync<V extends Operand>(theta: V, rows: number, cols: number, block: BlockDims, opts?: DeviceOpts<Float32Array>): Promise<Like<V, Float32Array>> {
  return scores(theta, rows, cols, block, opts, true) as Promise<Like<V, Float32Array>>;
}

function expand(blockMask: Float32Array | Uint8Array | Tensor, rows: number, cols: number, block: BlockDims, opts: DeviceOpts<Float32Array | Uint8Array> | undefined, async: boolean) {
  const b = blockDims(block);
  const [r, c] = matrixShape(rows, cols, b);
  const o = optionsObject(opts, 'expandBlockMask options', DEVICE_OPTS);
  const p = Placement.resolve([blockMask, o.out], o.device);
  const dtype = isUint8Array(blockMask) || (blockMask instanceof Tensor && blockMask.dtype === 'uint8') ? 'uint8' : 'float32';
  Placement.expectSize(blockMask, (r / b[0]) * (c / b[1]), 'blockMask', ['float32', 'uint8']); // before the r x c output is allocated
  return runOn(p, async, () => {
    const out = p.output(o.out, r * c, dtype, blockMask instanceof Tensor ? [r, c] : undefined);
    const q = native.expandBlockMask(p.input(blockMask), r, c, b[0], b[1], out.handle, async);
    return async ? (q as Promise<undefined>).then(() => out.result()) : out.result();
  });
}

/** Broadcasts a (rows/b0) x (cols/b1) block mask to rows x cols. Float32Array or Uint8Array (or Tensor), output of the same type. */
export function expandBlockMask<T extends Float32Array | Uint8Array | Tensor>(blockMask: T, rows: number, cols: number, block: BlockDims, opts?: DeviceOpts<Float32Array | Uint8Array>): T {
  return expand(blockMask, rows, cols, block, opts, false) as T;
}

export async function expandBlockMaskAsync<T extends Float32Array | Uint8Array | Tensor>(blockMask: T, rows: number, cols: number, block: BlockDims, opts?: DeviceOpts<Float32Array | Uint8Array>): Promise<T> {
  return expand(blockMask, rows, cols, block, opts, true) as Promise<T>;
}

export interface ApplyMaskOptions {
  /** [rows, cols]; required with `block`. Default [1, theta.length]. */
  shape?: readonly [number, number];
  /** Tile size when `mask` (and `hard`) hold one entry per block. */
  block?: BlockDims;
  /** A hard 0/1 mask at the same granularity as `mask`, multiplied in too. */
  hard?: Uint8Array | Tensor;
  /** Receives the result; may be `theta` itself (in place). */
  out?: Float32Array | Tensor;
  /** Run plain arrays on this device ('cuda': copied in and out). */
  device?: Device;
}

const APPLY_MASK_OPTS = optionKeys<ApplyMaskOptions>({ shape: true, block: true, hard: true, out: true, device: true });

function apply(theta: Operand, mask: Float32Array | Uint8Array | Tensor, opts: ApplyMaskOptions | undefined, async: boolean) {
  const o = optionsObject(opts, 'applyMask options', APPLY_MASK_OPTS);
  const n = Placement.sizeOf(theta);
  let rows = 1, cols = Math.max(n, 1), b: [number, number] = [1, 1];
  if (o.block !== undefined) {
    if (o.shape === undefined) throw typeError('ERR_SPARTAN_OPTION', 'applyMask: a block mask needs options.shape = [rows, cols]');
    b = blockDims(o.block, 'options.block');
  }
  if (o.shape !== undefined) {
    if (!Array.isArray(o.shape) || o.shape.length !== 2) throw typeError('ERR_SPARTAN_TYPE', 'options.shape must be a pair [rows, cols]');
    [rows, cols] = matrixShape(o.shape[0], o.shape[1], b);
  }
  const p = Placement.resolve([theta, mask, o.hard, o.out], o.device);
  return runOn(p, async, () => {
    const out = p.output(o.out, n, 'float32', theta instanceof Tensor ? theta.shape : undefined);
    const q = native.applyMask(p.input(theta), p.input(mask), p.input(o.hard), rows, cols, b[0], b[1], o.block !== undefined, out.handle, async);
    return async ? (q as Promise<undefined>).then(() => out.result<Float32Array | Tensor>()) : out.result<Float32Array | Tensor>();
  });
}

/** out = theta * mask (* hard), with block masks broadcast over their tiles; one fused pass after validation. */
export function applyMask<V extends Operand>(theta: V, mask: Float32Array | Uint8Array | Tensor, opts?: ApplyMaskOptions): Like<V, Float32Array> {
  return apply(theta, mask, opts, false) as Like<V, Float32Array>;
}

export async function applyMaskAsync<V extends Operand>(theta: V, mask: Float32Array | Uint8Array | Tensor, opts?: ApplyMaskOptions): Promise<Like<V, Float32Array>> {
  return apply(theta, mask, opts, true) as Promise<Like<V, Float32Array>>;
}
