// The element type of each tensor of a forward model, as far as the derivation needs it: the
// float type a node computes in, so that a gradient rule's constants and casts match its
// tensors in a model that mixes float32 and float64 (a float64 model with a float32 island
// around an Erf, which onnxruntime runs in float32 only). Undefined where it cannot tell.
import { attrI, type Graph, type Node } from './model';
import { DataType } from './schema';

const BOOL_OUT = new Set(['Greater', 'Less', 'Equal', 'GreaterOrEqual', 'LessOrEqual', 'And', 'Or', 'Xor', 'Not', 'IsNaN', 'IsInf']);
const INT64_OUT = new Set(['Shape', 'Size', 'ArgMax', 'ArgMin', 'NonZero']);
/** Ops whose outputs past the first are int64 indices. */
const INDICES_AFTER_FIRST = new Set(['MaxPool', 'TopK']);

function outputType(n: Node, types: Map<string, number>): number | undefined {
  if (BOOL_OUT.has(n.opType)) return DataType.BOOL;
  if (INT64_OUT.has(n.opType)) return DataType.INT64;
  switch (n.opType) {
    case 'Cast':
      return attrI(n, 'to', DataType.FLOAT);
    case 'CastLike':
      return types.get(n.inputs[1]);
    case 'Where':
      return types.get(n.inputs[1]);
    case 'OneHot':
      return types.get(n.inputs[2]);
    case 'Constant': case 'ConstantOfShape': {
      const v = n.attrs.value;
      if (v && 't' in v) return v.t.dataType;
      if (n.opType === 'ConstantOfShape') return DataType.FLOAT; // ONNX's default fill: float32 0
      return n.attrs.value_float || n.attrs.value_floats ? DataType.FLOAT : n.attrs.value_int || n.attrs.value_ints ? DataType.INT64 : undefined;
    }
    default: // the type of the data they compute on, their first input (Gather's data, Pow's base)
      return types.get(n.inputs[0]);
  }
}

export function elemTypes(g: Graph, nodes: readonly Node[]): Map<string, number> {
  const types = new Map<string, number>();
  for (const v of g.inputs) types.set(v.name, v.elemType);
  for (const t of g.initializers) types.set(t.name, t.dataType);
  for (const n of nodes) {
    const t = outputType(n, types);
    n.outputs.forEach((o, i) => {
      const ti = i > 0 && INDICES_AFTER_FIRST.has(n.opType) ? DataType.INT64 : t;
      if (o && ti !== undefined) types.set(o, ti);
    });
  }
  return types;
}
