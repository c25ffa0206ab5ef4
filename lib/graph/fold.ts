// Constant folding of shape computations (Shape -> Gather -> Unsqueeze -> Concat -> Reshape,
// Constant, ConstantOfShape, Cast and Slice of shapes, ...), done during shape inference.
// A tensor whose value is known statically is a `Known`; its values are numbers, or dim
// symbols ("N") where they are the value of a dynamic dimension. Fully numeric results are
// folded to initializers by the derivation; results holding a symbol stay in the graph as
// non-differentiable shape computations (onnxruntime evaluates them at run time).
import { rangeError } from '../errors';
import { attrInts, nodeLabel as nodeName, type Dim, type Node, type TensorValue } from './model';
import { DataType } from './schema';

export interface Known {
  dataType: number;
  /** The tensor's own dims (always static). */
  dims: number[];
  /** Row-major values: numbers, or the symbol of a dynamic dimension ("?" when not even that is known). */
  values: Dim[];
  /** The original tensor, where there is one (Constant nodes, initializers). */
  tensor?: TensorValue;
}
export type Consts = Map<string, Known>;

/** Folded results larger than this stay in the graph (ConstantOfShape of a big shape, say). */
const MAX_FOLD = 1 << 16;
const INT_TYPES = new Set<number>([DataType.INT64, DataType.INT32, DataType.INT8, DataType.UINT8, DataType.BOOL]);

export const isNumeric = (k: Known | undefined): k is Known & { values: number[] } => !!k && k.values.every((v) => typeof v === 'number');
const size = (dims: number[]) => dims.reduce((a, b) => a * b, 1);
const attrInt = (n: Node, k: string): number | undefined => (n.attrs[k] && 'i' in n.attrs[k] ? (n.attrs[k] as { i: number }).i : undefined);

export function knownFromTensor(t: TensorValue): Known {
  return { dataType: t.dataType, dims: t.dims.slice(), values: Array.from(t.data as ArrayLike<number | bigint>, Number), tensor: t };
}

/** The initializer holding a fully numeric Known (int64 values clamped to the int64 range). */
export function tensorOf(name: string, k: Known): TensorValue {
  if (k.tensor) return { ...k.tensor, name };
  const v = k.values as number[];
  let data: TensorValue['data'];
  switch (k.dataType) {
    case DataType.INT64: data = BigInt64Array.from(v, (x) => (x >= 2 ** 63 ? 2n ** 63n - 1n : x <= -(2 ** 63) ? -(2n ** 63n) : BigInt(Math.trunc(x)))); break;
    case DataType.INT32: data = Int32Array.from(v); break;
    case DataType.DOUBLE: data = Float64Array.from(v); break;
    case DataType.FLOAT: data = Float32Array.from(v); break;
    case DataType.UINT8: case DataType.BOOL: data = Uint8Array.from(v); break;
    default: throw rangeError('ERR_SPARTAN_ONNX', `cannot write a folded constant "${name}" of data type ${k.dataType}`);
  }
  return { name, dims: k.dims.slice(), dataType: k.dataType, data };
}

/** The values of a Constant node (value, value_float(s), value_int(s)). */
export function constantNode(n: Node): Known {
  const a = n.attrs;
  if (a.value && 't' in a.value) return knownFromTensor(a.value.t);
  if (a.value_float && 'f' in a.value_float) return { dataType: DataType.FLOAT, dims: [], values: [a.value_float.f] };
  if (a.value_floats && 'floats' in a.value_floats) return { dataType: DataType.FLOAT, dims: [a.value_floats.floats.length], values: a.value_floats.floats.slice() };
  if (a.value_int && 'i' in a.value_int) return { dataType: DataType.INT64, dims: [], values: [a.value_int.i] };
  if (a.value_ints && 'ints' in a.value_ints) return { dataType: DataType.INT64, dims: [a.value_ints.ints.length], values: a.value_ints.ints.slice() };
  throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeName(n)}": Constant with attribute ${Object.keys(a).join(', ') || '(none)'} is not supported`);
}

function broadcastDims(a: number[], b: number[]): number[] {
  const r = Math.max(a.length, b.length);
  return Array.from({ length: r }, (_, i) => {
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    return x === 1 ? y : x;
  });
}

/** Reads `k` broadcast to `dims`, flat index -> value. */
function reader(k: Known, dims: number[]): (flat: number) => Dim {
  const r = dims.length, kd = k.dims, lead = r - kd.length;
  const strides = new Array<number>(r).fill(0);
  for (let i = r - 1, s = 1; i >= lead; i--) {
    strides[i] = kd[i - lead] === 1 ? 0 : s;
    s *= kd[i - lead];
  }
  return (flat) => {
    let off = 0;
    for (let i = r - 1; i >= 0; i--) {
      const d = dims[i], c = flat % d;
      flat = (flat - c) / d;
      off += c * strides[i];
    }
    return k.values[off];
  };
}

