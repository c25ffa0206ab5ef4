// What a forward model computes in training and in inference differs in two operators:
// BatchNormalization normalises by the batch's own statistics and updates its running
// averages (training_mode = 1), or by those running averages (inference); Dropout drops
// (training_mode true) or passes its input through. This file turns a model into either form.
import { rangeError } from '../errors';
import { GraphBuilder, reduceMean } from './builder';
import { attrF, attrI, isRead, nodeLabel as label, tensorNames, type Dim, type Model, type Node, type ValueInfo } from './model';
import { constantNode, knownFromTensor } from './fold';
import { DataType } from './schema';

/** How the training graph treats BatchNormalization. */
export type BatchNormMode = 'as-exported' | 'batch' | 'frozen';

export const BATCH_NORM_MODES: readonly BatchNormMode[] = ['as-exported', 'batch', 'frozen'];

const isBatchNorm = (n: Node) => n.opType === 'BatchNormalization' && (!n.domain || n.domain === 'ai.onnx');

/** The running statistics (mean, variance) each BatchNormalization node reads. */
export function runningStatistics(model: Model): { node: Node; mean: string; variance: string }[] {
  return model.graph.nodes.filter(isBatchNorm).map((node) => ({ node, mean: node.inputs[3], variance: node.inputs[4] }));
}

/** The names of every running statistic: state the training graph updates, not parameters. */
export function runningStatisticNames(model: Model): Set<string> {
  return new Set(runningStatistics(model).flatMap((s) => [s.mean, s.variance]));
}

/** The name of the training graph's output holding a running statistic's next value. */
export const stateOutput = (name: string) => `state.${name}`;

/** Refuses a node output that something reads: the rewritten node no longer produces it. */
function unread(model: Model, n: Node, outputs: string[], why: string): void {
  for (const o of outputs)
    if (o && isRead(model, o))
      throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${label(n)}": its output "${o}" is read by the model, but ${why}`);
}

/** A BatchNormalization node in inference form: training_mode 0, the one output Y. */
function batchNormInference(model: Model, n: Node): Node {
  if (attrI(n, 'training_mode', 0) === 0 && n.outputs.length <= 1) return n;
  unread(model, n, n.outputs.slice(1), 'in inference form BatchNormalization does not output its updated statistics');
  const { training_mode: _mode, ...attrs } = n.attrs;
  return { ...n, attrs, outputs: [n.outputs[0]] };
}

/**
 * The model as it runs for inference: BatchNormalization with its running statistics
 * (training_mode 0, one output) and, for 'all', Dropout as the identity (no training_mode
 * input). The input model is not changed.
 */
export function inferenceForm(model: Model, which: 'all' | 'batch-norm' = 'all'): Model {
  const nodes = model.graph.nodes.map((n) => {
    if (isBatchNorm(n)) return batchNormInference(model, n);
    if (which === 'all' && n.opType === 'Dropout' && (!n.domain || n.domain === 'ai.onnx') && n.inputs.length > 2) return { ...n, inputs: n.inputs.slice(0, 2) };
    return n;
  });
  if (nodes.every((n, i) => n === model.graph.nodes[i])) return model;
  // the Constant nodes and initializers that only fed a dropped training_mode go too
  // (onnxruntime would warn about each on every session)
  const read = new Set([...nodes.flatMap((n) => n.inputs), ...model.graph.outputs.map((o) => o.name)]);
  const orphan = new Set(model.graph.nodes.flatMap((n, i) => n.inputs.filter((x) => x && !nodes[i].inputs.includes(x) && !read.has(x))));
  return {
    ...model,
    graph: {
      ...model.graph,
      nodes: nodes.filter((n) => !(n.opType === 'Constant' && n.outputs.every((o) => orphan.has(o)))),
      initializers: model.graph.initializers.filter((t) => !orphan.has(t.name)),
    },
  };
}

/**
 * Rewrites the chosen BatchNormalization nodes ('batch': all of them; 'as-exported': those
 * with training_mode 1) to normalise by the batch's statistics in standard operators (so the
 * derivation differentiates through the mean and variance), and adds, per running statistic,
 * an output `state.<name>` with its next value, the running statistic becoming an input:
 *   mean' = momentum mean + (1 - momentum) batch mean
 *   var'  = momentum var  + (1 - momentum) batch variance * n / (n - 1)
 * (ONNX's momentum, PyTorch's 1 - momentum; the unbiased variance, as PyTorch keeps it, n
 * being the values per channel; n = 1 counts as n - 1 = 1, where PyTorch refuses the batch).
 * The other BatchNormalization nodes take inference form.
 */
