// Gradients of the sliding-window operators: Conv, ConvTranspose and AveragePool, each in
// terms of Conv and ConvTranspose (any number of spatial dims).
import { rangeError } from '../errors';
import type { GradContext } from './gradContext';
import { attrI, nodeLabel, type Attr, type Dim, type Node } from './model';
import { convGeometry, type ConvGeometry } from './shapes';

const spatialAxes = (k: number[]) => k.map((_, i) => 2 + i);

/**
 * ConvTranspose attributes that undo a Conv/pool of geometry g from input shape xs to output
 * shape ys. Where a ceil-mode pool's last window runs past the input (and its padding), the
 * transpose would produce more than xs: the excess is cut through the end pads.
 */
function transposeAttrs(g: ConvGeometry, k: number[], group: number, xs: Dim[], ys: Dim[]): Record<string, Attr> {
  const spatial = k.length;
  const pads = g.pads.slice();
  const outputPadding = k.map((kk, i) => {
    const produced = ((ys[2 + i] as number) - 1) * g.strides[i] - g.pads[i] - g.pads[i + spatial] + g.dilations[i] * (kk - 1) + 1;
    const missing = (xs[2 + i] as number) - produced;
    if (missing < 0) pads[i + spatial] -= missing;
    return Math.max(0, missing);
  });
  return { strides: { ints: g.strides }, pads: { ints: pads }, dilations: { ints: g.dilations }, group: { i: group }, output_padding: { ints: outputPadding } };
}

/**
 * dW of a convolution with input `x` [N, C, ...] and output gradient `dy` [N, M, ...] in G
 * groups: [M, C/G, ...k]. It is itself a convolution over the batch: the input's channels
 * become the batch and the batch becomes channels (x^T: [C/G, G N, ...], group g holding
 * channel block g of every example), with dY^T [M, N, ...] as the kernel, stride <- the
 * forward dilation, dilation <- the forward stride; one Conv for every group at once.
 */
function convWeightGrad(ctx: GradContext, x: string, dy: string, xs: Dim[], k: number[], g: ConvGeometry, G: number): string {
  const { b } = ctx;
  const C = xs[1] as number, spatial = xs.slice(2) as number[];
  const swap = [1, 0, ...spatialAxes(k)];
  const xT = G === 1
    ? b.op('Transpose', [x], { perm: { ints: swap } })
    : b.op('Reshape', [
      b.op('Transpose', [b.op('Reshape', [x, b.int64s([0, G, C / G, ...spatial])])], { perm: { ints: [2, 1, 0, ...spatial.map((_, i) => 3 + i)] } }),
      b.int64s([C / G, -1, ...spatial]),
    ]);
  const conv = b.op('Conv', [xT, b.op('Transpose', [dy], { perm: { ints: swap } })], {
    strides: { ints: g.dilations }, dilations: { ints: g.strides }, pads: { ints: g.pads }, ...(G === 1 ? {} : { group: { i: G } }),
  });
  const cut = b.op('Slice', [conv, b.int64s(k.map(() => 0)), b.int64s(k), b.int64s(spatialAxes(k))]);
  return b.op('Transpose', [cut], { perm: { ints: swap } });
}

/** Conv: dX = ConvTranspose(dY, W), dB = sum of dY, dW above. */
export function convBackward(ctx: GradContext, n: Node, dy: string): void {
  const { b, needs, add, shape } = ctx;
  const [x, w, bias] = n.inputs;
  const xs = shape(x), ws = shape(w), ys = shape(n.outputs[0]);
  const k = ws.slice(2) as number[];
  const g = convGeometry(n, xs.length - 2);
  if (needs.has(x)) add(x, b.op('ConvTranspose', [dy, w], transposeAttrs(g, k, g.group, xs, ys)));
  if (bias && needs.has(bias)) add(bias, b.op('ReduceSum', [dy, b.int64s([0, ...spatialAxes(k)])], { keepdims: { i: 0 } }));
  if (needs.has(w)) add(w, convWeightGrad(ctx, x, dy, xs, k, g, g.group));
}

