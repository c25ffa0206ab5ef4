// Running a finalized (exactly sparse) ONNX model's linear layers through BSR.
//
// sparseLinearsFromModel converts every Gemm / MatMul whose weight is a constant 2-D
// float32 initializer; SparseModel runs a whole model made only of those layers,
// ReLU, Flatten, Identity and Dropout (inference: identity) - an MLP such as
// LeNet-300-100. Anything else (convolutions, pooling, reshapes...) is not handled
// here: SparseModel.fromModel rejects it with ERR_SPARTAN_UNSUPPORTED_OP.
import { rangeError, typeError } from '../errors';
import type { Model, Node, TensorValue } from '../graph/model';
import { checkModel } from '../graph/validate';
import { optionKeys, optionsObject } from '../options';
import type { BsrDtype } from './half';
import { blockSizeOf, type BlockSize } from './matrix';
import { SparseLinear } from './sparseLinear';
import { isFloat32Array } from '../util/typedArrays';

const FLOAT = 1;

export interface SparseModelOptions {
  /** Block size (16, the default, or 32). */
  block?: BlockSize;
  dtype?: BsrDtype;
}

export interface SparseLayer {
  /** The node's name (or its first output when unnamed). */
  node: string;
  opType: 'Gemm' | 'MatMul';
  input: string;
  output: string;
  /** The weight initializer's name. */
  weight: string;
  layer: SparseLinear;
}

const attrInt = (n: Node, k: string, d: number) => (n.attrs[k] && 'i' in n.attrs[k] ? (n.attrs[k] as { i: number }).i : d);
const attrFloat = (n: Node, k: string, d: number) => (n.attrs[k] && 'f' in n.attrs[k] ? (n.attrs[k] as { f: number }).f : d);

function floatInit(inits: Map<string, TensorValue>, name: string | undefined): TensorValue | undefined {
  const t = name ? inits.get(name) : undefined;
  return t && t.dataType === FLOAT && isFloat32Array(t.data) ? t : undefined;
}

/** The weight [out, in] and bias of a Gemm / MatMul node, or the reason it cannot be converted. */
function linearParams(node: Node, inits: Map<string, TensorValue>): { weight: Float32Array; out: number; inF: number; bias?: Float32Array; wName: string } | string {
  const B = floatInit(inits, node.inputs[1]);
  if (!B || B.dims.length !== 2) return 'its weight is not a constant 2-D float32 initializer';
  let [K, N] = B.dims;
  let alpha = 1, beta = 1, transB = 0;
  if (node.opType === 'Gemm') {
    if (attrInt(node, 'transA', 0) !== 0) return 'transA = 1 is not supported';
    transB = attrInt(node, 'transB', 0);
    alpha = attrFloat(node, 'alpha', 1);
    beta = attrFloat(node, 'beta', 1);
  }
  if (transB) [K, N] = [N, K];
  const weight = new Float32Array(N * K), src = B.data as Float32Array;
  for (let k = 0; k < K; k++)
    for (let n = 0; n < N; n++) weight[n * K + k] = alpha * (transB ? src[n * K + k] : src[k * N + n]);
  let bias: Float32Array | undefined;
  if (node.opType === 'Gemm' && node.inputs[2]) {
    const C = floatInit(inits, node.inputs[2]);
    const size = C ? C.dims.reduce((a, d) => a * d, 1) : -1;
    if (!C || size !== N || !(C.dims.length === 1 || (C.dims.length === 2 && C.dims[0] === 1)))
      return 'its bias is not a constant float32 vector of the output size';
    bias = Float32Array.from(C.data as Float32Array, (v) => beta * v);
  }
  return { weight, out: N, inF: K, bias, wName: B.name };
}

/**
 * fn's result; a malformed model is checked first (checkModel: dims, data lengths, attribute
 * kinds), and anything else that fails without a code inside is one ERR_SPARTAN_ONNX, as in
 * deriveTrainingGraph.
 */
function reading<T>(model: Model, fn: () => T): T {
  if (!model || typeof model !== 'object' || !model.graph) throw typeError('ERR_SPARTAN_TYPE', 'model must be a decoded ONNX Model (see decodeModel)');
  try {
    checkModel(model);
    return fn();
  } catch (e) {
    const code = (e as { code?: unknown })?.code;
    if (typeof code === 'string' && code.startsWith('ERR_SPARTAN_')) throw e;
    throw Object.assign(rangeError('ERR_SPARTAN_ONNX', `cannot read the model's layers: ${(e as Error)?.message ?? String(e)} (a malformed node or initializer?)`), { cause: e });
  }
}

const MODEL_OPTS = optionKeys<SparseModelOptions>({ block: true, dtype: true });

function layerOptions(opts: SparseModelOptions | undefined): { block: BlockSize; dtype?: BsrDtype } {
  const o = optionsObject(opts, 'SparseModel options', MODEL_OPTS);
  return { block: blockSizeOf(o.block ?? 16, 'options.block'), dtype: o.dtype };
}

/**
 * Every Gemm / MatMul of the model whose weight is a constant 2-D float32 initializer
 * (Gemm: transA = 0, alpha and beta folded into the weight and bias; MatMul: no bias),
 * as a SparseLinear layer storing the blocks that hold a non-zero weight. Other nodes
 * are left out. The ReLU that may follow a layer is not fused here (see SparseModel).
 */
