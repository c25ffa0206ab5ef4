// Soft top-k forward and backward: single tensors and segmented (many tensors,
// one global budget or one budget per tensor) in one native call, sync or async.
import { native, type NativeSoftTopKResult } from '../native';
import { rangeError, typeError } from '../errors';
import { checkKnownKeys, optionKeys, optionsObject } from '../options';
import { Tensor, type Device } from '../tensor';
import { Placement } from './placement';

/** Per-entry costs: a Float32Array (one per entry) or one number for every entry. Default 1. */
export type Costs = Float32Array | number;

/** Per-entry costs: a Float32Array (one per entry) or one number for every entry. Default 1. */
export type TensorCosts = Tensor | number;

/** An op's input: a host array, or a Tensor (the op then runs where the Tensor lives). */
export type Operand = Float32Array | Tensor;

export interface SoftTopKOptions {
  costs?: Costs | TensorCosts;
  /** Receives the mask (length n). Must not overlap `values`. A Tensor when values is one. */
  out?: Float32Array | Tensor;
  /** Run plain arrays on this device ('cuda': copied in and out). Tensors run where they live. */
  device?: Device;
  /** Warm start: the lambda of a previous, similar solve. */
  lambda?: number;
}

export interface SoftTopKResult<M = Float32Array> {
  mask: M;
  /** The dual variable: mask = sigmoid(beta * v / c + lambda). -Infinity for k = 0, Infinity for k = total cost. */
  lambda: number;
  /** Newton evaluations over the data. */
  iterations: number;
  /** Reads of the whole input, the validating pass included. */
  passes: number;
  /** sum(c * mask) as written (float32 mask, float64 sum). */
  mass: number;
  converged: boolean;
}

export interface SoftTopKBackwardOptions {
  costs?: Costs | TensorCosts;
  /** Receives dL/dvalues. May be `mask` or `gradMask` itself (computed in place). */
  out?: Float32Array | Tensor;
  device?: Device;
}

const SOFT_TOPK_OPTS = optionKeys<SoftTopKOptions>({ costs: true, out: true, device: true, lambda: true });
const SOFT_TOPK_BACKWARD_OPTS = optionKeys<SoftTopKBackwardOptions>({ costs: true, out: true, device: true });
const SEGMENTED_OPTS = optionKeys<SegOpts<number>>({ lambda: true, device: true });
const DEVICE_OPTS = optionKeys<{ device?: Device }>({ device: true });
const SEGMENT_KEYS = optionKeys<SoftTopKSegment>({ values: true, costs: true, out: true });
const BACKWARD_SEGMENT_KEYS = optionKeys<SoftTopKBackwardSegment>({ mask: true, gradMask: true, costs: true, out: true });

function single(values: Operand, k: number, beta: number, opts: SoftTopKOptions | undefined, async: boolean) {
  const o = optionsObject(opts, 'softTopK options', SOFT_TOPK_OPTS);
  const p = Placement.resolve([values, o.costs, o.out], o.device);
  const call = () => {
    const out = p.output(o.out, Placement.sizeOf(values), 'float32', values instanceof Tensor ? values.shape : undefined);
    const r = native.softTopKForward([{ values: p.input(values), costs: p.input(o.costs) as Costs, out: out.handle }],
      [{ first: 0, count: 1, k, beta, lambda: o.lambda }], async, false);
    const finish = (rs: NativeSoftTopKResult[]): SoftTopKResult<Float32Array | Tensor> => ({
      mask: out.result<Float32Array | Tensor>(),
      lambda: rs[0].lambda,
      iterations: rs[0].iterations,
      passes: rs[0].passes,
      mass: rs[0].mass,
      converged: rs[0].converged,
    });
    return async ? (r as Promise<NativeSoftTopKResult[]>).then(finish) : finish(r as NativeSoftTopKResult[]);
  };
  return async ? p.runAsync(call) : p.run(call);
}

/**
 * The exact soft top-k mask m_i = sigmoid(beta * v_i / c_i + lambda) with sum(c * m) = k.
 * Inputs are validated before anything is written. Tensor values give a Tensor mask
 * on the same device.
 */