/**
 * ConvTranspose is the adjoint of a Conv in its input: dX = Conv(dY, W) with the same
 * strides, pads, dilations and groups (output_padding only added rows no input reaches).
 * Its weight [C, M/G, ...k] is a Conv weight with the roles of input and output swapped:
 * convWeightGrad(dY, X).
 */
export function convTransposeBackward(ctx: GradContext, n: Node, dy: string): void {
  const { b, needs, add, shape } = ctx;
  const [x, w, bias] = n.inputs;
  const ys = shape(n.outputs[0]), ws = shape(w);
  const k = ws.slice(2) as number[];
  const g = convGeometry(n, k.length);
  if (needs.has(x)) add(x, b.op('Conv', [dy, w], { strides: { ints: g.strides }, pads: { ints: g.pads }, dilations: { ints: g.dilations }, group: { i: g.group } }));
  if (bias && needs.has(bias)) add(bias, b.op('ReduceSum', [dy, b.int64s([0, ...spatialAxes(k)])], { keepdims: { i: 0 } }));
  if (needs.has(w)) add(w, convWeightGrad(ctx, dy, x, ys, k, g, g.group));
}

/**
 * The divisor of each window along one axis, as onnxruntime (and PyTorch) count it: the
 * entries inside the input, or with count_include_pad those inside the padded input, never
 * the part of a ceil-mode window that runs past the end padding.
 */
function windowCounts(h: number, out: number, k: number, stride: number, padBegin: number, padEnd: number, includePad: boolean): number[] {
  return Array.from({ length: out }, (_, o) => {
    const start = o * stride - padBegin, end = Math.min(start + k, h + padEnd);
    return includePad ? end - start : Math.min(end, h) - Math.max(start, 0);
  });
}

/**
 * AveragePool: dX = ConvTranspose(dY / divisor, ones) per channel. Where every window has the
 * same divisor (no ceil_mode, no padding left out of the count) the divisor goes into the
 * kernel; otherwise dY is scaled by a constant of the per-window divisors first.
 */
export function averagePoolBackward(ctx: GradContext, n: Node, dy: string): void {
  const { b, shape, fconst, add } = ctx;
  const a = n.inputs[0], y = n.outputs[0];
  const k = (n.attrs.kernel_shape as { ints: number[] }).ints;
  const xs = shape(a), ys = shape(y), spatial = xs.length - 2;
  const g = convGeometry(n, spatial);
  if (g.dilations.some((d) => d !== 1)) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeLabel(n)}": AveragePool with dilations is not supported`);
  const includePad = attrI(n, 'count_include_pad', 0) === 1;
  const counts = k.map((kk, i) => windowCounts(xs[2 + i] as number, ys[2 + i] as number, kk, g.strides[i], g.pads[i], g.pads[i + spatial], includePad));
  const C = xs[1] as number, area = k.reduce((p, q) => p * q, 1);
  const uniform = counts.every((c) => c.every((v, _, all) => v === all[0])) && counts.reduce((p, c) => p * c[0], 1) === area;
  const attrs = transposeAttrs(g, k, C, xs, ys);
  if (uniform) {
    add(a, b.op('ConvTranspose', [dy, fconst(new Array(C * area).fill(1 / area), [C, 1, ...k])], attrs));
    return;
  }
  // 1 / divisor for every output position: the outer product of the per-axis counts' inverses
  let inv = [1];
  for (const c of counts) inv = inv.flatMap((p) => c.map((v) => p / v));
  const scaled = b.op('Mul', [dy, fconst(inv, [1, 1, ...counts.map((c) => c.length)])]);
  add(a, b.op('ConvTranspose', [scaled, fconst(new Array(C * area).fill(1), [C, 1, ...k])], attrs));
}
