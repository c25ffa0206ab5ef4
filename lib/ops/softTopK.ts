// Soft top-k forward and backward: single tensors and segmented (many tensors,
// one global budget or one budget per tensor) in one native call, sync or async.
import { native, type NativeSoftTopKResult } from '../native';
import { rangeError, typeError } from '../errors';
import { float32Out, lengthOf, optionsObject } from '../options';

/** Per-entry costs: a Float32Array (one per entry) or one number for every entry. Default 1. */
export type Costs = Float32Array | number;

export interface SoftTopKOptions {
  costs?: Costs;
  /** Receives the mask (length n). Must not overlap `values`. */
  out?: Float32Array;
  /** Warm start: the lambda of a previous, similar solve. */
  lambda?: number;
}

export interface SoftTopKResult {
  mask: Float32Array;
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
  costs?: Costs;
  /** Receives dL/dvalues. May be `mask` or `gradMask` itself (computed in place). */
  out?: Float32Array;
}

function single(values: Float32Array, k: number, beta: number, opts: SoftTopKOptions | undefined, async: boolean) {
  const o = optionsObject(opts);
  const out = float32Out(o.out, lengthOf(values));
  const r = native.softTopKForward([{ values, costs: o.costs, out }], [{ first: 0, count: 1, k, beta, lambda: o.lambda }], async, false);
  const finish = (rs: NativeSoftTopKResult[]): SoftTopKResult => ({
    mask: out,
    lambda: rs[0].lambda,
    iterations: rs[0].iterations,
    passes: rs[0].passes,
    mass: rs[0].mass,
    converged: rs[0].converged,
  });
  return async ? (r as Promise<NativeSoftTopKResult[]>).then(finish) : finish(r as NativeSoftTopKResult[]);
}

/**
 * The exact soft top-k mask m_i = sigmoid(beta * v_i / c_i + lambda) with sum(c * m) = k.
 * Inputs are validated before anything is written.
 */
export function softTopK(values: Float32Array, k: number, beta: number, opts?: SoftTopKOptions): SoftTopKResult {
  return single(values, k, beta, opts, false) as SoftTopKResult;
}

/** softTopK on a worker thread: the event loop stays free. Rejects with the same coded errors. */
export async function softTopKAsync(values: Float32Array, k: number, beta: number, opts?: SoftTopKOptions): Promise<SoftTopKResult> {
  return single(values, k, beta, opts, true);
}

function backward(mask: Float32Array, gradMask: Float32Array, beta: number, opts: SoftTopKBackwardOptions | undefined, async: boolean) {
  const o = optionsObject(opts);
  const out = float32Out(o.out, lengthOf(mask));
  const r = native.softTopKBackward([{ mask, grad: gradMask, costs: o.costs, out }], [{ first: 0, count: 1, beta }], async, false);
  return async ? (r as Promise<undefined>).then(() => out) : out;
}

/**
 * Vector-Jacobian product of softTopK: dL/dv_i = beta m_i (1 - m_i) (g_i / c_i - s),
 * s = sum(g m (1-m)) / sum(c m (1-m)); zero where the mask is saturated.
 */
export function softTopKBackward(mask: Float32Array, gradMask: Float32Array, beta: number, opts?: SoftTopKBackwardOptions): Float32Array {
  return backward(mask, gradMask, beta, opts, false) as Float32Array;
}

export async function softTopKBackwardAsync(mask: Float32Array, gradMask: Float32Array, beta: number, opts?: SoftTopKBackwardOptions): Promise<Float32Array> {
  return backward(mask, gradMask, beta, opts, true);
}

// ---- segmented ------------------------------------------------------------------

export interface SoftTopKSegment {
  values: Float32Array;
  costs?: Costs;
  out?: Float32Array;
}

export interface SegmentedSoftTopKResult<L> {
  masks: Float32Array[];
  /** One lambda for a global budget, one per segment for per-segment budgets. */
  lambda: L;
  mass: L;
  iterations: number;
  passes: number;
  converged: boolean;
}

