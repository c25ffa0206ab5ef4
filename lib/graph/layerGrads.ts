// Gradients of layer operators PyTorch exports beyond the core set: PRelu, Tile, CumSum,
// LayerNormalization and InstanceNormalization (GroupNorm exports as one), Resize, the
// reflect / edge / wrap Pad, the norm and log-sum-exp reductions, Einsum.
import { rangeError } from '../errors';
import { applyAdjoint, padMaps, resizeMaps } from './axisMaps';
import { reduceMean } from './builder';
import type { GradContext, GradRule } from './gradContext';
import { attrF, attrI, nodeLabel, type Node } from './model';
import { constInts, padAmounts, parseEinsum, reduceAxes, resizeGeometry, type PadMode } from './shapes';

/** PRelu: y = x (x >= 0), slope x (x < 0); the slope broadcasts to x. */
const prelu: GradRule = (ctx, n, dy) => {
  const { b, fconst, add, sumTo, shape, needs } = ctx;
  const [x, slope] = n.inputs, y = n.outputs[0];
  const neg = b.op('Less', [x, fconst([0], [])]);
  add(x, b.op('Mul', [dy, b.op('Where', [neg, slope, fconst([1], [])])]));
  if (needs.has(slope)) add(slope, sumTo(b.op('Where', [neg, b.op('Mul', [dy, x]), fconst([0], [])]), shape(y), slope));
};

/** Tile: dY seen as [r0, d0, r1, d1, ...] summed over the repeats. */
const tile: GradRule = (ctx, n, dy) => {
  const { b, shape, consts, add } = ctx;
  const x = n.inputs[0], xs = shape(x), reps = constInts(n, 1, consts, 'repeats');
  const symbolic = xs.filter((d) => typeof d !== 'number');
  if (symbolic.length > 1 || xs.some((d, i) => typeof d !== 'number' && reps[i] !== 1))
    throw rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": Tile needs known sizes on the axes it repeats, and at most one unknown size`);
  const interleaved = xs.flatMap((d, i) => [reps[i], typeof d === 'number' ? d : -1]);
  const summed = b.op('ReduceSum', [b.op('Reshape', [dy, b.int64s(interleaved)]), b.int64s(xs.map((_, i) => 2 * i))], { keepdims: { i: 0 } });
  add(x, summed);
};

/** CumSum: the gradient is the cumulative sum the other way (same exclusive flag). */
const cumSum: GradRule = (ctx, n, dy) => {
  const reverse = attrI(n, 'reverse', 0), exclusive = attrI(n, 'exclusive', 0);
  ctx.add(n.inputs[0], ctx.b.op('CumSum', [dy, n.inputs[1]], { reverse: { i: 1 - reverse }, exclusive: { i: exclusive } }));
};

/**
 * x normalised over `axes`: x^ = (x - mu) inv with inv = 1 / sqrt(var + eps). Returns x^ and
 * adds dX = inv (g - mean(g) - x^ mean(g x^)) for g = dY times the scale.
 */
function normalizedBackward(ctx: GradContext, x: string, axes: number[], eps: number, g: string | undefined): string {
  const { b, fconst, opset, add } = ctx;
  const mean = (t: string) => reduceMean(b, opset, t, axes, 1);
  const d = b.op('Sub', [x, mean(x)]);
  const inv = b.op('Div', [fconst([1], []), b.op('Sqrt', [b.op('Add', [mean(b.op('Mul', [d, d])), fconst([eps], [])])])]);
  const xhat = b.op('Mul', [d, inv]);
  if (g) add(x, b.op('Mul', [inv, b.op('Sub', [b.op('Sub', [g, mean(g)]), b.op('Mul', [xhat, mean(b.op('Mul', [g, xhat]))])])]));
  return xhat;
}

/** LayerNormalization: over the axes from `axis` on; scale and bias have the shape of those axes. */
const layerNorm: GradRule = (ctx, n, dy) => {
  const { b, shape, needs, add, sumTo } = ctx;
  const [x, scale, bias] = n.inputs;
  const xs = shape(x), rank = xs.length, axis = (attrI(n, 'axis', -1) + rank) % rank;
  const axes = Array.from({ length: rank - axis }, (_, i) => axis + i);
  const xhat = normalizedBackward(ctx, x, axes, attrF(n, 'epsilon', 1e-5), needs.has(x) ? b.op('Mul', [dy, scale]) : undefined);
  // scale and bias broadcast against the normalized axes ([D], [1, D], [C, D] for axis -2):
  // summed back to their own shapes
  if (needs.has(scale)) add(scale, sumTo(b.op('Mul', [dy, xhat]), xs, scale));
  if (bias && needs.has(bias)) add(bias, sumTo(dy, xs, bias));
};