export function softTopK(values: Float32Array, k: number, beta: number, opts?: SoftTopKOptions): SoftTopKResult;
export function softTopK(values: Tensor, k: number, beta: number, opts?: SoftTopKOptions): SoftTopKResult<Tensor>;
export function softTopK(values: Operand, k: number, beta: number, opts?: SoftTopKOptions): SoftTopKResult<Float32Array | Tensor> {
  return single(values, k, beta, opts, false) as SoftTopKResult<Float32Array | Tensor>;
}

/** softTopK on a worker thread: the event loop stays free. Rejects with the same coded errors. */
export function softTopKAsync(values: Float32Array, k: number, beta: number, opts?: SoftTopKOptions): Promise<SoftTopKResult>;
export function softTopKAsync(values: Tensor, k: number, beta: number, opts?: SoftTopKOptions): Promise<SoftTopKResult<Tensor>>;
export async function softTopKAsync(values: Operand, k: number, beta: number, opts?: SoftTopKOptions): Promise<SoftTopKResult<Float32Array | Tensor>> {
  return single(values, k, beta, opts, true);
}

function backward(mask: Operand, gradMask: Operand, beta: number, opts: SoftTopKBackwardOptions | undefined, async: boolean) {
  const o = optionsObject(opts, 'softTopKBackward options', SOFT_TOPK_BACKWARD_OPTS);
  const p = Placement.resolve([mask, gradMask, o.costs, o.out], o.device);
  const call = () => {
    // In place (out === mask or gradMask) reaches the kernel as the same buffer, except
    // in copy mode, where the result lands in a device temporary and is copied back.
    const m = p.input(mask), grad = p.input(gradMask);
    const slot = p.output(o.out, Placement.sizeOf(mask), 'float32', mask instanceof Tensor ? mask.shape : undefined);
    const outHandle = slot.handle;
    const result = () => slot.result<Float32Array | Tensor>();
    const r = native.softTopKBackward([{ mask: m, grad, costs: p.input(o.costs) as Costs, out: outHandle }], [{ first: 0, count: 1, beta }], async, false);
    return async ? (r as Promise<undefined>).then(result) : result();
  };
  return async ? p.runAsync(call) : p.run(call);
}

/**
 * Vector-Jacobian product of softTopK: dL/dv_i = beta m_i (1 - m_i) (g_i / c_i - s),
 * s = sum(g m (1-m)) / sum(c m (1-m)); zero where the mask is saturated.
 */
export function softTopKBackward(mask: Float32Array, gradMask: Float32Array, beta: number, opts?: SoftTopKBackwardOptions): Float32Array;
export function softTopKBackward(mask: Tensor, gradMask: Tensor, beta: number, opts?: SoftTopKBackwardOptions): Tensor;
export function softTopKBackward(mask: Operand, gradMask: Operand, beta: number, opts?: SoftTopKBackwardOptions): Float32Array | Tensor {
  return backward(mask, gradMask, beta, opts, false) as Float32Array | Tensor;
}

export function softTopKBackwardAsync(mask: Float32Array, gradMask: Float32Array, beta: number, opts?: SoftTopKBackwardOptions): Promise<Float32Array>;
export function softTopKBackwardAsync(mask: Tensor, gradMask: Tensor, beta: number, opts?: SoftTopKBackwardOptions): Promise<Tensor>;
export async function softTopKBackwardAsync(mask: Operand, gradMask: Operand, beta: number, opts?: SoftTopKBackwardOptions): Promise<Float32Array | Tensor> {
  return backward(mask, gradMask, beta, opts, true);
}

// ---- segmented ------------------------------------------------------------------

export interface SoftTopKSegment {
  values: Float32Array | Tensor;
  costs?: Costs | TensorCosts;
  out?: Float32Array | Tensor;
}

export interface SegmentedSoftTopKResult<L, M = Float32Array> {
  masks: M[];
  /** One lambda for a global budget, one per segment for per-segment budgets. */
  lambda: L;
  mass: L;
  iterations: number;
  passes: number;
  converged: boolean;
}