export function segmentList<T extends object>(segments: readonly T[]): readonly T[] {
  if (!Array.isArray(segments)) throw typeError('ERR_SPARTAN_TYPE', 'segments must be an Array');
  if (segments.length === 0) throw rangeError('ERR_SPARTAN_LENGTH', 'segments must not be empty');
  segments.forEach((s, i) => {
    if (typeof s !== 'object' || s === null || ArrayBuffer.isView(s))
      throw typeError('ERR_SPARTAN_TYPE', `segments[${i}] must be an object`);
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
  opts: { lambda?: number | readonly number[] } | undefined,
  async: boolean,
) {
  const segs = segmentList(segments);
  const o = optionsObject(opts);
  const global = !Array.isArray(k);
  const outs = segs.map((s) => float32Out(s.out, lengthOf(s.values)));
  const nativeSegs = segs.map((s, i) => ({ values: s.values, costs: s.costs, out: outs[i] }));
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
    masks: outs,
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
export function softTopKSegmented(segments: readonly SoftTopKSegment[], k: number, beta: number, opts?: { lambda?: number }): SegmentedSoftTopKResult<number>;
export function softTopKSegmented(segments: readonly SoftTopKSegment[], k: readonly number[], beta: number | readonly number[], opts?: { lambda?: readonly number[] }): SegmentedSoftTopKResult<number[]>;
export function softTopKSegmented(segments: readonly SoftTopKSegment[], k: number | readonly number[], beta: number | readonly number[], opts?: { lambda?: number | readonly number[] }) {
  return segmented(segments, k, beta, opts, false);
}

export function softTopKSegmentedAsync(segments: readonly SoftTopKSegment[], k: number, beta: number, opts?: { lambda?: number }): Promise<SegmentedSoftTopKResult<number>>;
export function softTopKSegmentedAsync(segments: readonly SoftTopKSegment[], k: readonly number[], beta: number | readonly number[], opts?: { lambda?: readonly number[] }): Promise<SegmentedSoftTopKResult<number[]>>;
export async function softTopKSegmentedAsync(segments: readonly SoftTopKSegment[], k: number | readonly number[], beta: number | readonly number[], opts?: { lambda?: number | readonly number[] }) {
  return segmented(segments, k, beta, opts, true);
}

export interface SoftTopKBackwardSegment {
  mask: Float32Array;
  gradMask: Float32Array;
  costs?: Costs;
  out?: Float32Array;
}

function segmentedBackward(segments: readonly SoftTopKBackwardSegment[], beta: number | readonly number[], async: boolean) {
  const segs = segmentList(segments);
  const outs = segs.map((s) => float32Out(s.out, lengthOf(s.mask)));
  const nativeSegs = segs.map((s, i) => ({ mask: s.mask, grad: s.gradMask, costs: s.costs, out: outs[i] }));
  const groups = Array.isArray(beta)
    ? perSegment(beta, segs.length, 'beta').map((b, i) => ({ first: i, count: 1, beta: b }))
    : [{ first: 0, count: segs.length, beta }];
  const r = native.softTopKBackward(nativeSegs, groups, async, true);
  return async ? (r as Promise<undefined>).then(() => outs) : outs;
}

/**
 * Backward of softTopKSegmented. beta a number: the global budget's coupling (one s
 * over every segment). beta an array: per-segment budgets, each segment on its own.
 */
export function softTopKBackwardSegmented(segments: readonly SoftTopKBackwardSegment[], beta: number | readonly number[]): Float32Array[] {
  return segmentedBackward(segments, beta, false) as Float32Array[];
}

export async function softTopKBackwardSegmentedAsync(segments: readonly SoftTopKBackwardSegment[], beta: number | readonly number[]): Promise<Float32Array[]> {
  return segmentedBackward(segments, beta, true);
}
