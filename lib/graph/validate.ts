// Structural checks of a Model before anything derives from it or converts it: a malformed
// graph (a tensor written twice, data that does not fill its dims, an attribute of the wrong
// kind, an opset onnxruntime does not implement) otherwise passes silently and comes back as a
// training graph onnxruntime refuses, or as wrong numbers.
import { rangeError } from '../errors';
import { isBigInt64Array, isFloat32Array, isFloat64Array, isInt32Array, isUint8Array } from '../util/typedArrays';
import { checkTensorLength, tensorCount, type Attr, type Model, type Node, type TensorValue } from './model';
import { defaultParameters } from './params';
import { DataType } from './schema';

/** The newest ai.onnx opset and IR version onnxruntime-node 1.30 loads (27 and 14 it refuses). */
export const MAX_OPSET = 26;
export const MAX_IR_VERSION = 13;

/** Initializer data types the library reads and writes, with the typed array holding each. */
const TENSOR_DATA: Record<number, (d: unknown) => boolean> = {
  [DataType.FLOAT]: isFloat32Array,
  [DataType.DOUBLE]: isFloat64Array,
  [DataType.INT64]: isBigInt64Array,
  [DataType.INT32]: isInt32Array,
  [DataType.UINT8]: isUint8Array,
  [DataType.BOOL]: isUint8Array,
};
/** The last TensorProto.DataType of ONNX 1.17 (FLOAT4E2M1); 0 is UNDEFINED. */
const MAX_ONNX_TYPE = 23;

/** The kind that common attributes of the default domain take in every operator that has them. */
const ATTR_KINDS: Record<string, 'i' | 'f' | 's' | 'ints'> = {
  ...Object.fromEntries(['transA', 'transB', 'axis', 'keepdims', 'to', 'group', 'ceil_mode', 'count_include_pad', 'storage_order', 'noop_with_empty_axes', 'select_last_index', 'training_mode', 'allowzero', 'hidden_size', 'layout', 'linear_before_reset', 'exclusive', 'reverse', 'largest', 'sorted'].map((k) => [k, 'i'])),
  ...Object.fromEntries(['alpha', 'beta', 'gamma', 'epsilon', 'momentum'].map((k) => [k, 'f'])),
  ...Object.fromEntries(['perm', 'kernel_shape', 'strides', 'pads', 'dilations', 'output_padding', 'output_shape'].map((k) => [k, 'ints'])),
  ...Object.fromEntries(['auto_pad', 'mode', 'direction', 'approximate', 'reduction'].map((k) => [k, 's'])),
};

const bad = (message: string) => rangeError('ERR_SPARTAN_ONNX', message);
const isName = (s: unknown): s is string => typeof s === 'string' && s !== '';
/** A node as errors name it: its index, and its name or else its first output. */
const nodeText = (n: Node, i: number) => {
  const label = isName(n?.name) ? n.name : Array.isArray(n?.outputs) && isName(n.outputs[0]) ? n.outputs[0] : undefined;
  return label === undefined ? `node #${i}` : `node #${i} "${label}"`;
};

function checkTensor(t: TensorValue, what: string): void {
  if (!t || typeof t !== 'object') throw bad(`${what} is not a tensor`);
  const count = tensorCount(t.dims, what);
  const holds = TENSOR_DATA[t.dataType];
  if (!holds) throw bad(`${what} has data type ${t.dataType}, which this library does not read (float, double, int64, int32, uint8, bool)`);
  if (!holds(t.data)) throw bad(`${what} of data type ${t.dataType} holds a ${Object.prototype.toString.call(t.data).slice(8, -1)}`);
  checkTensorLength(t.data.length, t.dims, count, what);
}

/** An attribute's value must be of its declared kind ({ i: 1.5 } is none); known names of the default domain, of the expected kind. */
function checkAttr(n: Node, where: string, key: string, a: Attr): void {
  const what = `${where}: attribute ${key}`;
  const kind = a && typeof a === 'object' ? Object.keys(a)[0] : undefined;
  const v = kind ? (a as Record<string, unknown>)[kind] : undefined;
  const ok =
    kind === 'i' ? Number.isInteger(v) :
    kind === 'f' ? typeof v === 'number' :
    kind === 's' ? typeof v === 'string' :
    kind === 'ints' ? Array.isArray(v) && v.every(Number.isInteger) :
    kind === 'floats' ? Array.isArray(v) && v.every((x) => typeof x === 'number') :
    kind === 'strings' ? Array.isArray(v) && v.every((x) => typeof x === 'string') :
    kind === 't';
  if (!ok) throw bad(`${what} is ${JSON.stringify(a)}, not one of { i: integer }, { f }, { s }, { ints }, { floats }, { strings }, { t }`);
  if (kind === 't') checkTensor(v as TensorValue, `${what}'s tensor`);
  if (n.domain && n.domain !== 'ai.onnx') return; // another domain's attributes follow its own rules
  const want = ATTR_KINDS[key];
  if (want && kind !== want) throw bad(`${what} of ${n.opType} must be { ${want}: ... } (got ${JSON.stringify(a)})`);
  // any ONNX data type (float16 and bfloat16 casts are common off the loss's path); only 0
  // (UNDEFINED) and numbers past the enum are wrong
  if (key === 'to' && n.opType === 'Cast' && !(Number.isInteger(v) && (v as number) >= 1 && (v as number) <= MAX_ONNX_TYPE))
    throw bad(`${what} of Cast names data type ${String(v)}, which ONNX does not define (1 to ${MAX_ONNX_TYPE})`);
}

