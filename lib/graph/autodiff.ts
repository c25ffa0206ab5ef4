// Derives a training graph from a forward ONNX model: chosen initializers become
// inputs, a loss is appended, and reverse-mode differentiation adds one output
// grad.<param> per parameter, all in standard ONNX operators.
import { rangeError, typeError } from '../errors';
import { checkKnownKeys, numberOption, optionKeys } from '../options';
import { GraphBuilder, reduceMean } from './builder';
import { DataType } from './schema';
import { elemTypes } from './elemTypes';
import { isNumeric, knownFromTensor, sliceIndices, tensorOf, type Consts } from './fold';
import { attrF, attrI, attrS, tensorNames, type Dim, type Model, type Node, type TensorValue } from './model';
import { BATCH_NORM_MODES, inferenceForm, withBatchStatistics, withDropoutMasks, type BatchNormMode } from './trainMode';
import { broadcast, constInts, inferShapes, padAmounts, padMode, reduceAxes } from './shapes';
import { averagePoolBackward, convBackward, convTransposeBackward } from './convGrads';
import type { GradContext } from './gradContext';
import { layerGradients, paddedBackward } from './layerGrads';
import { defaultParameters } from './params';
import { hasRecurrent, unrollRecurrent } from './recurrent';
import { checkModel } from './validate';
import { liftedToTrainingOpset } from './opsetLift';

export interface DeriveOptions {
  /** Name of the logits output (cross-entropy) or prediction (mse). */
  logits: string;
  /** Name of the new labels input (int64 [N] for cross-entropy; like logits for mse). Default "labels". */
  labels?: string;
  /** Parameters to train. Default: every float initializer of rank >= 1 that a gradient reaches (params.ts). */
  params?: string[];
  loss?: 'cross-entropy' | 'mse';
  labelSmoothing?: number;
  /**
   * Cross-entropy: the logits' class axis. Default -1, the last ([N, C], or [N, ..., C] with a
   * class per position); 1 is PyTorch's cross_entropy layout [N, C, d1, ...] (a segmentation
   * head, a tagger permuted for its loss). The labels take the logits' shape without it.
   */
  classAxis?: number;
  /**
   * BatchNormalization in the training graph (trainMode.ts): 'as-exported' (default) follows
   * each node's training_mode, 'batch' normalises every one by the batch's statistics (PyTorch's
   * model.train()), 'frozen' every one by its running statistics (model.eval()). Nodes using
   * batch statistics make their running statistics inputs and add outputs state.<name>.
   */
  batchNorm?: BatchNormMode;
  /**
   * Dropout in training mode: 'random' (default) as onnxruntime draws it, 'mask-inputs' as a
   * product with an input dropout_mask.<output> (0 or 1 / (1 - ratio) per entry) the caller
   * draws, e.g. from a seed (the Trainer does).
   */
  dropout?: 'random' | 'mask-inputs';
}

const DERIVE_OPTS = optionKeys<DeriveOptions>({ logits: true, labels: true, params: true, loss: true, labelSmoothing: true, classAxis: true, batchNorm: true, dropout: true });


/**
 * Static shapes of every tensor of a forward model (a symbol such as "N" for a dynamic dim),
 * with what shape inference folded: statically known tensors (int initializers, then Constant
 * nodes, Shape and the shape arithmetic after it) and a copy of the nodes, which the
 * derivation may extend (MaxPool indices) without touching the caller's model.
 */
function analyse(forward: Model): { consts: Consts; allNodes: Node[]; shapes: Map<string, Dim[]> } {
  const g = forward.graph;
  const consts: Consts = new Map();
  for (const t of g.initializers) if (t.dataType === DataType.INT64 || t.dataType === DataType.INT32) consts.set(t.name, knownFromTensor(t));
  // a Resize's float scales as an initializer (PyTorch writes them as a Constant node, folded anyway)
  const scales = new Set(g.nodes.filter((n) => n.opType === 'Resize' && n.inputs[2]).map((n) => n.inputs[2]));
  for (const t of g.initializers) if (scales.has(t.name) && !consts.has(t.name)) consts.set(t.name, knownFromTensor(t));
  const allNodes = g.nodes.map((n) => ({ ...n, inputs: n.inputs.slice(), outputs: n.outputs.slice() }));
  const shapes = inferShapes({ ...forward, graph: { ...g, nodes: allNodes } }, consts);
  return { consts, allNodes, shapes };
}

/**
 * The number of classes C of a classifier's logits [N, C] (or [N, ..., C]: one class per
 * position), as the cross-entropy loss of the training graph sees it (labels must lie in
 * [0, C): onnxruntime's OneHot would turn a label of C or more into an all-zero target, and -1
 * into class C - 1, without a word), and the shape of the labels past the batch dim ([] for
 * [N, C]; a dynamic dim as its symbol).
 */
export function logitsClasses(forward: Model, logits: string, classAxis?: number): { classes: number; positions: Dim[]; axis: number } {
  const shape = analyse(forward).shapes.get(logits);
  const axis = classAxisOf(shape, classAxis);
  return { classes: shape![axis] as number, positions: shape!.filter((_, i) => i !== 0 && i !== axis), axis };
}

/**
 * The model with `name`, a tensor one of its nodes computes, as a graph output too (its
 * shape and type inferred), so that a run can fetch it: onnxruntime fetches
 * graph outputs only. The model itself when it is one already, or when no node computes it
 * (the derivation then names the missing tensor).
 */
export function withOutput(forward: Model, name: string): Model {
  const g = forward.graph;
  if (typeof name !== 'string' || g.outputs.some((o) => o.name === name) || !g.nodes.some((n) => n.outputs.includes(name))) return forward;
  const shape = analyse(forward).shapes.get(name);
  return { ...forward, graph: { ...g, outputs: [...g.outputs, { name, elemType: elemTypes(g, g.nodes).get(name) ?? DataType.FLOAT, shape: shape?.slice() }] } };
}

/**
 * The shape of one example of a regression model's prediction (its shape past the batch
 * dim; a dynamic dim, a sequence length, as its symbol), which the mse loss compares with a
 * target of the same shape.
 */