export function segmentList<T extends object>(segments: readonly T[], keys: readonly string[]): readonly T[] {
  if (!Array.isArray(segments)) throw typeError('ERR_SPARTAN_TYPE', 'segments must be an Array');
  if (segments.length === 0) throw rangeError('ERR_SPARTAN_LENGTH', 'segments must not be empty');
  segments.forEach((s, i) => {
    if (typeof s !== 'object' || s === null || ArrayBuffer.isView(s) || Array.isArray(s) || s instanceof Tensor)
      throw typeError('ERR_SPARTAN_TYPE', `segments[${i}] must be an object`);
    checkKnownKeys(s, keys, `segments[${i}]`);
  });
  return segments;
}

/** Per-segment values for a scalar-or-array argument, checked against the segment count. */
export function perSegment(x: number | readonly number[], count: number, name: string): readonly number[] {
  if (!Array.isArray(x)) return new Array<number>(count).fill(x as number);
  if (x.length !== count) throw rangeError('ERR_SPARTAN_LENGTH', `${name} has ${x.length} entries; expected one per segment (${count})`);
  return x;
}

function segmented(
  segments: readonly SoftTopKSegment[],
  k: number | readonly number[],
  beta: number | readonly number[],
  opts: SegOpts<number | readonly number[]> | undefined,
  async: boolean,
) {
  const segs = segmentList(segments, SEGMENT_KEYS);
  const o = optionsObject(opts, 'softTopKSegmented options', SEGMENTED_OPTS);
  const global = !Array.isArray(k);
  const p = Placement.resolve(segs.flatMap((s) => [s.values, s.costs, s.out]), o.device);
  return p.mode === 'host' ? segmentedOn(p, segs, k, beta, o, global, async)
    : async ? p.runAsync(() => segmentedOn(p, segs, k, beta, o, global, async)) : p.run(() => segmentedOn(p, segs, k, beta, o, global, async));
}

function segmentedOn(
  p: Placement,
  segs: readonly SoftTopKSegment[],
  k: number | readonly number[],
  beta: number | readonly number[],
  o: { lambda?: number | readonly number[] },
  global: boolean,
  async: boolean,
) {
  const slots = segs.map((s) => p.output(s.out, Placement.sizeOf(s.values), 'float32', s.values instanceof Tensor ? s.values.shape : undefined));
  const nativeSegs = segs.map((s, i) => ({ values: p.input(s.values), costs: p.input(s.costs) as Costs, out: slots[i].handle }));
  let groups;
  if (global) {
    if (Array.isArray(beta)) throw typeError('ERR_SPARTAN_TYPE', 'a global budget (k a number) takes one beta (a number)');
    if (Array.isArray(o.lambda)) throw typeError('ERR_SPARTAN_TYPE', 'a global budget takes one warm-start lambda (a number)');
    groups = [{ first: 0, count: segs.length, k, beta, lambda: o.lambda }];
  } else {
    const betas = perSegment(beta, segs.length, 'beta');
    const lambdas = o.lambda === undefined ? undefined : perSegment(o.lambda, segs.length, 'lambda');
    groups = (k as readonly number[]).map((ki, i) => ({ first: i, count: 1, k: ki, beta: betas[i], lambda: lambdas?.[i] }));
    if (groups.length !== segs.length) throw rangeError('ERR_SPARTAN_LENGTH', `k has ${groups.length} entries; expected one per segment (${segs.length})`);
  }
  const r = native.softTopKForward(nativeSegs, groups, async, true);
  const finish = (rs: NativeSoftTopKResult[]) => ({
    masks: slots.map((x) => x.result<Float32Array | Tensor>()),
    lambda: global ? rs[0].lambda : rs.map((x) => x.lambda),
    mass: global ? rs[0].mass : rs.map((x) => x.mass),
    iterations: Math.max(...rs.map((x) => x.iterations)),
    passes: Math.max(...rs.map((x) => x.passes)),
    converged: rs.every((x) => x.converged),
  });
  return async ? (r as Promise<NativeSoftTopKResult[]>).then(finish) : finish(r as NativeSoftTopKResult[]);
}

/**
 * Soft top-k over many tensors in one call, without concatenating them.
 * k a number: one global budget (one lambda) over all segments.
 * k an array: one budget per segment (beta may then be per segment too).
 */
/** A mask of a segment: a Tensor when the segment's values are one. */
export type MaskOf<V> = V extends Tensor ? Tensor : Float32Array;
type SegOpts<L> = { lambda?: L; device?: Device };

