// Hard top-k masks: exactly the top k (unit costs), ties to the lower index.
// Host arrays run on the CPU; Tensors run where they live (uint8 mask Tensors out).
import { native, type NativeTopKResult } from '../native';
import { optionKeys, optionsObject } from '../options';
import { Tensor, type Device } from '../tensor';
import { Placement } from './placement';
import { perSegment, segmentList, type Costs, type TensorCosts } from './softTopK';

export interface TopKOptions {
  costs?: Costs | TensorCosts;
  out?: Uint8Array | Tensor;
  /** Run plain arrays on this device ('cuda': copied in and out). */
  device?: Device;
}

/** The mask of a values operand: a Tensor when the values are one. */
export type HardMaskOf<V> = V extends Tensor ? Tensor : Uint8Array;

const TOPK_OPTS = optionKeys<TopKOptions>({ costs: true, out: true, device: true });
const DEVICE_OPTS = optionKeys<{ device?: Device }>({ device: true });
const SEGMENT_KEYS = optionKeys<TopKSegment>({ values: true, costs: true, out: true });

function single(values: Float32Array | Tensor, k: number, opts: TopKOptions | undefined, async: boolean) {
  const o = optionsObject(opts, 'topKMask options', TOPK_OPTS);
  const p = Placement.resolve([values, o.costs, o.out], o.device);
  const call = () => {
    const out = p.output(o.out, Placement.sizeOf(values), 'uint8', values instanceof Tensor ? values.shape : undefined);
    const r = native.topKMask([{ values: p.input(values), costs: p.input(o.costs) as Costs, out: out.handle }], [{ first: 0, count: 1, k }], async, false);
    return async ? (r as Promise<NativeTopKResult[]>).then(() => out.result<Uint8Array | Tensor>()) : out.result<Uint8Array | Tensor>();
  };
  return p.mode === 'host' ? call() : async ? p.runAsync(call) : p.run(call);
}

/**
 * 1 for the entries kept: the shortest prefix of the entries sorted by v / c
 * (descending, ties to the lower index) whose cost reaches k. With unit costs and
 * an integer k that is exactly the top k. Linear time (radix selection, no sort).
 */
export function topKMask<V extends Float32Array | Tensor>(values: V, k: number, opts?: TopKOptions): HardMaskOf<V> {
  return single(values, k, opts, false) as HardMaskOf<V>;
}

export async function topKMaskAsync<V extends Float32Array | Tensor>(values: V, k: number, opts?: TopKOptions): Promise<HardMaskOf<V>> {
  return single(values, k, opts, true) as Promise<HardMaskOf<V>>;
}

export interface TopKSegment {
  values: Float32Array | Tensor;
  costs?: Costs | TensorCosts;
  out?: Uint8Array | Tensor;
}

function segmented(segments: readonly TopKSegment[], k: number | readonly number[], async: boolean, device: Device | undefined) {
  const segs = segmentList(segments, SEGMENT_KEYS);
  const p = Placement.resolve(segs.flatMap((s) => [s.values, s.costs, s.out]), device);
  const call = () => {
    const slots = segs.map((s) => p.output(s.out, Placement.sizeOf(s.values), 'uint8', s.values instanceof Tensor ? s.values.shape : undefined));
    const nativeSegs = segs.map((s, i) => ({ values: p.input(s.values), costs: p.input(s.costs) as Costs, out: slots[i].handle }));
    const groups = Array.isArray(k)
      ? perSegment(k, segs.length, 'k').map((ki, i) => ({ first: i, count: 1, k: ki }))
      : [{ first: 0, count: segs.length, k }];
    const outs = () => slots.map((x) => x.result<Uint8Array | Tensor>());
    const r = native.topKMask(nativeSegs, groups, async, true);
    return async ? (r as Promise<NativeTopKResult[]>).then(outs) : outs();
  };
  return p.mode === 'host' ? call() : async ? p.runAsync(call) : p.run(call);
}

/** Hard top-k over many tensors: k a number is one global budget, an array one budget per segment. */
export function topKMaskSegmented<S extends TopKSegment>(segments: readonly S[], k: number | readonly number[], opts?: { device?: Device }): HardMaskOf<S['values']>[] {
  return segmented(segments, k, false, optionsObject(opts, 'topKMaskSegmented options', DEVICE_OPTS).device) as HardMaskOf<S['values']>[];
}

export async function topKMaskSegmentedAsync<S extends TopKSegment>(segments: readonly S[], k: number | readonly number[], opts?: { device?: Device }): Promise<HardMaskOf<S['values']>[]> {
  return segmented(segments, k, true, optionsObject(opts, 'topKMaskSegmented options', DEVICE_OPTS).device) as Promise<HardMaskOf<S['values']>[]>;
}