export function predictionShape(forward: Model, prediction: string): Dim[] {
  const shape = analyse(forward).shapes.get(prediction);
  if (!shape || shape.length === 0) throw rangeError('ERR_SPARTAN_ONNX', `mse needs a prediction [N, ...] of known rank (got [${shape ?? ''}] for "${prediction}")`);
  return shape.slice(1);
}

/** The class axis of logits of this shape, normalised (1 to rank - 1), its C checked static. */
function classAxisOf(logitsShape: Dim[] | undefined, classAxis = -1): number {
  const rank = logitsShape?.length ?? 0;
  const bad = () => rangeError('ERR_SPARTAN_ONNX', `cross-entropy needs logits of shape [N, C], or [N, ..., C] for a class per position (classAxis 1: [N, C, ...]), with C known (got [${logitsShape ?? ''}])`);
  if (rank < 2) throw bad();
  if (!Number.isInteger(classAxis) || classAxis === 0 || classAxis <= -rank || classAxis >= rank)
    throw rangeError('ERR_SPARTAN_OPTION', `classAxis must be an axis of the logits other than the batch axis 0: 1 to ${rank - 1}, or -1 for the last (got ${classAxis})`);
  const axis = classAxis < 0 ? classAxis + rank : classAxis;
  if (typeof logitsShape![axis] !== 'number') throw bad();
  return axis;
}

export function deriveTrainingGraph(given: Model, opts: DeriveOptions): Model {
  try {
    return derive(given, opts);
  } catch (e) {
    // the derivation's own errors carry a code; anything else is a model it could not read
    // (an attribute of the wrong type, a hand-built node missing a field): one coded error still
    const code = (e as { code?: unknown })?.code;
    if (typeof code === 'string' && code.startsWith('ERR_SPARTAN_')) throw e;
    throw Object.assign(rangeError('ERR_SPARTAN_ONNX', `cannot derive a training graph from this model: ${(e as Error)?.message ?? String(e)} (a malformed node, attribute or shape?)`), { cause: e });
  }
}

