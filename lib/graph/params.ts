// Which float initializers a training graph trains when the caller names none.
import type { Model, TensorValue } from './model';
import { DataType } from './schema';

/**
 * Inputs no gradient rule differentiates: BatchNormalization's running statistics, Resize's
 * roi / scales / sizes, Pad's pads / value / axes, Clip's bounds, Dropout's ratio and mode.
 * An initializer read only there is configuration, not a parameter (a Resize's scales
 * written as an initializer would otherwise train, and fail onnxruntime's checks).
 */
const NOT_DIFFERENTIATED: Record<string, readonly number[]> = {
  BatchNormalization: [3, 4],
  Resize: [1, 2, 3],
  Pad: [1, 2, 3],
  Clip: [1, 2],
  Dropout: [1, 2],
};

const isFloat = (t: TensorValue) => t.dataType === DataType.FLOAT || t.dataType === DataType.DOUBLE;

/** Whether every entry of a float tensor is finite. */
function allFinite(t: TensorValue): boolean {
  const data = t.data as Float32Array | Float64Array;
  for (let i = 0; i < data.length; i++) if (!Number.isFinite(data[i])) return false;
  return true;
}

/**
 * The candidates for parameters, every float initializer of rank >= 1 that some node reads where
 * a gradient flows (or that no node reads: it gets a zero gradient), split by their values in
 * one scan: `params`, the default parameters, and `constants`, the names of those holding NaN or
 * +-Inf (a -inf attention mask PyTorch exports from a buffer). A step would turn a constant to
 * NaN (weight decay multiplies -inf by 0), and no mask can score it; it stays in the graph as it is.
 */
export function splitParameters(model: Model): { params: TensorValue[]; constants: string[] } {
  const differentiable = new Map<string, boolean>();
  for (const n of model.graph.nodes)
    n.inputs.forEach((x, i) => {
      if (x) differentiable.set(x, (differentiable.get(x) ?? false) || !NOT_DIFFERENTIATED[n.opType]?.includes(i));
    });
  const params: TensorValue[] = [], constants: string[] = [];
  for (const t of model.graph.initializers)
    if (isFloat(t) && t.dims.length >= 1 && differentiable.get(t.name) !== false) {
      if (allFinite(t)) params.push(t);
      else constants.push(t.name);
    }
  return { params, constants };
}

/** The default parameters (splitParameters). */
export function defaultParameters(model: Model): TensorValue[] {
  return splitParameters(model).params;
}

/** The note the CLI prints for splitParameters' constants. */
export function constantsNote(names: readonly string[]): string {
  return `${names.length === 1 ? 'the initializer' : `${names.length} initializers`} ${names.join(', ')} ${names.length === 1 ? 'holds' : 'hold'} NaN or infinite values: kept as ${names.length === 1 ? 'a constant' : 'constants'}, not trained`;
}

/** Inputs that hold biases or states whatever their rank: an LSTM's or GRU's B [D, 8H or 6H] and initial states. */
const BIAS_INPUTS: Record<string, readonly number[]> = { LSTM: [3, 5, 6], GRU: [3, 5] };

/**
 * Initializers of rank >= 2 that are not weights (a recurrent bias [D, 8H]): the rank rule
 * that keeps biases out of masks and weight decay would take them for weights.
 */
export function biasesOfRankTwoOrMore(model: Model): Set<string> {
  const out = new Set<string>();
  for (const n of model.graph.nodes) for (const i of BIAS_INPUTS[n.opType] ?? []) if (n.inputs[i]) out.add(n.inputs[i]);
  return out;
}