/** The broadcast result, or null past MAX_FOLD entries (checked before any is computed: two
 * [50000, 1] and [1, 50000] constants would make 2.5e9 of them). */
function elementwise(ks: Known[], f: (...xs: Dim[]) => Dim, dataType: number): Known | null {
  const dims = ks.map((k) => k.dims).reduce(broadcastDims);
  if (size(dims) > MAX_FOLD) return null;
  const rs = ks.map((k) => reader(k, dims));
  const values = Array.from({ length: size(dims) }, (_, i) => f(...rs.map((r) => r(i))));
  return { dataType, dims, values };
}

const isInt = (t: number) => INT_TYPES.has(t);
/** Arithmetic on numbers; on a symbol only the identities (x*1, x+0, x-0, x/1) keep it. */
function arith(op: string, intType: boolean): (a: Dim, b: Dim) => Dim {
  return (a, b) => {
    if (typeof a === 'number' && typeof b === 'number') {
      switch (op) {
        case 'Add': return a + b;
        case 'Sub': return a - b;
        case 'Mul': return a * b;
        case 'Div': return intType ? Math.trunc(a / b) : a / b;
        case 'Equal': return a === b ? 1 : 0;
        case 'Less': return a < b ? 1 : 0;
        case 'Greater': return a > b ? 1 : 0;
        case 'Min': return Math.min(a, b);
        case 'Max': return Math.max(a, b);
      }
    }
    if (op === 'Mul' && (a === 1 || b === 1)) return a === 1 ? b : a;
    if (op === 'Add' && (a === 0 || b === 0)) return a === 0 ? b : a;
    if ((op === 'Sub' && b === 0) || (op === 'Div' && b === 1)) return a;
    if (op === 'Equal' && a === b && a !== '?') return 1;
    return '?';
  };
}

function gather(data: Known, idx: Known, axis0: number, n: Node): Known | null {
  const r = data.dims.length, axis = (axis0 + r) % r, d = data.dims[axis];
  const outer = size(data.dims.slice(0, axis)), inner = size(data.dims.slice(axis + 1));
  if (outer * idx.values.length * inner > MAX_FOLD) return null;
  const ids = idx.values.map((v) => {
    if (typeof v !== 'number') return NaN; // not reached: the caller checks
    if (v < -d || v >= d) throw rangeError('ERR_SPARTAN_ONNX', `node "${nodeName(n)}": Gather index ${v} is out of range for a dimension of ${d}`);
    return v < 0 ? v + d : v;
  });
  const values: Dim[] = [];
  for (let o = 0; o < outer; o++) for (const j of ids) for (let i = 0; i < inner; i++) values.push(data.values[(o * d + j) * inner + i]);
  return { dataType: data.dataType, dims: [...data.dims.slice(0, axis), ...idx.dims, ...data.dims.slice(axis + 1)], values };
}

/** A Slice of an axis of d (ONNX clamping rules, any step): its first kept index and how many it keeps. */
function sliceRun(d: number, start: number, end: number, step: number, node: string): { first: number; count: number } {
  if (step === 0) throw rangeError('ERR_SPARTAN_ONNX', `${node} step must not be 0`);
  const norm = (v: number) => (v < 0 ? v + d : v);
  const [lo, hi] = step > 0 ? [0, d] : [-1, d - 1]; // a reversed slice may stop before index 0
  const first = Math.min(hi, Math.max(lo, norm(start))), stop = Math.min(hi, Math.max(lo, norm(end)));
  return { first, count: Math.max(0, Math.ceil((stop - first) / step)) };
}

/** How many entries a Slice keeps of an axis of d (sliceIndices' length, without listing them). */
export function sliceCount(d: number, start: number, end: number, step: number, node = 'Slice'): number {
  return sliceRun(d, start, end, step, node).count;
}

/** The most indices sliceIndices lists: a declared axis of 3e9 entries would exhaust the heap. */
const MAX_SLICE_AXIS = 1 << 24;

/** Slice with any steps (ONNX clamping rules); the kept indices per axis. */
export function sliceIndices(d: number, start: number, end: number, step: number, node = 'Slice'): number[] {
  const { first, count } = sliceRun(d, start, end, step, node);
  if (d > MAX_SLICE_AXIS) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `${node} of an axis of ${d} entries (at most ${MAX_SLICE_AXIS})`);
  return Array.from({ length: count }, (_, i) => first + i * step);
}

function take(k: Known, perAxis: number[][]): Known {
  const dims = perAxis.map((ix) => ix.length);
  const values: Dim[] = [];
  const strides = k.dims.map((_, i) => size(k.dims.slice(i + 1)));
  const rec = (ax: number, off: number) => {
    if (ax === dims.length) { values.push(k.values[off]); return; }
    for (const i of perAxis[ax]) rec(ax + 1, off + i * strides[ax]);
  };
  if (size(dims) > 0) rec(0, 0);
  return { dataType: k.dataType, dims, values };
}