export function withBatchStatistics(model: Model, mode: Exclude<BatchNormMode, 'frozen'>): Model {
  const g = model.graph;
  const chosen = (n: Node) => isBatchNorm(n) && (mode === 'batch' || attrI(n, 'training_mode', 0) !== 0);
  if (!g.nodes.some(chosen)) return inferenceForm(model, 'batch-norm');
  const readers = new Map<string, string>();
  for (const { node, mean, variance } of runningStatistics(model)) {
    if (!chosen(node)) continue;
    for (const s of [mean, variance]) {
      if (!s) throw rangeError('ERR_SPARTAN_ONNX', `node "${label(node)}": BatchNormalization needs 5 inputs`);
      if (readers.has(s))
        throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `BatchNormalization nodes "${readers.get(s)}" and "${label(node)}" share the running statistic "${s}", which each would update`);
      readers.set(s, label(node));
    }
  }
  const inits = new Map(g.initializers.map((t) => [t.name, t]));
  const inputs = new Map(g.inputs.map((v) => [v.name, v]));
  const typeOf = (n: Node, s: string): number => {
    const t = inits.get(s)?.dataType ?? inputs.get(s)?.elemType;
    if (t === undefined) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${label(n)}": the running statistic "${s}" must be an initializer or an input of the model to be updated`);
    if (t !== DataType.FLOAT && t !== DataType.DOUBLE) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${label(n)}": the running statistic "${s}" has ONNX type ${t} (float or double only)`);
    return t;
  };

  const taken = tensorNames(model);
  const b = new GraphBuilder('bn', taken);
  const nodes: Node[] = [];
  const stateInputs: ValueInfo[] = [], stateOutputs: ValueInfo[] = [];
  const statistics = new Set<string>(); // every running mean and variance read in batch mode
  for (const n of g.nodes) {
    if (!chosen(n)) {
      nodes.push(isBatchNorm(n) ? batchNormInference(model, n) : n);
      continue;
    }
    const [x, scale, bias, mean, variance] = n.inputs;
    const elem = typeOf(n, mean);
    if (typeOf(n, variance) !== elem) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${label(n)}": its running mean and variance have different types`);
    const num = (v: number) => b.constant(elem === DataType.DOUBLE ? Float64Array.of(v) : Float32Array.of(v), [], elem);
    // ONNX float attributes are float32: a model built in memory holds what its file would
    const eps = Math.fround(attrF(n, 'epsilon', 1e-5)), momentum = Math.fround(attrF(n, 'momentum', 0.9));
    const start = b.nodes.length;
    // [N, C, ...] as [N, C, L]: one form for every rank
    const x3 = b.op('Reshape', [x, b.int64s([0, 0, -1])]);
    const perChannel = (t: string) => b.op('Reshape', [t, b.int64s([1, -1, 1])]);
    const mu = reduceMean(b, model.opset, x3, [0, 2], 1);
    const centred = b.op('Sub', [x3, mu]);
    const varB = reduceMean(b, model.opset, b.op('Mul', [centred, centred]), [0, 2], 1);
    const inv = b.op('Div', [num(1), b.op('Sqrt', [b.op('Add', [varB, num(eps)])])]);
    const y3 = b.op('Add', [b.op('Mul', [centred, b.op('Mul', [inv, perChannel(scale)])]), perChannel(bias)]);
    b.op('Reshape', [y3, b.op('Shape', [x])], {}, [n.outputs[0]]);
    // the running statistics' next values
    const flat = (t: string) => b.op('Reshape', [t, b.int64s([-1])]);
    const blend = (old: string, batch: string, out: string) =>
      b.op('Add', [b.op('Mul', [old, num(momentum)]), b.op('Mul', [flat(batch), num(1 - momentum)])], {}, [out]);
    const count = b.op('Cast', [b.op('Div', [b.op('Size', [x]), b.op('Gather', [b.op('Shape', [x]), b.int64s([1])])])], { to: { i: elem } });
    const unbiased = b.op('Div', [b.op('Mul', [varB, count]), b.op('Max', [b.op('Sub', [count, num(1)]), num(1)])]);
    blend(mean, mu, stateOutput(mean));
    blend(variance, unbiased, stateOutput(variance));
    // a training-mode export's own outputs for the updated statistics
    n.outputs.slice(1, 3).forEach((o, i) => o && b.op('Identity', [stateOutput(i === 0 ? mean : variance)], {}, [o]));
    nodes.push(...b.nodes.slice(start));
    for (const s of [mean, variance]) {
      const dims = inits.get(s)?.dims ?? inputs.get(s)?.shape;
      statistics.add(s);
      if (!inputs.has(s)) stateInputs.push({ name: s, elemType: elem, shape: dims?.slice() });
      stateOutputs.push({ name: stateOutput(s), elemType: elem, shape: dims?.slice() });
    }
  }
  // every statistic leaves the initializers, also one an old exporter listed as a graph input
  // too (keep_initializers_as_inputs): left there, it would be taken for a parameter
  const moved = statistics;
  return {
    ...model,
    graph: {
      ...g,
      nodes,
      inputs: [...g.inputs, ...stateInputs],
      outputs: [...g.outputs, ...stateOutputs],
      initializers: [...g.initializers.filter((t) => !moved.has(t.name)), ...b.initializers],
    },
  };
}

