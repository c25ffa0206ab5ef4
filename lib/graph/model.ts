// ONNX models as plain objects, encoded and decoded with protobufjs.
import { rangeError } from '../errors';
import { AttributeType, DataType, ModelProto } from './schema';

export type TensorData = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
export interface TensorValue {
  name: string;
  dims: number[];
  dataType: number;
  data: TensorData;
}
/** Attributes carry their ONNX type explicitly (1.0 is a float, 1 an int). */
export type Attr = { f: number } | { i: number } | { s: string } | { floats: number[] } | { ints: number[] } | { strings: string[] } | { t: TensorValue };
export interface Node {
  opType: string;
  inputs: string[];
  outputs: string[];
  name?: string;
  domain?: string;
  attrs: Record<string, Attr>;
}
/** A node's int / float attribute, or `d` where it is absent. */
export const attrI = (n: Node, k: string, d: number): number => (n.attrs[k] && 'i' in n.attrs[k] ? (n.attrs[k] as { i: number }).i : d);
export const attrF = (n: Node, k: string, d: number): number => (n.attrs[k] && 'f' in n.attrs[k] ? (n.attrs[k] as { f: number }).f : d);
export const attrS = (n: Node, k: string, d: string): string => (n.attrs[k] && 's' in n.attrs[k] ? (n.attrs[k] as { s: string }).s : d);
/** A node's ints attribute, or undefined where it is absent (or of another kind). */
export const attrInts = (n: Node, k: string): number[] | undefined => (n.attrs[k] && 'ints' in n.attrs[k] ? (n.attrs[k] as { ints: number[] }).ints : undefined);
/** Whether a node or a graph output reads tensor `name`. */
export const isRead = (model: Model, name: string): boolean =>
  model.graph.outputs.some((o) => o.name === name) || model.graph.nodes.some((n) => n.inputs.includes(name));
/** Every name the model's graph uses: its nodes' inputs and outputs, its inputs, initializers and outputs. */
export function tensorNames(model: Model): Set<string> {
  const g = model.graph;
  return new Set([...g.nodes.flatMap((n) => [...n.inputs, ...n.outputs]), ...g.inputs.map((v) => v.name), ...g.initializers.map((t) => t.name), ...g.outputs.map((v) => v.name)]);
}
/** `base`, or `base_1`, `base_2`, ...: the first name the model does not use. */
export function freeName(model: Model, base: string): string {
  const taken = tensorNames(model);
  let name = base;
  for (let i = 1; taken.has(name); i++) name = `${base}_${i}`;
  return name;
}
/** How errors name a node: its name, or its first output when it has none. */
export const nodeLabel = (n: Node): string => n.name || n.outputs[0];
export type Dim = number | string;
export interface ValueInfo {
  name: string;
  elemType: number;
  shape?: Dim[];
}
export interface Graph {
  name: string;
  nodes: Node[];
  inputs: ValueInfo[];
  outputs: ValueInfo[];
  initializers: TensorValue[];
  valueInfo: ValueInfo[];
}
export interface Model {
  irVersion: number;
  opset: number;
  producerName: string;
  graph: Graph;
}

const num = (x: unknown): number => (typeof x === 'number' ? x : x && typeof (x as { toNumber?: () => number }).toNumber === 'function' ? (x as { toNumber: () => number }).toNumber() : Number(x));

const ELEMENT_BYTES: Partial<Record<number, number>> = { [DataType.FLOAT]: 4, [DataType.DOUBLE]: 8, [DataType.INT64]: 8, [DataType.INT32]: 4, [DataType.UINT8]: 1, [DataType.BOOL]: 1 };

function typedFromBytes(dataType: number, bytes: Uint8Array, count: number, name: string): TensorData {
  const size = ELEMENT_BYTES[dataType];
  if (size !== undefined && bytes.byteLength !== count * size)
    throw rangeError('ERR_SPARTAN_ONNX', `tensor "${name}" holds ${bytes.byteLength} bytes of raw data; its dims need ${count} × ${size}`);
  // an aligned copy: protobufjs returns a Buffer view into a shared pool (Buffer#slice would share it)
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  switch (dataType) {
    case DataType.FLOAT: return new Float32Array(copy.buffer, 0, count);
    case DataType.DOUBLE: return new Float64Array(copy.buffer, 0, count);
    case DataType.INT64: return new BigInt64Array(copy.buffer, 0, count);
    case DataType.INT32: return new Int32Array(copy.buffer, 0, count);
    case DataType.UINT8: case DataType.BOOL: return new Uint8Array(copy.buffer, 0, count);
    default: throw rangeError('ERR_SPARTAN_ONNX', `unsupported tensor data type ${dataType}`);
  }
}