export interface CheckOptions {
  /**
   * The initializers a derivation trains ('default': those it would pick). Each becomes a
   * graph input of the training graph, so one already listed as an input is refused.
   */
  trained?: readonly string[] | 'default';
}

/** Throws ERR_SPARTAN_ONNX, naming the node or tensor, where the model is not a well-formed graph. */
export function checkModel(model: Model, opts: CheckOptions = {}): void {
  const g = model?.graph;
  if (!g || !Array.isArray(g.nodes) || !Array.isArray(g.inputs) || !Array.isArray(g.outputs) || !Array.isArray(g.initializers))
    throw bad('the model has no graph of nodes, inputs, outputs and initializers (a Model as decodeModel returns it?)');
  if (!Number.isInteger(model.irVersion) || model.irVersion < 1 || model.irVersion > MAX_IR_VERSION)
    throw bad(`the model's IR version is ${model.irVersion}; onnxruntime loads 1 to ${MAX_IR_VERSION}`);
  if (!Number.isInteger(model.opset) || model.opset < 1 || model.opset > MAX_OPSET)
    throw bad(`the model imports opset ${model.opset}; onnxruntime implements ai.onnx opsets up to ${MAX_OPSET}`);

  const inits = new Set<string>();
  for (const t of g.initializers) {
    if (!isName(t?.name)) throw bad('an initializer has no name');
    if (inits.has(t.name)) throw bad(`two initializers are named "${t.name}"`);
    inits.add(t.name);
    checkTensor(t, `initializer "${t.name}"`);
  }
  const inputs = new Set<string>();
  for (const v of g.inputs) {
    if (!isName(v?.name)) throw bad('a graph input has no name');
    if (inputs.has(v.name)) throw bad(`two graph inputs are named "${v.name}"`);
    inputs.add(v.name);
  }
  const written = new Map<string, string>();
  const names = new Set<string>();
  g.nodes.forEach((n, i) => {
    const where = nodeText(n, i);
    if (!n || typeof n !== 'object' || !isName(n.opType)) throw bad(`${where} has no operator type`);
    if (!Array.isArray(n.inputs) || !Array.isArray(n.outputs) || ![...n.inputs, ...n.outputs].every((x) => typeof x === 'string'))
      throw bad(`${where} (${n.opType}): inputs and outputs must be arrays of tensor names`);
    if (!n.attrs || typeof n.attrs !== 'object') throw bad(`${where} (${n.opType}) has no attrs object`);
    // Constant nodes may share names: onnxruntime turns them into initializers before it checks
    if (isName(n.name) && n.opType !== 'Constant') {
      if (names.has(n.name)) throw bad(`two nodes are named "${n.name}"`);
      names.add(n.name);
    }
    for (const o of n.outputs) {
      if (o === '') continue; // an optional output left out
      if (written.has(o)) throw bad(`${where} (${n.opType}) writes "${o}", which ${written.get(o)} writes already`);
      if (inputs.has(o) || inits.has(o)) throw bad(`${where} (${n.opType}) writes "${o}", which is a graph ${inputs.has(o) ? 'input' : 'initializer'}`);
      written.set(o, where);
    }
    for (const [key, a] of Object.entries(n.attrs)) checkAttr(n, `${where} (${n.opType})`, key, a);
  });
  // ONNX allows an initializer listed as an input too (its default value: IR < 4 requires it,
  // torch.onnx.export(keep_initializers_as_inputs=True) writes it); a derivation makes each
  // trained initializer an input of its own, and onnxruntime refuses the second one
  // (the default parameters, which scan every float initializer's values, only where some initializer is an input too)
  if (opts.trained !== undefined && [...inits].some((t) => inputs.has(t))) {
    const trained = opts.trained === 'default' ? defaultParameters(model).map((t) => t.name) : opts.trained;
    const both = Array.isArray(trained) ? trained.find((p) => inputs.has(p) && inits.has(p)) : undefined;
    if (both !== undefined)
      throw bad(`"${both}" is an initializer listed as a graph input too; the training graph makes each parameter an input of its own (remove the initializers from the inputs, or export with torch.onnx.export(..., keep_initializers_as_inputs=False))`);
  }

  // a node reading an undefined tensor is left to the derivation, which names what it cannot do first
  const defined = (x: string) => written.has(x) || inputs.has(x) || inits.has(x);
  for (const o of g.outputs)
    if (!isName(o?.name) || !defined(o.name)) throw bad(`the graph output "${o?.name}" is not defined by any node, graph input or initializer`);
}
