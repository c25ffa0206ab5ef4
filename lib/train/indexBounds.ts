// Which data inputs index a table (token ids into an nn.Embedding's Gather), and how many
// rows it has, so the Trainer can refuse an id past the table before onnxruntime fails on it
// mid-epoch, and a negative id, which ONNX's Gather would quietly wrap to the table's end.
import { attrI, nodeLabel, type Model, type ValueInfo } from '../graph/model';
import { isBigInt64Array } from '../util/typedArrays';

/** The table an input's values index: its row count, and the Gather and table that set it. */
export interface IndexBound {
  rows: number;
  gather: string;
  table: string;
}

/** Ops that pass their first input's values through unchanged (rearranged at most), so ids stay ids. */
const PASS_THROUGH = new Set(['Identity', 'Cast', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose']);

/**
 * For each integer data input whose values reach the indices of a Gather over an
 * initializer (directly or through the ops above), the smallest such table. An input that
 * is also used otherwise is still bounded by its Gather: the id must be a row either way.
 */
export function indexBounds(model: Model, inputs: readonly ValueInfo[]): Map<string, IndexBound> {
  const tables = new Map(model.graph.initializers.map((t) => [t.name, t.dims]));
  const consumers = new Map<string, typeof model.graph.nodes>();
  for (const n of model.graph.nodes) for (const x of n.inputs) consumers.set(x, [...(consumers.get(x) ?? []), n]);
  const bounds = new Map<string, IndexBound>();
  for (const input of inputs) {
    const seen = new Set<string>();
    const reach = [input.name];
    while (reach.length) {
      const value = reach.pop()!;
      if (seen.has(value)) continue;
      seen.add(value);
      for (const n of consumers.get(value) ?? []) {
        if (PASS_THROUGH.has(n.opType) && n.inputs[0] === value) reach.push(n.outputs[0]);
        if (n.opType !== 'Gather' || n.inputs[1] !== value) continue;
        const dims = tables.get(n.inputs[0]);
        if (!dims) continue;
        const axis = attrI(n, 'axis', 0);
        const rows = dims[axis < 0 ? axis + dims.length : axis];
        const known = bounds.get(input.name);
        if (rows !== undefined && (!known || rows < known.rows)) bounds.set(input.name, { rows, gather: nodeLabel(n), table: n.inputs[0] });
      }
    }
  }
  return bounds;
}

/** The first value of `ids` outside [0, rows), as its index, or -1. */
export function firstOutOfRange(ids: BigInt64Array | Int32Array, rows: number): number {
  if (isBigInt64Array(ids)) {
    const top = BigInt(rows);
    for (let i = 0; i < ids.length; i++) if (ids[i] < 0n || ids[i] >= top) return i;
    return -1;
  }
  for (let i = 0; i < ids.length; i++) if (ids[i] < 0 || ids[i] >= rows) return i;
  return -1;
}