export function softTopKSegmented<S extends SoftTopKSegment>(segments: readonly S[], k: number, beta: number, opts?: SegOpts<number>): SegmentedSoftTopKResult<number, MaskOf<S['values']>>;
export function softTopKSegmented<S extends SoftTopKSegment>(segments: readonly S[], k: readonly number[], beta: number | readonly number[], opts?: SegOpts<readonly number[]>): SegmentedSoftTopKResult<number[], MaskOf<S['values']>>;
export function softTopKSegmented(segments: readonly SoftTopKSegment[], k: number | readonly number[], beta: number | readonly number[], opts?: SegOpts<number | readonly number[]>) {
  return segmented(segments, k, beta, opts, false);
}

export function softTopKSegmentedAsync<S extends SoftTopKSegment>(segments: readonly S[], k: number, beta: number, opts?: SegOpts<number>): Promise<SegmentedSoftTopKResult<number, MaskOf<S['values']>>>;
export function softTopKSegmentedAsync<S extends SoftTopKSegment>(segments: readonly S[], k: readonly number[], beta: number | readonly number[], opts?: SegOpts<readonly number[]>): Promise<SegmentedSoftTopKResult<number[], MaskOf<S['values']>>>;
export async function softTopKSegmentedAsync(segments: readonly SoftTopKSegment[], k: number | readonly number[], beta: number | readonly number[], opts?: SegOpts<number | readonly number[]>) {
  return segmented(segments, k, beta, opts, true);
}

export interface SoftTopKBackwardSegment {
  mask: Float32Array | Tensor;
  gradMask: Float32Array | Tensor;
  costs?: Costs | TensorCosts;
  out?: Float32Array | Tensor;
}

function segmentedBackward(segments: readonly SoftTopKBackwardSegment[], beta: number | readonly number[], async: boolean, device?: Device) {
  const segs = segmentList(segments, BACKWARD_SEGMENT_KEYS);
  const p = Placement.resolve(segs.flatMap((s) => [s.mask, s.gradMask, s.costs, s.out]), device);
  const call = () => segmentedBackwardOn(p, segs, beta, async);
  return p.mode === 'host' ? call() : async ? p.runAsync(call) : p.run(call);
}

function segmentedBackwardOn(p: Placement, segs: readonly SoftTopKBackwardSegment[], beta: number | readonly number[], async: boolean) {
  const slots = segs.map((s) => p.output(s.out, Placement.sizeOf(s.mask), 'float32', s.mask instanceof Tensor ? s.mask.shape : undefined));
  const nativeSegs = segs.map((s, i) => ({ mask: p.input(s.mask), grad: p.input(s.gradMask), costs: p.input(s.costs) as Costs, out: slots[i].handle }));
  const outs = () => slots.map((x) => x.result<Float32Array | Tensor>());
  const groups = Array.isArray(beta)
    ? perSegment(beta, segs.length, 'beta').map((b, i) => ({ first: i, count: 1, beta: b }))
    : [{ first: 0, count: segs.length, beta }];
  const r = native.softTopKBackward(nativeSegs, groups, async, true);
  return async ? (r as Promise<undefined>).then(outs) : outs();
}

/**
 * Backward of softTopKSegmented. beta a number: the global budget's coupling (one s
 * over every segment). beta an array: per-segment budgets, each segment on its own.
 */
export function softTopKBackwardSegmented<S extends SoftTopKBackwardSegment>(segments: readonly S[], beta: number | readonly number[], opts?: { device?: Device }): MaskOf<S['mask']>[] {
  return segmentedBackward(segments, beta, false, optionsObject(opts, 'softTopKBackwardSegmented options', DEVICE_OPTS).device) as MaskOf<S['mask']>[];
}

export async function softTopKBackwardSegmentedAsync<S extends SoftTopKBackwardSegment>(segments: readonly S[], beta: number | readonly number[], opts?: { device?: Device }): Promise<MaskOf<S['mask']>[]> {
  return segmentedBackward(segments, beta, true, optionsObject(opts, 'softTopKBackwardSegmented options', DEVICE_OPTS).device) as Promise<MaskOf<S['mask']>[]>;
}
