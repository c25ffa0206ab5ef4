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
      default:
        throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${n.name || n.outputs[0]}": operator ${n.opType} is not supported by the training-graph derivation`);
    }
  }
  return s;
}
