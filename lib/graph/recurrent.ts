// LSTM and GRU nodes written out step by step in standard operators (MatMul, Sigmoid, Tanh,
// Mul, Add, Split, Concat), so reverse-mode differentiation goes through time with no
// recurrent-specific gradient rule. Needs a static sequence length; the unrolled graph
// grows with it (about 15 nodes a step and direction, three times that with the gradient).
import { rangeError } from '../errors';
import { GraphBuilder } from './builder';
import { attrI, attrS, nodeLabel as label, tensorNames, type Dim, type Model, type Node } from './model';
import { DataType } from './schema';

const isRecurrent = (n: Node) => (n.opType === 'LSTM' || n.opType === 'GRU') && (!n.domain || n.domain === 'ai.onnx');

export const hasRecurrent = (model: Model) => model.graph.nodes.some(isRecurrent);

/** Refuses what the unrolled form does not model, naming the node. */
function check(n: Node, x: Dim[]): { T: number; H: number; dirs: ('forward' | 'reverse')[] } {
  const refuse = (why: string) => rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${label(n)}": ${n.opType} ${why}`);
  const activations = n.attrs.activations;
  if (activations) {
    const acts = 'strings' in activations ? activations.strings : [];
    const defaults = n.opType === 'LSTM' ? ['Sigmoid', 'Tanh', 'Tanh'] : ['Sigmoid', 'Tanh'];
    if (acts.some((a, i) => a !== defaults[i % defaults.length])) throw refuse(`with activations ${acts.join(', ')} is not supported (the defaults only)`);
  }
  if (n.attrs.clip) throw refuse('with clip is not supported');
  if (attrI(n, 'input_forget', 0)) throw refuse('with input_forget is not supported');
  if (n.inputs[4]) throw refuse('with sequence_lens is not supported (every sequence at full length)');
  if (n.opType === 'LSTM' && n.inputs[7]) throw refuse('with peepholes (input P) is not supported');
  const T = x[attrI(n, 'layout', 0) === 0 ? 0 : 1];
  if (typeof T !== 'number') throw rangeError('ERR_SPARTAN_ONNX', `node "${label(n)}": ${n.opType} needs a static sequence length to be unrolled (got "${T}")`);
  const H = attrI(n, 'hidden_size', 0);
  if (!(H > 0)) throw rangeError('ERR_SPARTAN_ONNX', `node "${label(n)}": ${n.opType} needs hidden_size`);
  const direction = attrS(n, 'direction', 'forward');
  if (!['forward', 'reverse', 'bidirectional'].includes(direction)) throw refuse(`direction "${direction}" is not one ONNX defines`);
  const dirs: ('forward' | 'reverse')[] = direction === 'bidirectional' ? ['forward', 'reverse'] : [direction as 'forward' | 'reverse'];
  return { T, H, dirs };
}

/**
 * One LSTM or GRU node unrolled into `b`, writing its outputs under the node's own names.
 * ONNX's equations: LSTM gates in the order i, o, f, c (Wb and Rb both added); GRU gates z,
 * r, h with linear_before_reset choosing where r multiplies (PyTorch exports 1).
 */