/** The number of values a tensor of these dims holds; ERR_SPARTAN_ONNX unless each is an integer >= 0. */
export function tensorCount(dims: unknown, what: string): number {
  if (!Array.isArray(dims) || !dims.every((d) => Number.isSafeInteger(d) && d >= 0))
    throw rangeError('ERR_SPARTAN_ONNX', `${what} has dims [${Array.isArray(dims) ? dims.join(', ') : String(dims)}]; each must be an integer >= 0`);
  return dims.reduce((a: number, b: number) => a * b, 1);
}

/** ERR_SPARTAN_ONNX unless a tensor's data holds the `count` values its dims need. */
export function checkTensorLength(length: number, dims: readonly number[], count: number, what: string): void {
  if (length !== count) throw rangeError('ERR_SPARTAN_ONNX', `${what} holds ${length} values; its dims [${dims.join(', ')}] need ${count}`);
}

function decodeTensor(t: Record<string, unknown>): TensorValue {
  const name = String(t.name ?? '');
  const dims = ((t.dims as unknown[]) ?? []).map(num);
  const count = tensorCount(dims, `tensor "${name}"`);
  if (num(t.dataLocation ?? 0) === 1)  // TensorProto.EXTERNAL: the bytes sit in a file beside the model
    throw rangeError('ERR_SPARTAN_ONNX', `tensor "${name}" keeps its data in an external file (ONNX external data); this project reads models that hold their tensors, as onnx.save_model(model, path, save_as_external_data=False) writes for models under 2 GB`);
  const dataType = num(t.dataType);
  let data: TensorData;
  const raw = t.rawData as Uint8Array | undefined;
  if (raw && raw.length) data = typedFromBytes(dataType, raw, count, name);
  else if (dataType === DataType.FLOAT) data = Float32Array.from((t.floatData as number[]) ?? []);
  else if (dataType === DataType.DOUBLE) data = Float64Array.from((t.doubleData as number[]) ?? []);
  else if (dataType === DataType.INT64) data = BigInt64Array.from(((t.int64Data as unknown[]) ?? []).map((x) => BigInt(String(x))));
  else if (dataType === DataType.INT32 || dataType === DataType.UINT8 || dataType === DataType.BOOL) data = (dataType === DataType.INT32 ? Int32Array : Uint8Array).from(((t.int32Data as number[]) ?? []));
  else throw rangeError('ERR_SPARTAN_ONNX', `unsupported tensor data type ${dataType} in ${t.name}`);
  checkTensorLength(data.length, dims, count, `tensor "${name}"`);
  return { name, dims, dataType, data };
}

function encodeTensor(t: TensorValue): object {
  const bytes = new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength);
  return { name: t.name, dims: t.dims, dataType: t.dataType, rawData: bytes };
}

function decodeAttr(a: Record<string, unknown>): [string, Attr] {
  const name = String(a.name);
  // a scalar at its default (0, "") is absent from the wire (our encoder leaves it out too): read the default
  switch (num(a.type)) {
    case AttributeType.FLOAT: return [name, { f: num(a.f ?? 0) }];
    case AttributeType.INT: return [name, { i: num(a.i ?? 0) }];
    case AttributeType.STRING: return [name, { s: Buffer.from((a.s as Uint8Array | undefined) ?? []).toString('utf8') }];
    case AttributeType.FLOATS: return [name, { floats: ((a.floats as number[]) ?? []).slice() }];
    case AttributeType.INTS: return [name, { ints: ((a.ints as unknown[]) ?? []).map(num) }];
    case AttributeType.STRINGS: return [name, { strings: ((a.strings as Uint8Array[]) ?? []).map((v) => Buffer.from(v).toString('utf8')) }];
    case AttributeType.TENSOR:
      if (!a.t) throw rangeError('ERR_SPARTAN_ONNX', `attribute ${name} is of type TENSOR but holds no tensor`);
      return [name, { t: decodeTensor(a.t as Record<string, unknown>) }];
    default: throw rangeError('ERR_SPARTAN_ONNX', `unsupported attribute type ${a.type} (${name})`);
  }
}

function encodeAttr(name: string, a: Attr): object {
  if ('f' in a) return { name, type: AttributeType.FLOAT, f: a.f };
  if ('i' in a) return { name, type: AttributeType.INT, i: a.i };
  if ('s' in a) return { name, type: AttributeType.STRING, s: Buffer.from(a.s, 'utf8') };
  if ('floats' in a) return { name, type: AttributeType.FLOATS, floats: a.floats };
  if ('ints' in a) return { name, type: AttributeType.INTS, ints: a.ints };
  if ('strings' in a) return { name, type: AttributeType.STRINGS, strings: a.strings.map((v) => Buffer.from(v, 'utf8')) };
  return { name, type: AttributeType.TENSOR, t: encodeTensor(a.t) };
}