/** InstanceNormalization: per example and channel over the spatial axes; scale and bias are [C]. */
const instanceNorm: GradRule = (ctx, n, dy) => {
  const { b, shape, needs, add } = ctx;
  const [x, scale, bias] = n.inputs;
  const rank = shape(x).length, spatial = Array.from({ length: rank - 2 }, (_, i) => 2 + i);
  const perChannel = (t: string) => b.op('Reshape', [t, b.int64s([1, -1, ...spatial.map(() => 1)])]);
  const xhat = normalizedBackward(ctx, x, spatial, attrF(n, 'epsilon', 1e-5), needs.has(x) ? b.op('Mul', [dy, perChannel(scale)]) : undefined);
  const summed = (t: string) => b.op('ReduceSum', [t, b.int64s([0, ...spatial])], { keepdims: { i: 0 } });
  if (needs.has(scale)) add(scale, summed(b.op('Mul', [dy, xhat])));
  if (needs.has(bias)) add(bias, summed(dy));
};

/** Resize (nearest, linear): its per-axis maps, transposed (axisMaps.ts). */
const resize: GradRule = (ctx, n, dy) => {
  const x = n.inputs[0], xs = ctx.shape(x);
  const maps = resizeMaps(n, resizeGeometry(n, xs, ctx.consts));
  ctx.add(x, applyAdjoint(ctx.b, dy, xs.length, maps, ctx.fconst));
};

/** Pad in reflect, edge or wrap mode (constant mode is autodiff's own case). */
export function paddedBackward(ctx: GradContext, n: Node, dy: string, mode: Exclude<PadMode, 'constant'>): void {
  const x = n.inputs[0], xs = ctx.shape(x);
  const maps = padMaps(n, mode, padAmounts(n, xs, ctx.consts));
  ctx.add(x, applyAdjoint(ctx.b, dy, xs.length, maps, ctx.fconst));
}

/**
 * ReduceL1, ReduceL2, ReduceSumSquare, ReduceLogSumExp: dX = dY (broadcast back over the
 * reduced axes) times sign(x), x / y (0 where y = 0, as PyTorch's norm), 2 x, exp(x - y).
 */
const normReduce: GradRule = (ctx, n, dy) => {
  const { b, fconst, shape, consts, add } = ctx;
  const x = n.inputs[0], y = n.outputs[0];
  const axes = reduceAxes(n, shape(x).length, consts);
  if (axes.length === 0 && attrI(n, 'noop_with_empty_axes', 0)) { // the input unchanged
    add(x, dy);
    return;
  }
  const kept = (t: string) => (attrI(n, 'keepdims', 1) ? t : b.op('Unsqueeze', [t, b.int64s(axes)]));
  const g = kept(dy), yk = kept(y);
  let slope: string;
  switch (n.opType) {
    case 'ReduceL1': slope = b.op('Sign', [x]); break;
    case 'ReduceL2': {
      const zero = b.op('Equal', [yk, fconst([0], [])]);
      slope = b.op('Where', [zero, fconst([0], []), b.op('Div', [x, b.op('Where', [zero, fconst([1], []), yk])])]);
      break;
    }
    case 'ReduceSumSquare': slope = b.op('Mul', [x, fconst([2], [])]); break;
    default: slope = b.op('Exp', [b.op('Sub', [x, yk])]); // ReduceLogSumExp
  }
  add(x, b.op('Mul', [g, slope]));
};

/**
 * Einsum: the gradient of an operand is the Einsum of dY with the other operands onto that
 * operand's term. Indices summed within the operand alone are broadcast back; an index
 * repeated within one term (a diagonal) is refused.
 */
const einsum: GradRule = (ctx, n, dy) => {
  const { b, shape, needs, add } = ctx;
  const { inputs, output } = parseEinsum(n);
  n.inputs.forEach((x, i) => {
    if (!needs.has(x)) return;
    const term = inputs[i];
    if (new Set(term).size !== term.length)
      throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeLabel(n)}": no gradient for Einsum term "${term.join('')}" with a repeated index`);
    const others = inputs.filter((_, j) => j !== i);
    const present = new Set([...output, ...others.flat()]);
    const reached = term.filter((c) => present.has(c));
    let g: string;
    if (others.length === 0 && reached.join('') === output.join('')) g = dy;
    else {
      const equation = `${[output, ...others].map((t) => t.join('')).join(',')}->${reached.join('')}`;
      g = b.op('Einsum', [dy, ...n.inputs.filter((_, j) => j !== i)], { equation: { s: equation } });
    }
    if (reached.length < term.length) {
      const missing = term.map((c, j) => (present.has(c) ? -1 : j)).filter((j) => j >= 0);
      g = b.op('Expand', [b.op('Unsqueeze', [g, b.int64s(missing)]), b.op('Shape', [x])]);
    }
    add(x, g);
  });
};

export const layerGradients: Record<string, GradRule> = {
  PRelu: prelu,
  Tile: tile,
  CumSum: cumSum,
  LayerNormalization: layerNorm,
  InstanceNormalization: instanceNorm,
  Resize: resize,
  ReduceL1: normReduce,
  ReduceL2: normReduce,
  ReduceSumSquare: normReduce,
  ReduceLogSumExp: normReduce,
  Einsum: einsum,
};
