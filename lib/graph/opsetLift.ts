// Training graphs import opset 17 or newer (the wording). A forward model of opset
// 13-16 is read as opset 17: operator versions 14 to 17 only add types, and attributes whose
// defaults keep the old meaning (Reshape's allowzero, Shape's start and end, the recurrent
// ops' layout, ScatterElements' reduction), with one exception rewritten here:
// BatchNormalization before 14 says "training mode" by its number of outputs (Y, mean, var,
// saved_mean, saved_var), where 14 has a training_mode attribute and three outputs.
import { rangeError } from '../errors';
import { nodeLabel, type Model, type Node } from './model';

/** The oldest opset a training graph imports. */
export const TRAINING_OPSET = 17;

/** Operators of the derivation's set that came after opset 13, with the opset they came in (Gelu, 20, refuses itself). */
const INTRODUCED: Record<string, number> = { HardSwish: 14, LayerNormalization: 17 };

const defaultDomain = (n: Node) => !n.domain || n.domain === 'ai.onnx';

/** Whether a node or a graph output reads `name`. */
function isRead(m: Model, name: string): boolean {
  return m.graph.outputs.some((o) => o.name === name) || m.graph.nodes.some((n) => n.inputs.includes(name));
}

/** BatchNormalization-9 with its training outputs as BatchNormalization-14 in training mode (mean and var: the updated running statistics in both). */
function batchNorm14(m: Model, n: Node): Node {
  if (n.outputs.length <= 1) return n;
  for (const o of n.outputs.slice(3))
    if (o && isRead(m, o))
      throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeLabel(n)}": its output "${o}" (the batch's saved mean or variance, a BatchNormalization output before opset 14) is read by the model; re-export it with opset_version=17`);
  return { ...n, attrs: { ...n.attrs, training_mode: { i: 1 } }, outputs: n.outputs.slice(0, 3) };
}

/** The model as opset 17 means it (unchanged from 17 on); refuses operators the model's own opset does not have. */
export function liftedToTrainingOpset(m: Model): Model {
  if (m.opset >= TRAINING_OPSET) return m;
  for (const n of m.graph.nodes) {
    const since = defaultDomain(n) ? INTRODUCED[n.opType] : undefined;
    if (since !== undefined && since > m.opset)
      throw rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": operator ${n.opType} is not in opset ${m.opset} (it came in opset ${since}), which the model imports: onnxruntime refuses the model`);
  }
  const nodes = m.opset < 14 ? m.graph.nodes.map((n) => (n.opType === 'BatchNormalization' && defaultDomain(n) ? batchNorm14(m, n) : n)) : m.graph.nodes;
  return { ...m, opset: TRAINING_OPSET, irVersion: Math.max(m.irVersion, 8), graph: { ...m.graph, nodes } };
}