function decodeValueInfo(v: Record<string, unknown>): ValueInfo {
  const tt = (v.type as { tensorType?: { elemType?: number; shape?: { dim?: Record<string, unknown>[] } } } | undefined)?.tensorType;
  const shape = tt?.shape ? (tt.shape.dim ?? []).map((d) => (d.dimValue !== undefined && d.dimValue !== null ? num(d.dimValue) : String(d.dimParam ?? '?'))) : undefined;
  return { name: String(v.name), elemType: num(tt?.elemType ?? 0), shape };
}

function encodeValueInfo(v: ValueInfo): object {
  const shape = v.shape ? { dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) } : undefined;
  return { name: v.name, type: { tensorType: { elemType: v.elemType, shape } } };
}

export function decodeModel(bytes: Uint8Array): Model {
  let m: Record<string, unknown>;
  try {
    m = ModelProto.toObject(ModelProto.decode(bytes), { defaults: false }) as Record<string, unknown>;
  } catch (e) {
    throw rangeError('ERR_SPARTAN_ONNX', `not an ONNX model: ${(e as Error).message}`);
  }
  const g = m.graph as Record<string, unknown> | undefined;
  if (!g) throw rangeError('ERR_SPARTAN_ONNX', 'not an ONNX model: no graph');
  // no ir_version, or no ai.onnx opset, is no ONNX model onnxruntime loads (no test or fixture lacks either)
  const opsets = ((m.opsetImport as Record<string, unknown>[]) ?? []).filter((o) => !o.domain || o.domain === 'ai.onnx');
  if (!opsets.length) throw rangeError('ERR_SPARTAN_ONNX', 'the model imports no opset of the default domain (ai.onnx)');
  if (!m.irVersion) throw rangeError('ERR_SPARTAN_ONNX', 'the model has no IR version');
  return {
    irVersion: num(m.irVersion),
    opset: num(opsets[0].version),
    producerName: String(m.producerName ?? ''),
    graph: {
      name: String(g.name ?? 'graph'),
      nodes: ((g.node as Record<string, unknown>[]) ?? []).map((n) => ({
        opType: String(n.opType),
        inputs: ((n.input as string[]) ?? []).slice(),
        outputs: ((n.output as string[]) ?? []).slice(),
        name: n.name ? String(n.name) : undefined,
        domain: n.domain ? String(n.domain) : undefined,
        attrs: Object.fromEntries(((n.attribute as Record<string, unknown>[]) ?? []).map(decodeAttr)),
      })),
      inputs: ((g.input as Record<string, unknown>[]) ?? []).map(decodeValueInfo),
      outputs: ((g.output as Record<string, unknown>[]) ?? []).map(decodeValueInfo),
      initializers: ((g.initializer as Record<string, unknown>[]) ?? []).map(decodeTensor),
      valueInfo: ((g.valueInfo as Record<string, unknown>[]) ?? []).map(decodeValueInfo),
    },
  };
}

export function encodeModel(model: Model): Uint8Array {
  try {
    return encode(model);
  } catch (e) {  // a hand-built Model missing a field, an attribute of no known kind
    throw Object.assign(rangeError('ERR_SPARTAN_ONNX', `cannot encode the model: ${(e as Error)?.message ?? String(e)} (a Model as decodeModel returns it, or GraphBuilder builds it?)`), { cause: e });
  }
}

function encode(model: Model): Uint8Array {
  const g = model.graph;
  // what protobufjs would write anyway, as a file no reader accepts (no opset, i: 1.5 cut to 1)
  for (const k of ['irVersion', 'opset'] as const)
    if (!Number.isInteger(model[k]) || model[k] < 1) throw new Error(`${k} is ${model[k]}, not a positive integer`);
  for (const n of g.nodes) {
    if (typeof n.opType !== 'string' || n.opType === '') throw new Error(`node ${n.name || n.outputs?.[0]} has no opType`);
    for (const [k, a] of Object.entries(n.attrs))
      if (('i' in a && !Number.isInteger(a.i)) || ('ints' in a && !a.ints.every(Number.isInteger)))
        throw new Error(`attribute ${k} of node ${nodeLabel(n)} (${n.opType}) holds ${'i' in a ? a.i : `[${a.ints.join(', ')}]`}, not an integer`);
  }
  const msg = ModelProto.fromObject({
    irVersion: model.irVersion,
    producerName: model.producerName,
    opsetImport: [{ domain: '', version: model.opset }],
    graph: {
      name: g.name,
      node: g.nodes.map((n) => ({ input: n.inputs, output: n.outputs, name: n.name ?? '', opType: n.opType, domain: n.domain ?? '', attribute: Object.entries(n.attrs).map(([k, a]) => encodeAttr(k, a)) })),
      initializer: g.initializers.map(encodeTensor),
      input: g.inputs.map(encodeValueInfo),
      output: g.outputs.map(encodeValueInfo),
      valueInfo: g.valueInfo.map(encodeValueInfo),
    },
  });
  return ModelProto.encode(msg).finish();
}