function derive(given: Model, opts: DeriveOptions): Model {
  checkModel(given, { trained: opts?.params ?? 'default' }); // a malformed graph gives one onnxruntime refuses
  if (typeof opts?.logits !== 'string') throw typeError('ERR_SPARTAN_OPTION', 'logits must name an output of the model');
  checkKnownKeys(opts, DERIVE_OPTS, 'deriveTrainingGraph options');
  const mode = opts.batchNorm ?? 'as-exported';
  if (!BATCH_NORM_MODES.includes(mode)) throw rangeError('ERR_SPARTAN_OPTION', `batchNorm must be one of ${BATCH_NORM_MODES.join(', ')} (got ${JSON.stringify(mode)})`);
  if (opts.dropout !== undefined && opts.dropout !== 'random' && opts.dropout !== 'mask-inputs') throw rangeError('ERR_SPARTAN_OPTION', `dropout must be 'random' or 'mask-inputs' (got ${JSON.stringify(opts.dropout)})`);
  // read as opset 17 (opsetLift.ts): a training graph imports 17 or newer; below 11, refused
  given = liftedToTrainingOpset(given);
  given = withOutput(given, opts.logits); // logits an inner tensor: the training graph outputs it too
  let forward = mode === 'frozen' ? inferenceForm(given, 'batch-norm') : withBatchStatistics(given, mode);
  if (opts.dropout === 'mask-inputs') {
    // shape inference only where a training-mode Dropout needs its input's shape (not on every Trainer start-up)
    let shapes: Map<string, Dim[]> | undefined;
    const before = forward;
    const floatType = forward.graph.initializers.find((t) => t.dataType === DataType.DOUBLE || t.dataType === DataType.FLOAT)?.dataType ?? DataType.FLOAT;
    forward = withDropoutMasks(forward, (x) => (shapes ??= analyse(before).shapes).get(x), floatType);
  }
  if (hasRecurrent(forward)) {
    const { shapes } = analyse(forward);
    forward = unrollRecurrent(forward, (x) => shapes.get(x));
  }
  const g = forward.graph;
  if (!g.outputs.some((o) => o.name === opts.logits) && !g.nodes.some((n) => n.outputs.includes(opts.logits)))
    throw rangeError('ERR_SPARTAN_ONNX', `the model has no output or tensor named "${opts.logits}" (outputs: ${g.outputs.map((o) => o.name).join(', ')})`);
  const labels = opts.labels ?? 'labels';
  if (typeof labels !== 'string' || labels === '') throw typeError('ERR_SPARTAN_OPTION', `labels must be a non-empty input name (got ${JSON.stringify(labels)})`);
  const lossKind = opts.loss ?? 'cross-entropy';
  if (lossKind !== 'cross-entropy' && lossKind !== 'mse') throw rangeError('ERR_SPARTAN_OPTION', `loss must be 'cross-entropy' or 'mse' (got ${JSON.stringify(opts.loss)})`);
  const eps = numberOption(opts.labelSmoothing ?? 0, 'labelSmoothing', (v) => v >= 0 && v < 1, 'in [0, 1)');
  if (lossKind === 'mse' && opts.classAxis !== undefined) throw rangeError('ERR_SPARTAN_OPTION', 'classAxis says where the logits\' classes lie: it has no meaning for the mse loss');
  const floatInits = g.initializers.filter((t) => (t.dataType === DataType.FLOAT || t.dataType === DataType.DOUBLE) && t.dims.length >= 1);
  const params = opts.params ?? defaultParameters(forward).map((t) => t.name); // not running statistics, Resize scales, ...
  for (const p of params) if (!floatInits.some((t) => t.name === p)) throw rangeError('ERR_SPARTAN_ONNX', `parameter "${p}" is not a float initializer of the model`);
  const paramType = floatInits.find((t) => params.includes(t.name))?.dataType ?? DataType.FLOAT;

  const { consts, allNodes, shapes } = analyse(forward);
  // the float type each tensor is computed in: a rule's constants and casts take its node's
  // (a float32 island in a float64 model), the loss the logits'
  const types = elemTypes(g, allNodes);
  const floatOr = (t: number | undefined, fallback: number) => (t === DataType.FLOAT || t === DataType.DOUBLE ? t : fallback);
  const elemType = floatOr(types.get(opts.logits), paramType);
  let localType = elemType;
  // Nodes whose every output was folded to numbers leave the graph; the folded tensors that a
  // remaining node (or a graph output) reads become initializers. Nodes computing a value
  // that depends on a dynamic dim (a symbol) stay, and no gradient flows through them.
  const folded = (n: Node) => n.outputs.every((o) => isNumeric(consts.get(o)));
  const nodes = allNodes.filter((n) => !folded(n));
  const producedByFold = new Set(allNodes.filter(folded).flatMap((n) => n.outputs));
  const read = new Set([...nodes.flatMap((n) => n.inputs), ...g.outputs.map((o) => o.name)]);
  const foldedInits: TensorValue[] = [...producedByFold].filter((t) => read.has(t)).map((t) => tensorOf(t, consts.get(t)!));

  const taken = tensorNames(forward);
  // the names the derived graph adds must be new: a second definition makes a model onnxruntime refuses
  if (taken.has(labels))
    throw rangeError('ERR_SPARTAN_OPTION', `the model already has a tensor named "${labels}": name the training graph's labels input otherwise (the labels option; graph derive --labels)`);
  for (const [name, what] of [['loss', 'the loss output'], ...params.map((p) => [`grad.${p}`, `the gradient output of "${p}"`])])
    if (taken.has(name)) throw rangeError('ERR_SPARTAN_ONNX', `the model already has a tensor named "${name}", which the training graph needs for ${what}`);
  const b = new GraphBuilder('grad', taken);
  /** A constant of the float type of the node being differentiated (of the loss, before). */
  const fconst = (values: number[], dims: number[]) =>
    b.constant(localType === DataType.DOUBLE ? Float64Array.from(values) : Float32Array.from(values), dims, localType);
  /** x cast to that float type (a 0/1 indicator from a comparison, a count, an exponent). */
  const toElem = (x: string) => b.op('Cast', [x], { to: { i: localType } });

  // ---- loss --------------------------------------------------------------------
  const logitsShape = shapes.get(opts.logits)!;
  let dLogits: string;
  if (lossKind === 'cross-entropy') {
    // classes on the last axis; [N, ..., C] takes a label per position [N, ...] and averages over
    // all of them. Another class axis is moved last first, and the gradient moved back.
    const axis = classAxisOf(logitsShape, opts.classAxis), last = logitsShape.length - 1, C = logitsShape[axis] as number;
    const perm = Array.from({ length: last + 1 }, (_, i) => i).filter((i) => i !== axis).concat(axis);
    const moved = axis === last ? opts.logits : b.op('Transpose', [opts.logits], { perm: { ints: perm } });
    b.input(labels, DataType.INT64, logitsShape.filter((_, i) => i !== axis));
    // OneHot of 0s and 1s in float32 (onnxruntime has no float64 OneHot kernel), cast, then
    // smoothed in the model's type, so a float64 graph's target is float64-exact
    const onehot = b.op('OneHot', [labels, b.int64s([C]), b.constant(Float32Array.of(0, 1), [2], DataType.FLOAT)], { axis: { i: -1 } });
    const hot = elemType === DataType.FLOAT ? onehot : toElem(onehot);
    const target = eps === 0 ? hot : b.op('Add', [b.op('Mul', [hot, fconst([1 - eps], [])]), fconst([eps / C], [])]);
    // on the last axis, as the training graph's opset (17 or newer: opsetLift.ts) defines it
    const logp = b.op('LogSoftmax', [moved], { axis: { i: last } });
    // Without smoothing, the label's log-probability is picked by a Where, not multiplied by the
    // one-hot target: a class masked to -inf (log-probability -inf) then adds 0, not 0 * -inf = NaN
    const picked = eps === 0 ? b.op('Where', [b.op('Cast', [onehot], { to: { i: DataType.BOOL } }), logp, fconst([0], [])]) : b.op('Mul', [target, logp]);
    const per = b.op('ReduceSum', [picked, b.int64s([last])], { keepdims: { i: 0 } });
    b.op('Neg', [reduceMean(b, forward.opset, per, Array.from({ length: last }, (_, i) => i))], {}, ['loss']);
    const n = toElem(b.op('Size', [labels])); // positions averaged over: N for [N, C]
    const dMoved = b.op('Div', [b.op('Sub', [b.op('Softmax', [moved], { axis: { i: last } }), target]), n]);
    dLogits = axis === last ? dMoved : b.op('Transpose', [dMoved], { perm: { ints: perm.map((_, i) => perm.indexOf(i)) } });
  } else {
    b.input(labels, elemType, logitsShape.slice());
    const diff = b.op('Sub', [opts.logits, labels]);
    b.op('ReduceMean', [b.op('Mul', [diff, diff])], { keepdims: { i: 0 } }, ['loss']); // all axes, any opset
    const size = toElem(b.op('Size', [opts.logits]));
    dLogits = b.op('Div', [b.op('Mul', [diff, fconst([2], [])]), size]);
  }

  // ---- reverse mode --------------------------------------------------------------
  const needs = new Set<string>(params); // tensors that depend on a parameter (shape values never do)
  for (const n of nodes) if (n.inputs.some((i) => needs.has(i))) n.outputs.forEach((o) => consts.has(o) || needs.add(o));
  if (!needs.has(opts.logits)) throw rangeError('ERR_SPARTAN_ONNX', `"${opts.logits}" does not depend on any parameter`);
  const contributions = new Map<string, string[]>([[opts.logits, [dLogits]]]);
  const addedByNode = new Set<string>(); // the current node's inputs that took a gradient
  const add = (name: string, grad: string) => {
    if (!needs.has(name)) return;
    addedByNode.add(name);
    contributions.set(name, [...(contributions.get(name) ?? []), grad]);
  };
  const paramSet = new Set(params);
  /**
   * A parameter read directly by a node on the loss's path must take a gradient from that
   * node's rule: the rules cover the inputs a model trains (weights, biases, norms' scales), not
   * e.g. BatchNormalization's running mean, Clip's bounds or Pad's fill value, and an explicit
   * `params` naming one of those would otherwise get an all-zero gradient without a word.
   */
  const checkParamsTookGradient = (n: Node) => {
    n.inputs.forEach((x, i) => {
      if (paramSet.has(x) && !addedByNode.has(x))
        throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${n.name || n.outputs[0]}": no gradient for input ${i} of ${n.opType} ("${x}"), which the params name (leave "${x}" out of params to keep it fixed)`);
    });
  };
  const gradOf = (name: string): string | undefined => {
    const c = contributions.get(name);
    if (!c) return undefined;
    if (c.length === 1) return c[0];
    const sum = b.op('Sum', c);
    contributions.set(name, [sum]);
    return sum;
  };
  const shape = (x: string): Dim[] => shapes.get(x)!;
  /** Sums a broadcast gradient back to the shape of `x` (seen as `xs`: MatMul lifts 1-D operands). */
  const sumTo = (grad: string, outShape: Dim[], x: string, xs = shape(x)): string => {
    const lead = outShape.length - xs.length;
    const axes: number[] = [];
    for (let i = 0; i < outShape.length; i++) if (i < lead || (xs[i - lead] === 1 && outShape[i] !== 1)) axes.push(i);
    if (axes.length === 0) return grad;
    const r = b.op('ReduceSum', [grad, b.int64s(axes)], { keepdims: { i: 1 } });
    return b.op('Reshape', [r, b.op('Shape', [x])]);
  };

  /**
   * Y = A B (numpy matmul): dA = dY B^T and dB = A^T dY, each summed over the batch dims its
   * operand was broadcast along. A 1-D operand is lifted to a row (A) or a column (B), and dY
   * with it; the final Reshape to the operand's own shape drops the lifted dim again.
   */
  const matMulBackward = (a: string, c: string, dy: string) => {
    const as = shape(a), cs = shape(c);
    if (as.length === 2 && cs.length === 2) { // the plain case, as one Gemm each
      if (needs.has(a)) add(a, b.op('Gemm', [dy, c], { transB: { i: 1 } }));
      if (needs.has(c)) add(c, b.op('Gemm', [a, dy], { transA: { i: 1 } }));
      return;
    }
    const a2 = as.length === 1 ? [1, ...as] : as, c2 = cs.length === 1 ? [...cs, 1] : cs;
    const lifted = (t: string, axis: number) => b.op('Unsqueeze', [t, b.int64s([axis])]);
    let dy2 = cs.length === 1 ? lifted(dy, -1) : dy;
    if (as.length === 1) dy2 = lifted(dy2, -2);
    const y2: Dim[] = [...broadcast(a2.slice(0, -2), c2.slice(0, -2)), a2[a2.length - 2], c2[c2.length - 1]];
    const swapLast = (t: string, rank: number) => b.op('Transpose', [t], { perm: { ints: [...Array.from({ length: rank - 2 }, (_, i) => i), rank - 1, rank - 2] } });
    if (needs.has(a)) add(a, sumTo(b.op('MatMul', [dy2, swapLast(cs.length === 1 ? lifted(c, 1) : c, c2.length)]), y2, a, a2));
    if (needs.has(c)) add(c, sumTo(b.op('MatMul', [swapLast(as.length === 1 ? lifted(a, 0) : a, a2.length), dy2]), y2, c, c2));
  };

  /**
   * A Gather's indices as ScatterND positions ([...indices.shape, 1], int64, in [0, d)).
   * Constant indices (checked against the axis size d here) become a constant; indices fed at
   * run time (an embedding's token ids) are wrapped into [0, d) at run time (onnxruntime's
   * ScatterND takes negative ones too, but the ONNX spec does not promise it), the forward
   * Gather having already refused any outside [-d, d).
   */
  const gatherPositions = (n: Node, axis: number, d: Dim): string => {
    const c = n.inputs[1], label = n.name || n.outputs[0];
    if (isNumeric(consts.get(c))) { // (indices computed from a dynamic dim stay in the graph: the run-time path)
      const ids = constInts(n, 1, consts, 'indices').map((v) => {
        if (v >= 0 && (typeof d !== 'number' || v < d)) return v;
        if (typeof d !== 'number') throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${label}": a negative Gather index on axis ${axis}, whose size is not static`);
        if (v < -d || v >= d) throw rangeError('ERR_SPARTAN_ONNX', `node "${label}": Gather index ${v} is out of range for axis ${axis} of size ${d}`);
        return v + d;
      });
      return b.constant(BigInt64Array.from(ids, BigInt), [...consts.get(c)!.dims, 1], DataType.INT64);
    }
    const ids = b.op('Cast', [c], { to: { i: DataType.INT64 } }); // Gather takes int32 indices too
    // scalars, so that scalar indices stay scalar
    const scalar = (v: number) => b.constant(BigInt64Array.of(BigInt(v)), [], DataType.INT64);
    const size = b.op('Gather', [b.op('Shape', [n.inputs[0]]), scalar(axis)]);
    const wrapped = b.op('Where', [b.op('Less', [ids, scalar(0)]), b.op('Add', [ids, size]), ids]);
    return b.op('Unsqueeze', [wrapped, b.int64s([-1])]);
  };

  /**
   * The gradient of a Slice with any steps (strided, reversed): per sliced axis, the input
   * positions it kept (fold.ts's sliceIndices) are inverted into a constant Gather index that
   * takes each kept position's gradient and a zero slab (appended to dY) everywhere else.
   */
  const unslice = (dy: string, xs: Dim[], axes: number[], starts: number[], ends: number[], steps: number[]): string => {
    let g = dy;
    axes.forEach((ax, i) => {
      const d = xs[ax] as number; // Slice's shape inference required it known
      const kept = sliceIndices(d, starts[i], ends[i], steps[i]);
      if (kept.length === 0) { // nothing kept (g is empty on this axis): zeros of the input's extent
        g = b.op('Pad', [g, b.int64s(xs.map((_, j) => (j === ax ? d : 0)).concat(xs.map(() => 0)))]);
        return;
      }
      const inverse = new Array<number>(d).fill(kept.length); // the zero slab's position
      kept.forEach((p, j) => (inverse[p] = j));
      const zero = b.op('Mul', [b.op('Slice', [g, b.int64s([0]), b.int64s([1]), b.int64s([ax])]), fconst([0], [])]);
      g = b.op('Gather', [b.op('Concat', [g, zero], { axis: { i: ax } }), b.int64s(inverse)], { axis: { i: ax } });
    });
    return g;
  };

  const ctx: GradContext = { b, opset: forward.opset, consts, needs, shape, add, sumTo, fconst, toElem };

  for (let ni = nodes.length - 1; ni >= 0; ni--) {
    const n = nodes[ni];
    if (!n.outputs.some((o) => needs.has(o))) continue;
    addedByNode.clear();
    localType = floatOr(types.get(n.outputs[0]), paramType);
    if (n.opType === 'Split') { // dx = Concat of the output gradients (zeros where an output has none)
      if (!n.outputs.some((o) => contributions.has(o))) continue;
      const rank = shape(n.inputs[0]).length, axis = (attrI(n, 'axis', 0) + rank) % rank;
      const parts = n.outputs.map((o) => gradOf(o) ?? b.op('Mul', [o, fconst([0], [])]));
      add(n.inputs[0], b.op('Concat', parts, { axis: { i: axis } }));
      checkParamsTookGradient(n);
      continue;
    }
    const dy = gradOf(n.outputs[0]);
    if (!dy) continue;
    const [a, c] = n.inputs;
    const y = n.outputs[0];
    switch (n.opType) {
      case 'Gemm': {
        const alpha = attrF(n, 'alpha', 1), beta = attrF(n, 'beta', 1);
        const tA = attrI(n, 'transA', 0), tB = attrI(n, 'transB', 0);
        const al = { alpha: { f: alpha } };
        if (needs.has(a)) {
          const dA = !tA ? b.op('Gemm', [dy, c], { ...al, transB: { i: tB ? 0 : 1 } }) : b.op('Gemm', [c, dy], { ...al, transA: { i: tB }, transB: { i: 1 } });
          add(a, dA);
        }
        if (needs.has(c)) {
          const dB = !tB ? b.op('Gemm', [a, dy], { ...al, transA: { i: tA ? 0 : 1 } }) : b.op('Gemm', [dy, a], { ...al, transA: { i: 1 }, transB: { i: tA } });
          add(c, dB);
        }
        if (n.inputs[2] && needs.has(n.inputs[2])) {
          const scaled = beta === 1 ? dy : b.op('Mul', [dy, fconst([beta], [])]);
          add(n.inputs[2], sumTo(scaled, shape(y), n.inputs[2]));
        }
        break;
      }
      case 'MatMul':
        matMulBackward(a, c, dy);
        break;
      case 'Pad': { // constant mode: crop the gradient back to the input (zero-padding what the Pad cropped)
        const mode = padMode(n);
        if (mode !== 'constant') {
          paddedBackward(ctx, n, dy, mode);
          break;
        }
        const amounts = padAmounts(n, shape(a), consts);
        const uncropped = amounts.some((p) => p.before < 0 || p.after < 0)
          ? b.op('Pad', [dy, b.int64s([...amounts.map((p) => Math.max(0, -p.before)), ...amounts.map((p) => Math.max(0, -p.after))])])
          : dy;
        const cut = amounts.map((p, axis) => ({ ...p, axis })).filter((p) => p.before > 0 || p.after > 0);
        if (cut.some((p) => typeof p.dim !== 'number')) throw rangeError('ERR_SPARTAN_ONNX', `node "${n.name || y}": Pad needs known sizes on the axes it pads`);
        const starts = cut.map((p) => Math.max(0, p.before));
        add(a, cut.length ? b.op('Slice', [uncropped, b.int64s(starts), b.int64s(cut.map((p, i) => starts[i] + (p.dim as number))), b.int64s(cut.map((p) => p.axis))]) : uncropped);
        break;
      }
      case 'Pow': { // d x^p = p x^(p-1) (p y / x would divide by 0); d/dp = y ln x
        const p = toElem(c); // the exponent may have its own type
        add(a, sumTo(b.op('Mul', [dy, b.op('Mul', [p, b.op('Pow', [a, b.op('Sub', [p, fconst([1], [])])])])]), shape(y), a));
        if (needs.has(c)) add(c, sumTo(b.op('Mul', [dy, b.op('Mul', [y, b.op('Log', [a])])]), shape(y), c));
        break;
      }
      case 'Sqrt':
        add(a, b.op('Div', [b.op('Mul', [dy, fconst([0.5], [])]), y]));
        break;
      case 'Exp':
        add(a, b.op('Mul', [dy, y]));
        break;
      case 'Log':
        add(a, b.op('Div', [dy, a]));
        break;
      case 'Where': { // the gradient goes to the branch each entry was taken from
        const zero = fconst([0], []);
        if (needs.has(n.inputs[1])) add(n.inputs[1], sumTo(b.op('Where', [a, dy, zero]), shape(y), n.inputs[1]));
        if (needs.has(n.inputs[2])) add(n.inputs[2], sumTo(b.op('Where', [a, zero, dy]), shape(y), n.inputs[2]));
        break;
      }
      case 'Expand':
        add(a, sumTo(dy, shape(y), a));
        break;
      case 'Sum':
        for (const input of n.inputs) add(input, sumTo(dy, shape(y), input));
        break;
      case 'Abs':
        add(a, b.op('Mul', [dy, b.op('Sign', [a])]));
        break;
      case 'Clip': { // dy where min < x < max (bounds: inputs since opset 11, attributes before)
        const bound = (i: number, attr: string, cmp: 'Greater' | 'Less') =>
          n.inputs[i] ? b.op(cmp, [a, n.inputs[i]]) : n.attrs[attr] ? b.op(cmp, [a, fconst([attrF(n, attr, 0)], [])]) : undefined;
        const inside = [bound(1, 'min', 'Greater'), bound(2, 'max', 'Less')].filter((t): t is string => !!t);
        const keep = inside.length === 2 ? b.op('And', inside) : inside[0];
        add(a, keep ? b.op('Mul', [dy, toElem(keep)]) : dy);
        break;
      }
      case 'Softplus': // ln(1 + e^x)' = sigmoid(x)
        add(a, b.op('Mul', [dy, b.op('Sigmoid', [a])]));
        break;
      case 'HardSigmoid': { // max(0, min(1, alpha x + beta)): alpha where inside (0, 1)
        const alpha = attrF(n, 'alpha', 0.2), t = b.op('Add', [b.op('Mul', [a, fconst([alpha], [])]), fconst([attrF(n, 'beta', 0.5)], [])]);
        const inside = b.op('And', [b.op('Greater', [t, fconst([0], [])]), b.op('Less', [t, fconst([1], [])])]);
        add(a, b.op('Mul', [dy, b.op('Mul', [toElem(inside), fconst([alpha], [])])]));
        break;
      }
      case 'HardSwish': { // x hardsigmoid(x) (alpha 1/6, beta 1/2): 0 below -3, 1 above 3, (2x + 3) / 6 between
        const mid = b.op('Mul', [b.op('Add', [b.op('Mul', [a, fconst([2], [])]), fconst([3], [])]), fconst([1 / 6], [])]);
        const slope = b.op('Where', [b.op('Less', [a, fconst([-3], [])]), fconst([0], []), b.op('Where', [b.op('Greater', [a, fconst([3], [])]), fconst([1], []), mid])]);
        add(a, b.op('Mul', [dy, slope]));
        break;
      }
      case 'Elu': case 'Selu': { // x > 0: gamma; else y + gamma alpha (Elu: gamma 1)
        const selu = n.opType === 'Selu';
        const alpha = attrF(n, 'alpha', selu ? 1.67326319217681884765625 : 1), gamma = selu ? attrF(n, 'gamma', 1.05070102214813232421875) : 1;
        const slope = b.op('Where', [b.op('Greater', [a, fconst([0], [])]), fconst([gamma], []), b.op('Add', [y, fconst([gamma * alpha], [])])]);
        add(a, b.op('Mul', [dy, slope]));
        break;
      }
      case 'Max': case 'Min': { // to the inputs equal to the result, ties sharing evenly (as PyTorch)
        if (n.inputs.length === 1) {
          add(a, dy);
          break;
        }
        const hits = n.inputs.map((x) => toElem(b.op('Equal', [x, y])));
        const share = b.op('Div', [dy, b.op('Sum', hits)]);
        n.inputs.forEach((x, i) => add(x, sumTo(b.op('Mul', [share, hits[i]]), shape(y), x)));
        break;
      }
      case 'ReduceMax': case 'ReduceMin': { // to the entries equal to the result, ties sharing evenly
        const xs = shape(a), axes = reduceAxes(n, xs.length, consts);
        if (axes.length === 0) { // noop_with_empty_axes: the identity
          add(a, dy);
          break;
        }
        const keep = attrI(n, 'keepdims', 1);
        const yk = keep ? y : b.op('Unsqueeze', [y, b.int64s(axes)]), g0 = keep ? dy : b.op('Unsqueeze', [dy, b.int64s(axes)]);
        const hit = toElem(b.op('Equal', [a, yk]));
        const count = b.op('ReduceSum', [hit, b.int64s(axes)], { keepdims: { i: 1 } });
        add(a, b.op('Mul', [hit, b.op('Div', [g0, count])]));
        break;
      }
      case 'Reciprocal':
        add(a, b.op('Neg', [b.op('Mul', [dy, b.op('Mul', [y, y])])]));
        break;
      case 'Add': case 'Sub': {
        add(a, sumTo(dy, shape(y), a));
        add(c, sumTo(n.opType === 'Add' ? dy : b.op('Neg', [dy]), shape(y), c));
        break;
      }
      case 'Mul':
        add(a, sumTo(b.op('Mul', [dy, c]), shape(y), a));
        add(c, sumTo(b.op('Mul', [dy, a]), shape(y), c));
        break;
      case 'Div': {
        const da = b.op('Div', [dy, c]);
        add(a, sumTo(da, shape(y), a));
        if (needs.has(c)) add(c, sumTo(b.op('Neg', [b.op('Mul', [da, y])]), shape(y), c)); // -dy a / c^2 = -(dy / c) y
        break;
      }
      case 'Neg':
        add(a, b.op('Neg', [dy]));
        break;
      case 'Identity':
        add(a, dy);
        break;
      case 'Dropout': { // training: dY where the mask kept the entry, times 1 / (1 - ratio)
        const training = n.inputs[2] ? consts.get(n.inputs[2]) : undefined;
        if (!n.inputs[2] || (isNumeric(training) && training.values[0] === 0)) {
          add(a, dy);
          break;
        }
        const mask = n.outputs[1] || (n.outputs[1] = b.fresh('dropout_mask'));
        const ratio = n.inputs[1] ? toElem(n.inputs[1]) : fconst([0.5], []);
        let scale = b.op('Div', [fconst([1], []), b.op('Sub', [fconst([1], []), ratio])]);
        if (!isNumeric(training)) scale = b.op('Where', [b.op('Cast', [n.inputs[2]], { to: { i: DataType.BOOL } }), scale, fconst([1], [])]); // fed at run time
        add(a, b.op('Where', [mask, b.op('Mul', [dy, scale]), fconst([0], [])]));
        break;
      }
      case 'Relu':
        add(a, b.op('Mul', [dy, toElem(b.op('Greater', [a, fconst([0], [])]))]));
        break;
      case 'LeakyRelu': {
        const alpha = attrF(n, 'alpha', 0.01);
        const pos = b.op('Greater', [a, fconst([0], [])]);
        add(a, b.op('Mul', [dy, b.op('Where', [pos, fconst([1], []), fconst([alpha], [])])]));
        break;
      }
      case 'Sigmoid':
        add(a, b.op('Mul', [dy, b.op('Mul', [y, b.op('Sub', [fconst([1], []), y])])]));
        break;
      case 'Tanh':
        add(a, b.op('Mul', [dy, b.op('Sub', [fconst([1], []), b.op('Mul', [y, y])])]));
        break;
      case 'Flatten': case 'Reshape':
        add(a, b.op('Reshape', [dy, b.op('Shape', [a])]));
        break;
      case 'Transpose': {
        const perm = n.attrs.perm && 'ints' in n.attrs.perm ? n.attrs.perm.ints : shape(a).map((_, i, arr) => arr.length - 1 - i);
        const inv = perm.map((_, i) => perm.indexOf(i));
        add(a, b.op('Transpose', [dy], { perm: { ints: inv } }));
        break;
      }
      case 'Conv':
        convBackward(ctx, n, dy);
        break;
      case 'ConvTranspose':
        convTransposeBackward(ctx, n, dy);
        break;
      case 'Softmax': { // dx = y (dy - sum(dy y, axis))
        const axis = attrI(n, 'axis', -1);
        const dot = b.op('ReduceSum', [b.op('Mul', [dy, y]), b.int64s([axis])], { keepdims: { i: 1 } });
        add(a, b.op('Mul', [y, b.op('Sub', [dy, dot])]));
        break;
      }
      case 'LogSoftmax': { // dx = dy - exp(y) sum(dy, axis)
        const axis = attrI(n, 'axis', -1);
        add(a, b.op('Sub', [dy, b.op('Mul', [b.op('Exp', [y]), b.op('ReduceSum', [dy, b.int64s([axis])], { keepdims: { i: 1 } })])]));
        break;
      }
      case 'Erf': // d erf(x) = 2 / sqrt(pi) exp(-x^2)
        add(a, b.op('Mul', [dy, b.op('Mul', [fconst([2 / Math.sqrt(Math.PI)], []), b.op('Exp', [b.op('Neg', [b.op('Mul', [a, a])])])])]));
        break;
      case 'ReduceSum': case 'ReduceMean': {
        const xs = shape(a), axes = reduceAxes(n, xs.length, consts);
        let g0 = dy;
        if (!attrI(n, 'keepdims', 1) && axes.length) g0 = b.op('Unsqueeze', [dy, b.int64s(axes)]);
        if (n.opType === 'ReduceMean') {
          const count = axes.reduce((p, ax) => p * (typeof xs[ax] === 'number' ? (xs[ax] as number) : NaN), 1);
          // over a dynamic dim (the batch: BatchNormalization's statistics) the count is taken at run time
          const counted = Number.isFinite(count) ? fconst([count], []) : toElem(b.op('Div', [b.op('Size', [a]), b.op('Size', [y])]));
          g0 = b.op('Div', [g0, counted]);
        }
        add(a, b.op('Expand', [g0, b.op('Shape', [a])]));
        break;
      }
      case 'Unsqueeze': case 'Squeeze':
        add(a, b.op('Reshape', [dy, b.op('Shape', [a])]));
        break;
      case 'Cast': // dy back in the input's float type (a float32 island in a float64 model)
        add(a, b.op('Cast', [dy], { to: { i: floatOr(types.get(a), localType) } }));
        break;
      case 'Concat': { // each input's gradient is its slab of dy
        const rank = shape(y).length, axis = (attrI(n, 'axis', 0) + rank) % rank;
        if (n.inputs.every((input) => typeof shape(input)[axis] === 'number')) {
          let offset = 0;
          for (const input of n.inputs) {
            const size = shape(input)[axis] as number;
            if (needs.has(input)) add(input, b.op('Slice', [dy, b.int64s([offset]), b.int64s([offset + size]), b.int64s([axis])]));
            offset += size;
          }
          break;
        }
        // a dynamic extent on the axis (a sequence length): the offsets from the inputs' shapes at run time
        let start = b.int64s([0]);
        for (const input of n.inputs) {
          const end = b.op('Add', [start, b.op('Gather', [b.op('Shape', [input]), b.int64s([axis])], { axis: { i: 0 } })]);
          if (needs.has(input)) add(input, b.op('Slice', [dy, start, end, b.int64s([axis])]));
          start = end;
        }
        break;
      }
      case 'Slice': { // pad the gradient back to the input's extent
        const xs = shape(a), rank = xs.length;
        const starts = constInts(n, 1, consts, 'starts');
        const axes = n.inputs[3] ? constInts(n, 3, consts, 'axes') : starts.map((_, i) => i);
        const steps = n.inputs[4] ? constInts(n, 4, consts, 'steps') : starts.map(() => 1);
        if (steps.some((st) => st !== 1)) {
          add(a, unslice(dy, xs, axes.map((a0) => (a0 + rank) % rank), starts, constInts(n, 2, consts, 'ends'), steps));
          break;
        }
        const before = new Array<number>(rank).fill(0), after = new Array<number>(rank).fill(0);
        axes.forEach((a0, i) => {
          const ax = (a0 + rank) % rank, d = xs[ax] as number;
          const st = Math.min(d, Math.max(0, starts[i] < 0 ? starts[i] + d : starts[i]));
          before[ax] = st;
          after[ax] = d - st - (shape(y)[ax] as number);
        });
        add(a, b.op('Pad', [dy, b.int64s([...before, ...after])]));
        break;
      }
      case 'Gather': {
        // any axis, indices of any shape: move the axis to the front, scatter-add dY (ScatterND,
        // reduction add: repeated indices accumulate) into zeros, move it back
        const xs = shape(a), rank = xs.length, axis = (attrI(n, 'axis', 0) + rank) % rank;
        const q = shape(c).length;
        const where = gatherPositions(n, axis, xs[axis]);
        // data axes with `axis` first; dY axes with the q index axes first, then the others in order
        const permX = [axis, ...Array.from({ length: rank }, (_, i) => i).filter((i) => i !== axis)];
        const permY = [...Array.from({ length: q }, (_, i) => axis + i), ...Array.from({ length: axis }, (_, i) => i), ...Array.from({ length: rank - 1 - axis }, (_, i) => axis + q + i)];
        const moved = (t: string, perm: number[]) => (perm.every((p, i) => p === i) ? t : b.op('Transpose', [t], { perm: { ints: perm } }));
        const zeros = b.op('Mul', [moved(a, permX), fconst([0], [])]);
        const scattered = b.op('ScatterND', [zeros, where, moved(dy, permY)], { reduction: { s: 'add' } });
        add(a, moved(scattered, permX.map((_, i) => permX.indexOf(i))));
        break;
      }
      case 'Gelu': {
        if (forward.opset < 20) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${n.name || y}": operator Gelu needs opset >= 20 (the model imports opset ${forward.opset})`);
        const approx = attrS(n, 'approximate', 'none');
        const half = fconst([0.5], []), one = fconst([1], []);
        let dgelu: string;
        if (approx === 'none') { // d/dx x Phi(x) = Phi(x) + x phi(x)
          const cdf = b.op('Mul', [half, b.op('Add', [one, b.op('Erf', [b.op('Mul', [a, fconst([Math.SQRT1_2], [])])])])]);
          const pdf = b.op('Mul', [fconst([1 / Math.sqrt(2 * Math.PI)], []), b.op('Exp', [b.op('Mul', [b.op('Mul', [a, a]), fconst([-0.5], [])])])]);
          dgelu = b.op('Add', [cdf, b.op('Mul', [a, pdf])]);
        } else if (approx === 'tanh') { // y = x/2 (1 + tanh(u)), u = c (x + k x^3)
          const c0 = Math.sqrt(2 / Math.PI), k = 0.044715;
          const x2 = b.op('Mul', [a, a]);
          const t = b.op('Tanh', [b.op('Mul', [fconst([c0], []), b.op('Add', [a, b.op('Mul', [fconst([k], []), b.op('Mul', [x2, a])])])])]);
          const du = b.op('Add', [fconst([c0], []), b.op('Mul', [fconst([3 * k * c0], []), x2])]);
          const sech2 = b.op('Sub', [one, b.op('Mul', [t, t])]);
          dgelu = b.op('Mul', [half, b.op('Add', [b.op('Add', [one, t]), b.op('Mul', [b.op('Mul', [a, sech2]), du])])]);
        } else throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${n.name || y}": Gelu approximate="${approx}" (expected "none" or "tanh")`);
        add(a, b.op('Mul', [dy, dgelu]));
        break;
      }
      case 'BatchNormalization': { // inference form: y = (x - mean) / sqrt(var + eps) * scale + bias
        const [, scale, bias, mean, variance] = n.inputs;
        const eps = attrF(n, 'epsilon', 1e-5);
        const rank = shape(a).length;
        const bshape = b.int64s([1, -1, ...new Array(rank - 2).fill(1)]);
        const inv = b.op('Reshape', [b.op('Div', [fconst([1], []), b.op('Sqrt', [b.op('Add', [variance, fconst([eps], [])])])]), bshape]);
        if (needs.has(a)) add(a, b.op('Mul', [dy, b.op('Mul', [inv, b.op('Reshape', [scale, bshape])])]));
        const others = [0, ...Array.from({ length: rank - 2 }, (_, i) => 2 + i)];
        if (needs.has(scale)) {
          const xhat = b.op('Mul', [b.op('Sub', [a, b.op('Reshape', [mean, bshape])]), inv]);
          add(scale, b.op('ReduceSum', [b.op('Mul', [dy, xhat]), b.int64s(others)], { keepdims: { i: 0 } }));
        }
        if (needs.has(bias)) add(bias, b.op('ReduceSum', [dy, b.int64s(others)], { keepdims: { i: 0 } }));
        break;
      }
      // comparisons and logic: boolean outputs (a Where's condition, a Cast mask), piecewise
      // constant in their inputs, a parameter read here included: no gradient, nothing to check
      case 'Greater': case 'Less': case 'Equal': case 'GreaterOrEqual': case 'LessOrEqual':
      case 'And': case 'Or': case 'Xor': case 'Not':
        continue;
      case 'MaxPool': {
        // scatter dY onto the argmax positions (the forward node is given an Indices output),
        // which the scatter reads row-major: storage_order 1 (column-major indices) is set back
        // to 0 where the Indices output is the derivation's own, refused where the model reads it
        if (attrI(n, 'storage_order', 0) !== 0) {
          if (n.outputs[1]) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${n.name || y}": MaxPool with storage_order=1 whose Indices output the model reads`);
          n.attrs = { ...n.attrs, storage_order: { i: 0 } };
        }
        const idx = n.outputs[1] || (n.outputs[1] = b.fresh('maxpool_indices'));
        const flatLen = b.int64s([-1]);
        const zeros = b.op('Mul', [b.op('Reshape', [a, flatLen]), fconst([0], [])]);
        const scattered = b.op('ScatterElements', [zeros, b.op('Reshape', [idx, flatLen]), b.op('Reshape', [dy, flatLen])], { axis: { i: 0 }, reduction: { s: 'add' } });
        add(a, b.op('Reshape', [scattered, b.op('Shape', [a])]));
        break;
      }
      case 'AveragePool':
        averagePoolBackward(ctx, n, dy);
        break;
      case 'GlobalAveragePool': {
        const xs = shape(a);
        const area = xs.slice(2).reduce((p: number, q) => p * (q as number), 1);
        add(a, b.op('Expand', [b.op('Div', [dy, fconst([area], [])]), b.op('Shape', [a])]));
        break;
      }
      default: {
        const rule = layerGradients[n.opType];
        if (!rule) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${n.name || y}": no gradient for operator ${n.opType}`);
        rule(ctx, n, dy);
      }
    }
    checkParamsTookGradient(n);
  }

  const paramInits = new Map(g.initializers.filter((t) => params.includes(t.name)).map((t) => [t.name, t]));
  const gradOutputs = params.map((p) => {
    const gname = `grad.${p}`;
    const src = gradOf(p);
    const t = paramInits.get(p)!;
    localType = t.dataType;
    if (src) b.op('Identity', [src], {}, [gname]);
    else b.op('Mul', [p, fconst([0], [])], {}, [gname]); // unused parameter: zero gradient
    return { name: gname, elemType: t.dataType, shape: t.dims.slice() as Dim[] };
  });

  const allOut = [...nodes, ...b.nodes];
  // constants only folded nodes read (a Gather index into a folded shape) would make
  // onnxruntime warn on every session it opens
  const used = new Set([...allOut.flatMap((n) => n.inputs), ...g.outputs.map((o) => o.name)]);
  return {
    ...forward,
    producerName: 'spartan-sparsity',
    graph: {
      name: `${g.name}-training`,
      nodes: allOut,
      inputs: [...g.inputs, ...b.inputs, ...params.map((p) => ({ name: p, elemType: paramInits.get(p)!.dataType, shape: paramInits.get(p)!.dims.slice() as Dim[] }))],
      outputs: [{ name: 'loss', elemType, shape: [] }, ...gradOutputs, ...g.outputs],
      initializers: [...g.initializers.filter((t) => !params.includes(t.name)), ...foldedInits, ...b.initializers].filter((t) => used.has(t.name)),
      valueInfo: [],
    },
  };
}
