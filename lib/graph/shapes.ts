// Static shape inference for the operators the autodiff supports. Dims are numbers
// or symbols ("N"); unknown dims are "?".
import { rangeError } from '../errors';
import type { Dim, Model, Node } from './model';

export type Shapes = Map<string, Dim[]>;

const int = (n: Node, k: string, d: number) => (n.attrs[k] && 'i' in n.attrs[k] ? (n.attrs[k] as { i: number }).i : d);
const ints = (n: Node, k: string): number[] | undefined => (n.attrs[k] && 'ints' in n.attrs[k] ? (n.attrs[k] as { ints: number[] }).ints : undefined);

export function broadcast(a: Dim[], b: Dim[]): Dim[] {
  const r = Math.max(a.length, b.length), out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    out.push(x === 1 ? y : y === 1 ? x : x);
  }
  return out;
}

function prod(ds: Dim[]): Dim {
  return ds.every((d) => typeof d === 'number') ? (ds as number[]).reduce((a, b) => a * b, 1) : '?';
}

/** Infers every tensor's shape; `consts` gives the values of constant int64 tensors (for Reshape). */
export function inferShapes(model: Model, consts: Map<string, number[]>): Shapes {
  const g = model.graph;
  const s: Shapes = new Map();
  for (const v of g.inputs) if (v.shape) s.set(v.name, v.shape.slice());
  for (const t of g.initializers) s.set(t.name, t.dims.slice());
  const get = (n: Node, i: number): Dim[] => {
    const sh = s.get(n.inputs[i]);
    if (!sh) throw rangeError('ERR_SPARTAN_ONNX', `node ${n.name ?? n.opType}: the shape of "${n.inputs[i]}" is unknown`);
    return sh;
  };
  for (const n of g.nodes) {
    const o = n.outputs[0];
    switch (n.opType) {
      case 'Gemm': {
        const a = get(n, 0), b = get(n, 1);
        const m = int(n, 'transA', 0) ? a[1] : a[0], k = int(n, 'transB', 0) ? b[0] : b[1];
        s.set(o, [m, k]);
        break;
      }
      case 'MatMul': {
        const a = get(n, 0), b = get(n, 1);
        if (a.length !== 2 || b.length !== 2) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node ${n.name ?? ''} (MatMul): only 2-D MatMul is supported`);
        s.set(o, [a[0], b[1]]);
        break;
      }
      case 'Add': case 'Sub': case 'Mul': case 'Div':
        s.set(o, broadcast(get(n, 0), get(n, 1)));
        break;
      case 'Relu': case 'LeakyRelu': case 'Sigmoid': case 'Tanh': case 'Neg': case 'Identity': case 'Dropout':
      case 'Softmax': case 'LogSoftmax': case 'Erf': case 'Gelu':
        s.set(o, get(n, 0).slice());
        break;
      case 'Flatten': {
        const x = get(n, 0);
        const axis = (int(n, 'axis', 1) + x.length) % x.length;
        s.set(o, [prod(x.slice(0, axis)), prod(x.slice(axis))].map((d, i) => (d === '?' && i === 0 && axis === 1 ? x[0] : d)));
        break;
      }
      case 'Reshape': {
        const x = get(n, 0), target = consts.get(n.inputs[1]);
        if (!target) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node ${n.name ?? ''} (Reshape): the target shape must be a constant`);
        const known = target.map((d, i) => (d === 0 ? x[i] : d));
        const total = prod(x), rest = prod(known.filter((d) => d !== -1));
        s.set(o, known.map((d) => (d === -1 ? (typeof total === 'number' && typeof rest === 'number' ? total / rest : x[0]) : d)));
        break;
      }
      case 'Transpose': {
        const x = get(n, 0);
        const perm = ints(n, 'perm') ?? x.map((_, i) => x.length - 1 - i);
        s.set(o, perm.map((p) => x[p]));
        break;
      }
      case 'Conv': case 'MaxPool': case 'AveragePool': {
        const x = get(n, 0);
        const spatial = x.length - 2;
        const k = n.opType === 'Conv' ? get(n, 1).slice(2) : ints(n, 'kernel_shape')!;
        const g = convGeometry(n, spatial);
        const out: Dim[] = [x[0], n.opType === 'Conv' ? get(n, 1)[0] : x[1]];
        for (let i = 0; i < spatial; i++) {
          const h = x[2 + i];
          if (typeof h !== 'number') throw rangeError('ERR_SPARTAN_ONNX', `node ${n.name ?? n.opType}: spatial dims must be known`);
          const eff = g.dilations[i] * ((k[i] as number) - 1) + 1;
          out.push(Math.floor((h + g.pads[i] + g.pads[i + spatial] - eff) / g.strides[i]) + 1);
        }
        s.set(o, out);
        if (n.outputs[1]) s.set(n.outputs[1], out);
        break;
      }
      case 'GlobalAveragePool': {
        const x = get(n, 0);
        s.set(o, [x[0], x[1], ...x.slice(2).map(() => 1)]);
        break;
      }
      default:
        throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${n.name || n.outputs[0]}": operator ${n.opType} is not supported by the training-graph derivation`);
    }
  }
  return s;
}

export interface ConvGeometry {
  strides: number[];
  pads: number[]; // [begin..., end...]
  dilations: number[];
  group: number;
}

/** Strides, explicit pads, dilations and group of a Conv/pool node (auto_pad NOTSET or VALID only). */
export function convGeometry(n: Node, spatial: number): ConvGeometry {
  const autoPad = n.attrs.auto_pad && 's' in n.attrs.auto_pad ? n.attrs.auto_pad.s : 'NOTSET';
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID')
    throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${n.name || n.outputs[0]}": auto_pad ${autoPad} is not supported (export with explicit pads)`);
  if (n.attrs.ceil_mode && 'i' in n.attrs.ceil_mode && n.attrs.ceil_mode.i)
    throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${n.name || n.outputs[0]}": ceil_mode is not supported`);
  return {
    strides: ints(n, 'strides') ?? new Array(spatial).fill(1),
    pads: ints(n, 'pads') ?? new Array(2 * spatial).fill(0),
    dilations: ints(n, 'dilations') ?? new Array(spatial).fill(1),
    group: int(n, 'group', 1),
  };
}