const ints = (k: Known | undefined, n: Node, what: string): number[] => {
  if (!k) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeName(n)}": ${n.opType} needs constant ${what}`);
  if (!isNumeric(k)) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeName(n)}": ${n.opType} needs constant ${what}, but they depend on the dynamic dimension ${k.values.find((v) => typeof v === 'string')}`);
  return k.values;
};

/** Operators evaluated when every input is known (plus Constant, Shape, Size, ConstantOfShape). */
const EVALUATED = new Set(['Identity', 'Cast', 'Gather', 'Unsqueeze', 'Squeeze', 'Reshape', 'Flatten', 'Transpose', 'Concat', 'Slice', 'Add', 'Sub', 'Mul', 'Div', 'Neg', 'Abs', 'Equal', 'Less', 'Greater', 'Min', 'Max', 'Where', 'Not', 'Range', 'ReduceProd', 'Sqrt']);

/**
 * Evaluates node `n` when its outputs can be known statically; records them in `consts`
 * and their shapes in `shapes`. Returns false (and changes nothing) when it cannot.
 * `shapeOf` gives an input's inferred shape.
 */
export function foldNode(n: Node, consts: Consts, shapes: Map<string, Dim[]>, shapeOf: (i: number) => Dim[]): boolean {
  const o = n.outputs[0];
  const set = (k: Known) => {
    consts.set(o, k);
    shapes.set(o, k.dims.slice());
    return true;
  };
  const inputs = n.inputs.map((i) => (i ? consts.get(i) : undefined));
  switch (n.opType) {
    case 'Constant':
      return set(constantNode(n));
    case 'Shape': {
      const x = shapeOf(0), r = x.length;
      const norm = (v: number) => Math.min(r, Math.max(0, v < 0 ? v + r : v));
      const vals = x.slice(norm(attrInt(n, 'start') ?? 0), norm(attrInt(n, 'end') ?? r));
      return set({ dataType: DataType.INT64, dims: [vals.length], values: vals });
    }
    case 'Size': {
      const x = shapeOf(0);
      return set({ dataType: DataType.INT64, dims: [], values: [x.every((d) => typeof d === 'number') ? size(x as number[]) : '?'] });
    }
    case 'ConstantOfShape': {
      const sh = inputs[0];
      if (!sh) return false;
      const t = n.attrs.value && 't' in n.attrs.value ? n.attrs.value.t : undefined;
      const fill = t ? Number((t.data as ArrayLike<number | bigint>)[0]) : 0;
      const dataType = t?.dataType ?? DataType.FLOAT;
      if (isNumeric(sh) && size(sh.values) <= MAX_FOLD) return set({ dataType, dims: (sh.values as number[]).slice(), values: new Array(size(sh.values)).fill(fill) });
      shapes.set(o, sh.values.slice()); // stays a node: its shape is its input's value
      return true;
    }
  }
  if (!EVALUATED.has(n.opType) || n.outputs.length !== 1 || inputs.some((k, i) => n.inputs[i] && !k)) return false;
  const [a, b, c] = inputs as Known[];
  const out = (k: Known | null) => (k !== null && size(k.dims) <= MAX_FOLD ? set(k) : false);
  switch (n.opType) {
    case 'Identity':
      return set({ ...a });
    case 'Cast': {
      const to = attrInt(n, 'to')!;
      const conv = (v: Dim): Dim => (typeof v !== 'number' ? v : to === DataType.BOOL ? (v !== 0 ? 1 : 0) : isInt(to) ? Math.trunc(v) : to === DataType.FLOAT ? Math.fround(v) : v);
      return set({ dataType: to, dims: a.dims.slice(), values: a.values.map(conv) });
    }
    case 'Gather': // indices computed from a dynamic dim: the result is not known statically
      return isNumeric(b) && out(gather(a, b, attrInt(n, 'axis') ?? 0, n));
    case 'Unsqueeze': {
      const axes = b ? ints(b, n, 'axes') : attrInts(n, 'axes') ?? [];
      const r = a.dims.length + axes.length, norm = axes.map((x) => (x + r) % r);
      const dims: number[] = [];
      for (let i = 0, j = 0; i < r; i++) dims.push(norm.includes(i) ? 1 : a.dims[j++]);
      return set({ ...a, tensor: undefined, dims });
    }
    case 'Squeeze': {
      const r = a.dims.length;
      const axes = (b ? ints(b, n, 'axes') : attrInts(n, 'axes') ?? a.dims.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0)).map((x) => (x + r) % r);
      return set({ ...a, tensor: undefined, dims: a.dims.filter((_, i) => !axes.includes(i)) });
    }
    case 'Reshape': {
      const target = ints(b, n, 'shape'), total = size(a.dims);
      const dims = target.map((d, i) => (d === 0 && !attrInt(n, 'allowzero') ? a.dims[i] : d));
      const rest = size(dims.filter((d) => d !== -1));
      return set({ ...a, tensor: undefined, dims: dims.map((d) => (d === -1 ? total / rest : d)) });
    }
    case 'Flatten': {
      const r = a.dims.length, given = attrInt(n, 'axis') ?? 1, axis = given < 0 ? given + r : given; // axis = rank: [all, 1]
      return set({ ...a, tensor: undefined, dims: [size(a.dims.slice(0, axis)), size(a.dims.slice(axis))] });
    }
    case 'Transpose': { // PyTorch writes a Pad's pads as a transposed [2, rank] table
      const r = a.dims.length, perm = attrInts(n, 'perm') ?? a.dims.map((_, i) => r - 1 - i);
      const strides = a.dims.map((_, i) => size(a.dims.slice(i + 1)));
      const dims = perm.map((p) => a.dims[p]);
      const values: Dim[] = [];
      const rec = (ax: number, off: number) => {
        if (ax === r) { values.push(a.values[off]); return; }
        for (let i = 0; i < dims[ax]; i++) rec(ax + 1, off + i * strides[perm[ax]]);
      };
      if (size(dims) > 0) rec(0, 0);
      return out({ dataType: a.dataType, dims, values });
    }
    case 'Concat': {
      const ks = inputs as Known[], r = a.dims.length, axis = ((attrInt(n, 'axis') ?? 0) + r) % r;
      const outer = size(a.dims.slice(0, axis));
      const values: Dim[] = [];
      for (let p = 0; p < outer; p++)
        for (const k of ks) {
          const chunk = size(k.dims.slice(axis));
          values.push(...k.values.slice(p * chunk, (p + 1) * chunk));
        }
      return out({ dataType: a.dataType, dims: a.dims.map((d, i) => (i === axis ? ks.reduce((s, k) => s + k.dims[axis], 0) : d)), values });
    }
    case 'Slice': {
      const starts = ints(b, n, 'starts'), ends = ints(c, n, 'ends'), r = a.dims.length;
      const axes = inputs[3] ? ints(inputs[3], n, 'axes') : starts.map((_, i) => i);
      const steps = inputs[4] ? ints(inputs[4], n, 'steps') : starts.map(() => 1);
      const perAxis = a.dims.map((d) => Array.from({ length: d }, (_, i) => i));
      axes.forEach((ax, i) => {
        const x = (ax + r) % r;
        perAxis[x] = sliceIndices(a.dims[x], starts[i], ends[i], steps[i]);
      });
      return out(take(a, perAxis));
    }
    case 'Add': case 'Sub': case 'Mul': case 'Div': case 'Min': case 'Max':
      return out(elementwise(inputs as Known[], (...xs) => xs.reduce(arith(n.opType, isInt(a.dataType))), a.dataType));
    case 'Equal': case 'Less': case 'Greater':
      return out(elementwise([a, b], arith(n.opType, false), DataType.BOOL));
    case 'Neg': case 'Abs': case 'Sqrt': case 'Not':
      return set({ dataType: a.dataType, dims: a.dims.slice(), values: a.values.map((v) => (typeof v !== 'number' ? (n.opType === 'Abs' ? v : '?') : n.opType === 'Neg' ? -v : n.opType === 'Abs' ? Math.abs(v) : n.opType === 'Not' ? (v ? 0 : 1) : Math.sqrt(v))) });
    case 'Where':
      return out(elementwise([a, b, c], (p, x, y) => (typeof p !== 'number' ? (x === y ? x : '?') : p ? x : y), b.dataType));
    case 'Range': {
      const [s, l, d] = [a, b, c].map((k) => k.values[0]);
      if (typeof s !== 'number' || typeof l !== 'number' || typeof d !== 'number') return false; // its length is dynamic
      const count = Math.max(0, Math.ceil((l - s) / d));
      if (!(count <= MAX_FOLD)) return false; // counted before it is built: Range(0, 3e9, 1) would exhaust the heap
      return out({ dataType: a.dataType, dims: [count], values: Array.from({ length: count }, (_, i) => s + i * d) });
    }
    case 'ReduceProd': {
      if (b || attrInts(n, 'axes')) return false; // only the product of everything (numel)
      const keep = attrInt(n, 'keepdims') ?? 1;
      const p = a.values.reduce<Dim>((x, y) => arith('Mul', isInt(a.dataType))(x, y), 1);
      return set({ dataType: a.dataType, dims: keep ? a.dims.map(() => 1) : [], values: [p] });
    }
  }
  return false;
}