export function sparseLinearsFromModel(model: Model, opts?: SparseModelOptions): SparseLayer[] {
  return reading(model, () => sparseLinears(model, opts));
}

function sparseLinears(model: Model, opts: SparseModelOptions | undefined): SparseLayer[] {
  const { block, dtype } = layerOptions(opts);
  const inits = new Map(model.graph.initializers.map((t) => [t.name, t]));
  const layers: SparseLayer[] = [];
  for (const node of model.graph.nodes) {
    if (node.opType !== 'Gemm' && node.opType !== 'MatMul') continue;
    const p = linearParams(node, inits);
    if (typeof p === 'string') continue;
    const layer = SparseLinear.fromDense(p.weight, [p.out, p.inF], { block, dtype, bias: p.bias });
    layers.push({ node: node.name || node.outputs[0], opType: node.opType, input: node.inputs[0], output: node.outputs[0], weight: p.wName, layer });
  }
  return layers;
}

type Step = { kind: 'linear'; layer: SparseLinear; input: string; output: string } | { kind: 'relu' | 'alias'; input: string; output: string };

/**
 * A model made only of Gemm / MatMul (constant weights), Relu, Flatten, Identity and
 * Dropout, run with SparseLinear layers on float32 input [batch, features]. A Relu that
 * is the only consumer of a layer's output is fused into that layer.
 */
export class SparseModel {
  readonly layers: SparseLayer[] = [];
  readonly input: string;
  readonly output: string;
  private readonly steps: Step[] = [];

  private constructor(model: Model, opts: SparseModelOptions | undefined) {
    const { block, dtype } = layerOptions(opts);
    const g = model.graph;
    const inits = new Map(g.initializers.map((t) => [t.name, t]));
    const dataInputs = g.inputs.filter((i) => !inits.has(i.name));
    if (dataInputs.length !== 1 || g.outputs.length !== 1)
      throw rangeError('ERR_SPARTAN_ONNX', `SparseModel needs one data input and one output (got ${dataInputs.length} and ${g.outputs.length})`);
    this.input = dataInputs[0].name;
    this.output = g.outputs[0].name;
    const consumers = new Map<string, number>();
    for (const n of g.nodes) for (const i of n.inputs) consumers.set(i, (consumers.get(i) ?? 0) + 1);
    const fused = new Set<Node>();
    for (const node of g.nodes) {
      const name = node.name || node.outputs[0];
      if (fused.has(node)) continue;
      switch (node.opType) {
        case 'Gemm':
        case 'MatMul': {
          const p = linearParams(node, inits);
          if (typeof p === 'string') throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node ${name} (${node.opType}): ${p}`);
          // fuse a following Relu that is the only reader of this output
          const out = node.outputs[0];
          const relu = out !== this.output && consumers.get(out) === 1 ? g.nodes.find((n) => n.opType === 'Relu' && n.inputs[0] === out) : undefined;
          if (relu) fused.add(relu);
          const layer = SparseLinear.fromDense(p.weight, [p.out, p.inF], { block, dtype, bias: p.bias, relu: relu !== undefined });
          const output = relu ? relu.outputs[0] : out;
          this.layers.push({ node: name, opType: node.opType, input: node.inputs[0], output, weight: p.wName, layer });
          this.steps.push({ kind: 'linear', layer, input: node.inputs[0], output });
          break;
        }
        case 'Relu':
          this.steps.push({ kind: 'relu', input: node.inputs[0], output: node.outputs[0] });
          break;
        case 'Flatten':
          if (attrInt(node, 'axis', 1) !== 1) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node ${name} (Flatten): only axis = 1 is supported`);
          this.steps.push({ kind: 'alias', input: node.inputs[0], output: node.outputs[0] });
          break;
        case 'Identity':
        case 'Dropout':
          this.steps.push({ kind: 'alias', input: node.inputs[0], output: node.outputs[0] });
          break;
        default:
          throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node ${name}: ${node.opType} is not supported by SparseModel (Gemm, MatMul, Relu, Flatten, Identity, Dropout only)`);
      }
    }
  }

  static fromModel(model: Model, opts?: SparseModelOptions): SparseModel {
    return reading(model, () => new SparseModel(model, opts));
  }

  /** Runs the model on x ([batch, features], row-major float32); returns the output [batch, outFeatures]. */
  forward(x: Float32Array, batch: number): Float32Array {
    if (!isFloat32Array(x)) throw typeError('ERR_SPARTAN_TYPE', 'x must be a Float32Array');
    const values = new Map<string, Float32Array>([[this.input, x]]);
    const get = (name: string) => {
      const v = values.get(name);
      if (!v) throw rangeError('ERR_SPARTAN_ONNX', `value ${name} is not computed by the supported nodes`);
      return v;
    };
    for (const s of this.steps) {
      const v = get(s.input);
      if (s.kind === 'linear') values.set(s.output, s.layer.forward(v, batch));
      else if (s.kind === 'relu') values.set(s.output, v.map((t) => (t < 0 ? 0 : t)));
      else values.set(s.output, v);
    }
    return get(this.output);
  }
}