/** The value of a constant scalar input: an initializer or a Constant node (fold.ts reads both). */
function constantScalar(model: Model, name: string): number | undefined {
  const init = model.graph.initializers.find((t) => t.name === name);
  const node = init ? undefined : model.graph.nodes.find((n) => n.opType === 'Constant' && n.outputs[0] === name);
  const known = init ? knownFromTensor(init) : node ? constantNode(node) : undefined;
  return known?.values.length === 1 && typeof known.values[0] === 'number' ? known.values[0] : undefined;
}

/** The name of the training graph's input that holds a Dropout's mask (with 'mask-inputs'). */
export const dropoutMaskInput = (n: Node) => `dropout_mask.${n.outputs[0]}`;

/** The Dropout nodes that drop in training (training_mode a constant true), with their ratio (constant, or 0.5). */
export function trainingDropouts(model: Model): { node: Node; ratio: number }[] {
  return model.graph.nodes
    .filter((n) => n.opType === 'Dropout' && (!n.domain || n.domain === 'ai.onnx') && n.inputs[2] && constantScalar(model, n.inputs[2]) === 1)
    .map((node) => {
      const ratio = node.inputs[1] ? constantScalar(model, node.inputs[1]) : 0.5;
      if (ratio === undefined || !(ratio >= 0 && ratio < 1))
        throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${label(node)}": a Dropout in training mode needs a constant ratio in [0, 1) (got ${node.inputs[1]})`);
      return { node, ratio };
    });
}

/**
 * Each Dropout in training mode as a product with an input `dropout_mask.<output>` of the
 * shape of its input, holding 0 (dropped) or 1 / (1 - ratio): whoever runs the graph draws
 * the mask, so dropout is reproducible from a seed (onnxruntime's own Dropout draws from a
 * generator no seed reaches). `shapeOf` gives each Dropout input's shape (called only if
 * there is such a Dropout).
 */
export function withDropoutMasks(model: Model, shapeOf: (name: string) => Dim[] | undefined, elemType: number): Model {
  const dropouts = new Set(trainingDropouts(model).map((d) => d.node));
  if (dropouts.size === 0) return model;
  const inputs: ValueInfo[] = [];
  const nodes = model.graph.nodes.map((n) => {
    if (!dropouts.has(n)) return n;
    unread(model, n, n.outputs.slice(1), 'with mask inputs the Dropout does not output its mask');
    const mask = dropoutMaskInput(n);
    inputs.push({ name: mask, elemType, shape: shapeOf(n.inputs[0])?.slice() });
    return { opType: 'Mul', inputs: [n.inputs[0], mask], outputs: [n.outputs[0]], attrs: {}, ...(n.name ? { name: n.name } : {}) };
  });
  return { ...model, graph: { ...model.graph, nodes, inputs: [...model.graph.inputs, ...inputs] } };
}
