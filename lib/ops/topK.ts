// Hard top-k masks: exactly the top k (unit costs), ties to the lower index.
import { native, type NativeTopKResult } from '../native';
import { lengthOf, optionsObject } from '../options';
import { perSegment, segmentList, type Costs } from './softTopK';

export interface TopKOptions {
  costs?: Costs;
  out?: Uint8Array;
}

function u8Out(out: unknown, n: number): Uint8Array {
  return out === undefined || out === null ? new Uint8Array(n) : (out as Uint8Array);
}

function single(values: Float32Array, k: number, opts: TopKOptions | undefined, async: boolean) {
  const o = optionsObject(opts);
  const out = u8Out(o.out, lengthOf(values));
  const r = native.topKMask([{ values, costs: o.costs, out }], [{ first: 0, count: 1, k }], async, false);
  return async ? (r as Promise<NativeTopKResult[]>).then(() => out) : out;
}

/**
 * 1 for the entries kept: the shortest prefix of the entries sorted by v / c
 * (descending, ties to the lower index) whose cost reaches k. With unit costs and
 * an integer k that is exactly the top k. Linear time (radix selection, no sort).
 */
export function topKMask(values: Float32Array, k: number, opts?: TopKOptions): Uint8Array {
  return single(values, k, opts, false) as Uint8Array;
}

export async function topKMaskAsync(values: Float32Array, k: number, opts?: TopKOptions): Promise<Uint8Array> {
  return single(values, k, opts, true);
}

export interface TopKSegment {
  values: Float32Array;
  costs?: Costs;
  out?: Uint8Array;
}

function segmented(segments: readonly TopKSegment[], k: number | readonly number[], async: boolean) {
  const segs = segmentList(segments);
  const outs = segs.map((s) => u8Out(s.out, lengthOf(s.values)));
  const nativeSegs = segs.map((s, i) => ({ values: s.values, costs: s.costs, out: outs[i] }));
  const groups = Array.isArray(k)
    ? perSegment(k, segs.length, 'k').map((ki, i) => ({ first: i, count: 1, k: ki }))
    : [{ first: 0, count: segs.length, k }];
  const r = native.topKMask(nativeSegs, groups, async, true);
  return async ? (r as Promise<NativeTopKResult[]>).then(() => outs) : outs;
}

/** Hard top-k over many tensors: k a number is one global budget, an array one budget per segment. */
export function topKMaskSegmented(segments: readonly TopKSegment[], k: number | readonly number[]): Uint8Array[] {
  return segmented(segments, k, false) as Uint8Array[];
}

export async function topKMaskSegmentedAsync(segments: readonly TopKSegment[], k: number | readonly number[]): Promise<Uint8Array[]> {
  return segmented(segments, k, true);
}
