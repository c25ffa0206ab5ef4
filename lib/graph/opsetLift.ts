// Training graphs import opset 17 or newer (the wording), so a forward model of an
// older opset is read as opset 17, node by node as that opset means it:
// - 13 to 16: operator versions 14 to 17 only add types, and attributes whose defaults keep
//   the old meaning (Reshape's allowzero, Shape's start and end, the recurrent ops' layout,
//   ScatterElements' reduction). BatchNormalization before 14 says "training mode" by its
//   number of outputs (Y, mean, var, saved_mean, saved_var), where 14 has a training_mode
//   attribute and three outputs: rewritten.
// - 11 and 12: opset 13 moved ReduceSum's axes, Split's split and Squeeze's / Unsqueeze's axes
//   from attributes to inputs, and made (Log)Softmax act on one axis where it had flattened the
//   input from `axis` on (default 1); opset 12 made Dropout's ratio an input. Each is rewritten
//   to its opset-13 form: constants as inputs, and Flatten -> (Log)Softmax -> Reshape.
// - below 11 (Clip's and Pad's bounds as attributes, Resize-10, Upsample): refused.
import { rangeError } from '../errors';
import { GraphBuilder } from './builder';
import { attrI, attrInts, isRead, nodeLabel, tensorNames, type Attr, type Model, type Node } from './model';
import { DataType } from './schema';

/** The oldest opset a training graph imports. */
export const TRAINING_OPSET = 17;
/** The oldest opset a forward model may import. */
export const OLDEST_OPSET = 11;

/** Operators of the derivation's set that came after opset 11, with the opset they came in (Gelu, 20, refuses itself). */
const INTRODUCED: Record<string, number> = { Einsum: 12, GreaterOrEqual: 12, LessOrEqual: 12, HardSwish: 14, LayerNormalization: 17 };

const defaultDomain = (n: Node) => !n.domain || n.domain === 'ai.onnx';

/** BatchNormalization-9 with its training outputs as BatchNormalization-14 in training mode (mean and var: the updated running statistics in both). */
function batchNorm14(m: Model, n: Node): Node {
  if (n.outputs.length <= 1) return n;
  for (const o of n.outputs.slice(3))
    if (o && isRead(m, o))
      throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeLabel(n)}": its output "${o}" (the batch's saved mean or variance, a BatchNormalization output before opset 14) is read by the model; re-export it with opset_version=17`);
  return { ...n, attrs: { ...n.attrs, training_mode: { i: 1 } }, outputs: n.outputs.slice(0, 3) };
}

const withoutAttr = (attrs: Record<string, Attr>, key: string) => Object.fromEntries(Object.entries(attrs).filter(([k]) => k !== key));

/** A node of opset 11 or 12 as the nodes of opset 13 that compute the same (itself where nothing changed). */
function to13(n: Node, opset: number, b: GraphBuilder): Node[] {
  if (!defaultDomain(n)) return [n];
  // an attribute that became an input: the same values as a constant input
  const attrToInput = (key: string, at: number) => {
    if (!(key in n.attrs)) return [n];
    const values = attrInts(n, key);
    if (values === undefined) throw rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": ${n.opType}'s attribute ${key} must be a list of ints`);
    const inputs = n.inputs.slice();
    while (inputs.length < at) inputs.push('');
    inputs[at] = b.int64s(values);
    return [{ ...n, inputs, attrs: withoutAttr(n.attrs, key) }];
  };
  switch (n.opType) {
    case 'ReduceSum': case 'Squeeze': case 'Unsqueeze':
      return attrToInput('axes', 1);
    case 'Split':
      return attrToInput('split', 1);
    case 'Dropout': {
      if (opset >= 12 || !('ratio' in n.attrs)) return [{ ...n, attrs: withoutAttr(n.attrs, 'ratio') }];
      const given = (n.attrs.ratio as { f?: number }).f;
      if (typeof given !== 'number' || !(given >= 0 && given < 1)) throw rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": Dropout's attribute ratio must be a float in [0, 1)`);
      const ratio = b.constant(Float32Array.of(given), [], DataType.FLOAT);
      return [{ ...n, inputs: [n.inputs[0], ratio], attrs: withoutAttr(n.attrs, 'ratio') }];
    }
    case 'Softmax': case 'LogSoftmax': {
      // before 13: the input flattened to 2-D at `axis` (default 1), normalised over the second dim
      const axis = attrI(n, 'axis', 1);
      if (axis === -1) return [n]; // the last axis alone: the same in both
      const start = b.nodes.length;
      const x = n.inputs[0];
      const flat = b.op('Flatten', [x], { axis: { i: axis } });
      const normalised = b.op(n.opType, [flat], { axis: { i: -1 } });
      b.op('Reshape', [normalised, b.op('Shape', [x])], {}, [n.outputs[0]]);
      const nodes = b.nodes.slice(start);
      if (n.name) nodes[1].name = n.name; // the node keeps its name (errors name it)
      return nodes;
    }
    default:
      return [n];
  }
}

/** The model as opset 17 means it (unchanged from 17 on); refuses what the model's own opset does not have. */
export function liftedToTrainingOpset(m: Model): Model {
  if (m.opset >= TRAINING_OPSET) return m;
  if (!(m.opset >= OLDEST_OPSET))
    throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `the model imports opset ${m.opset}; training graphs are derived from opset ${OLDEST_OPSET} or newer (re-export it, e.g. torch.onnx.export(..., opset_version=17))`);
  for (const n of m.graph.nodes) {
    const since = defaultDomain(n) ? INTRODUCED[n.opType] : undefined;
    if (since !== undefined && since > m.opset)
      throw rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": operator ${n.opType} is not in opset ${m.opset} (it came in opset ${since}), which the model imports: onnxruntime refuses the model`);
  }
  const b = new GraphBuilder('opset13', tensorNames(m));
  let nodes = m.opset < 13 ? m.graph.nodes.flatMap((n) => to13(n, m.opset, b)) : m.graph.nodes;
  if (m.opset < 14) nodes = nodes.map((n) => (n.opType === 'BatchNormalization' && defaultDomain(n) ? batchNorm14(m, n) : n));
  return { ...m, opset: TRAINING_OPSET, irVersion: Math.max(m.irVersion, 8), graph: { ...m.graph, nodes, initializers: [...m.graph.initializers, ...b.initializers] } };
}
