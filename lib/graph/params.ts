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

/**
 * The default parameters: every float initializer of rank >= 1 that some node reads where a
 * gradient flows (or that no node reads: it gets a zero gradient).
 */
export function defaultParameters(model: Model): TensorValue[] {
  const differentiable = new Map<string, boolean>();
  for (const n of model.graph.nodes)
    n.inputs.forEach((x, i) => {
      if (x) differentiable.set(x, (differentiable.get(x) ?? false) || !NOT_DIFFERENTIATED[n.opType]?.includes(i));
    });
  return model.graph.initializers.filter((t) => (t.dataType === DataType.FLOAT || t.dataType === DataType.DOUBLE) && t.dims.length >= 1 && differentiable.get(t.name) !== false);
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