function unroll(b: GraphBuilder, n: Node, x: Dim[], elemType: number): void {
  const { T, H, dirs } = check(n, x);
  const lstm = n.opType === 'LSTM', gates = lstm ? 4 : 3;
  const layout = attrI(n, 'layout', 0);
  const [X0, W, R, B, , h0In, c0In] = n.inputs;
  const perm = (t: string, p: number[]) => b.op('Transpose', [t], { perm: { ints: p } });
  const X = layout === 0 ? X0 : perm(X0, [1, 0, 2]); // [T, B, I]
  const initial = (s: string | undefined) => (s && layout === 1 ? perm(s, [1, 0, 2]) : s); // [D, B, H]
  const h0 = initial(h0In), c0 = initial(c0In);
  const scalar = (v: number) => b.constant(BigInt64Array.of(BigInt(v)), [], DataType.INT64);
  const pick = (t: string, i: number) => b.op('Gather', [t, scalar(i)], { axis: { i: 0 } });
  const split = (t: string, parts: number) => {
    const outs = Array.from({ length: parts }, () => b.fresh('gate'));
    b.op('Split', [t, b.int64s(new Array(parts).fill(H))], { axis: { i: -1 } }, outs);
    return outs;
  };
  // zeros [B, H] for a missing initial state: B is read from X at run time
  const zeros = () => {
    const shape = b.op('Concat', [b.op('Slice', [b.op('Shape', [X]), b.int64s([1]), b.int64s([2])]), b.int64s([H])], { axis: { i: 0 } });
    const zero = elemType === DataType.DOUBLE ? Float64Array.of(0) : Float32Array.of(0);
    return b.op('ConstantOfShape', [shape], { value: { t: { name: '', dims: [1], dataType: elemType, data: zero } } });
  };
  const ys: string[] = [], hs: string[] = [], cs: string[] = [];
  dirs.forEach((dir, d) => {
    const Wd = pick(W, d), Rd = pick(R, d); // [G H, I], [G H, H]
    const RdT = perm(Rd, [1, 0]);
    let xw = b.op('MatMul', [X, perm(Wd, [1, 0])]); // [T, B, G H]
    let rb: string | undefined;
    if (B) {
      const [wb, rbias] = (() => {
        const bd = pick(B, d), halves = [b.fresh('wb'), b.fresh('rb')];
        b.op('Split', [bd, b.int64s([gates * H, gates * H])], { axis: { i: 0 } }, halves);
        return halves;
      })();
      if (lstm) xw = b.op('Add', [xw, b.op('Add', [wb, rbias])]);
      else {
        xw = b.op('Add', [xw, wb]);
        rb = rbias;
      }
    }
    let h = h0 ? pick(h0, d) : zeros();
    let c = lstm ? (c0 ? pick(c0, d) : zeros()) : '';
    const steps: string[] = new Array(T);
    const order = Array.from({ length: T }, (_, t) => (dir === 'forward' ? t : T - 1 - t));
    const linearBeforeReset = attrI(n, 'linear_before_reset', 0) === 1;
    for (const t of order) {
      const xt = pick(xw, t); // [B, G H]
      if (lstm) {
        const [i, o, f, g] = split(b.op('Add', [xt, b.op('MatMul', [h, RdT])]), 4);
        c = b.op('Add', [b.op('Mul', [b.op('Sigmoid', [f]), c]), b.op('Mul', [b.op('Sigmoid', [i]), b.op('Tanh', [g])])]);
        h = b.op('Mul', [b.op('Sigmoid', [o]), b.op('Tanh', [c])]);
      } else {
        let hr = b.op('MatMul', [h, RdT]); // [B, 3H]
        if (rb) hr = b.op('Add', [hr, rb]);
        const [xz, xr, xh] = split(xt, 3), [hz, hrr, hh] = split(hr, 3);
        const z = b.op('Sigmoid', [b.op('Add', [xz, hz])]), r = b.op('Sigmoid', [b.op('Add', [xr, hrr])]);
        let candidate: string;
        if (linearBeforeReset) candidate = b.op('Tanh', [b.op('Add', [xh, b.op('Mul', [r, hh])])]);
        else { // (r h) Rh^T + Rbh: the reset gate before the recurrent product
          const Rh = b.op('Slice', [RdT, b.int64s([2 * H]), b.int64s([3 * H]), b.int64s([1])]);
          let rh = b.op('MatMul', [b.op('Mul', [r, h]), Rh]);
          if (rb) rh = b.op('Add', [rh, b.op('Slice', [rb, b.int64s([2 * H]), b.int64s([3 * H]), b.int64s([0])])]);
          candidate = b.op('Tanh', [b.op('Add', [xh, rh])]);
        }
        h = b.op('Add', [candidate, b.op('Mul', [z, b.op('Sub', [h, candidate])])]); // (1 - z) h~ + z h
      }
      steps[t] = b.op('Unsqueeze', [h, b.int64s([0])]);
    }
    ys.push(b.op('Unsqueeze', [b.op('Concat', steps, { axis: { i: 0 } }), b.int64s([1])])); // [T, 1, B, H]
    hs.push(b.op('Unsqueeze', [h, b.int64s([0])]));
    if (lstm) cs.push(b.op('Unsqueeze', [c, b.int64s([0])]));
  });
  const [yName, hName, cName] = n.outputs;
  const out = (parts: string[], axis: number, name: string | undefined, p: number[] | undefined) => {
    if (!name) return;
    if (!p) b.op('Concat', parts, { axis: { i: axis } }, [name]);
    else b.op('Transpose', [b.op('Concat', parts, { axis: { i: axis } })], { perm: { ints: p } }, [name]);
  };
  out(ys, 1, yName, layout === 0 ? undefined : [2, 0, 1, 3]); // [T, D, B, H] or [B, T, D, H]
  out(hs, 0, hName, layout === 0 ? undefined : [1, 0, 2]);
  if (lstm) out(cs, 0, cName, layout === 0 ? undefined : [1, 0, 2]);
}

/** The model with every LSTM and GRU node unrolled (`shapeOf` gives a tensor's inferred shape). */
export function unrollRecurrent(model: Model, shapeOf: (name: string) => Dim[] | undefined): Model {
  const g = model.graph;
  const taken = tensorNames(model);
  const nodes: Node[] = [];
  const b = new GraphBuilder('rnn', taken);
  for (const n of g.nodes) {
    if (!isRecurrent(n)) {
      nodes.push(n);
      continue;
    }
    const x = shapeOf(n.inputs[0]);
    if (!x || x.length !== 3) throw rangeError('ERR_SPARTAN_ONNX', `node "${label(n)}": ${n.opType} needs an input of rank 3 with a known shape`);
    const w = g.initializers.find((t) => t.name === n.inputs[1]);
    const elemType = w?.dataType ?? g.inputs.find((v) => v.name === n.inputs[0])?.elemType ?? DataType.FLOAT;
    const from = b.nodes.length;
    unroll(b, n, x, elemType);
    nodes.push(...b.nodes.slice(from));
  }
  return { ...model, graph: { ...g, nodes, initializers: [...g.initializers, ...b.initializers] } };
}
