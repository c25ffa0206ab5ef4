// torch.onnx.export merges initializers of equal value: the second parameter of a pair becomes
// Identity(first). An untrained model is full of such pairs (zero biases, LayerNorm scales of
// ones), and training the exported graph as it is would keep them tied for ever. This file
// gives each its own initializer again.
import { DataType } from './schema';
import type { Model, TensorValue } from './model';

/**
 * Replaces every Identity whose input is a float initializer of rank >= 1 (and whose output is
 * neither an initializer nor a graph output) by an initializer of its own under the output's
 * name, holding a copy of the values. Returns the new model and, for each untied name, the
 * initializer it was merged into. The input model is not changed.
 */
export function untieInitializers(model: Model): { model: Model; untied: { name: string; from: string }[] } {
  const g = model.graph;
  const inits = new Map(g.initializers.map((t) => [t.name, t]));
  const outputs = new Set(g.outputs.map((o) => o.name));
  const copies: TensorValue[] = [];
  const untied: { name: string; from: string }[] = [];
  const nodes = g.nodes.filter((n) => {
    if (n.opType !== 'Identity' || (n.domain && n.domain !== 'ai.onnx')) return true;
    const src = inits.get(n.inputs[0]), name = n.outputs[0];
    if (!src || (src.dataType !== DataType.FLOAT && src.dataType !== DataType.DOUBLE) || src.dims.length === 0) return true;
    if (inits.has(name) || outputs.has(name)) return true;
    copies.push({ name, dims: src.dims.slice(), dataType: src.dataType, data: src.data.slice() });
    untied.push({ name, from: src.name });
    return false;
  });
  if (copies.length === 0) return { model, untied };
  return { model: { ...model, graph: { ...g, nodes, initializers: [...g.initializers, ...copies] } }, untied };
}

/** One line for the CLI: which parameters were untied, and from what. */
export function untiedNote(untied: readonly { name: string; from: string }[]): string {
  const shown = untied.slice(0, 4).map((u) => `${u.name} from ${u.from}`).join(', ');
  return `the exporter had merged ${untied.length} parameter${untied.length === 1 ? '' : 's'} into others of equal value (${shown}${untied.length > 4 ? ', ...' : ''}); ` +
    'each trains as its own parameter, starting from those values';
}
