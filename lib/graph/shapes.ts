// Static shape inference for the operators the autodiff supports. Dims are numbers
// or symbols ("N"); unknown dims are "?".
import { rangeError } from '../errors';
import { foldNode, isNumeric, sliceCount, type Consts } from './fold';
import { attrI, attrInts, attrS, nodeLabel, type Dim, type Graph, type Model, type Node } from './model';

export type Shapes = Map<string, Dim[]>;

const int = attrI; // the name reads better in the long switch below
const ints = attrInts;

// Malformed models (those onnxruntime refuses to load or run) are refused here, naming the
// node: ERR_SPARTAN_SHAPE for shapes that do not fit together, ERR_SPARTAN_ONNX for invalid
// attributes (an axis out of range, a perm that is no permutation). Only what static dims
// decide: a symbol or '?' may be any size.
const fmt = (d: Dim[]): string => `[${d.join(', ')}]`;
const shapeError = (n: Node, msg: string) => rangeError('ERR_SPARTAN_SHAPE', `node "${nodeLabel(n)}": ${msg}`);
const attrError = (n: Node, msg: string) => rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": ${msg}`);
/** Whether two dims may be equal (a symbol, '?' or a missing dim may be anything). */
const agree = (a: Dim | undefined, b: Dim | undefined): boolean => typeof a !== 'number' || typeof b !== 'number' || a === b;

/** numpy broadcasting; with `n`, two static dims that differ, neither 1, are an error naming it. */
export function broadcast(a: Dim[], b: Dim[], n?: Node): Dim[] {
  const r = Math.max(a.length, b.length), out: Dim[] = [];
  for (let i = 0; i < r; i++) {
    const x = a[a.length - r + i] ?? 1, y = b[b.length - r + i] ?? 1;
    if (n && x !== 1 && y !== 1 && !agree(x, y)) throw shapeError(n, `${n.opType} cannot broadcast ${fmt(a)} with ${fmt(b)}`);
    out.push(x === 1 ? y : y === 1 ? x : x);
  }
  return out;
}

/** Checks that `from` broadcasts one way to `to` (Gemm's C to [M, N]). */
function checkBroadcastsTo(n: Node, from: Dim[], to: Dim[], what: string): void {
  if (from.length > to.length || from.some((d, i) => d !== 1 && !agree(d, to[to.length - from.length + i])))
    throw shapeError(n, `${n.opType} ${what} ${fmt(from)} does not broadcast to ${fmt(to)}`);
}

/** `axis` normalised to [0, rank) ([0, rank] with `inclusive`, as Flatten's); an error naming the node outside. */
export function axisIn(n: Node, axis: number, rank: number, what = 'axis', inclusive = false): number {
  const hi = inclusive ? rank : rank - 1;
  if (!Number.isInteger(axis) || axis < -rank || axis > hi)
    throw attrError(n, `${n.opType} ${what} ${axis} is out of range for an input of rank ${rank} (${-rank} to ${hi})`);
  return axis < 0 ? axis + rank : axis;
}

/** Checks that normalised axes name each axis at most once. */
function checkDistinct(n: Node, axes: number[], given: number[], what = 'axes'): void {
  if (new Set(axes).size !== axes.length) throw attrError(n, `${n.opType} ${what} [${given.join(', ')}] name an axis twice`);
}

function prod(ds: Dim[]): Dim {
  return ds.every((d) => typeof d === 'number') ? (ds as number[]).reduce((a, b) => a * b, 1) : '?';
}

/**
 * Infers every tensor's shape. `consts` holds the statically known tensors (int initializers
 * on entry); it is extended in place with every value folded on the way (Constant, Shape and
 * the shape arithmetic after it, see fold.ts).
 */
export function inferShapes(model: Model, consts: Consts): Shapes {
  const g = model.graph;
  const s: Shapes = new Map();
  for (const v of g.inputs) if (v.shape) s.set(v.name, v.shape.slice());
  for (const t of g.initializers) s.set(t.name, t.dims.slice());
  const get = (n: Node, i: number): Dim[] => {
    const sh = s.get(n.inputs[i]);
    if (!sh) throw unknownInput(g, n, n.inputs[i]);
    return sh;
  };
  for (const n of g.nodes) {
    const o = n.outputs[0];
    if (n.domain && n.domain !== 'ai.onnx')
      throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeLabel(n)}": operator ${n.domain}.${n.opType} is not supported by the training-graph derivation (standard ONNX operators only)`);
    // other nodes are inferred (and checked) first, then folded where their inputs are known:
    // a constant computation is checked too
    if (FOLD_ONLY.has(n.opType) && foldNode(n, consts, s, (i) => get(n, i))) continue;
    switch (n.opType) {
      case 'Gemm': {
        const a = get(n, 0), b = get(n, 1), tA = int(n, 'transA', 0), tB = int(n, 'transB', 0);
        if (a.length !== 2 || b.length !== 2) throw shapeError(n, `Gemm multiplies matrices (rank 2), got A ${fmt(a)} and B ${fmt(b)}`);
        const [m, ka] = tA ? [a[1], a[0]] : a, [kb, k] = tB ? [b[1], b[0]] : b;
        if (!agree(ka, kb)) throw shapeError(n, `Gemm inner dims differ: A ${fmt(a)}${tA ? ' (transA)' : ''} times B ${fmt(b)}${tB ? ' (transB)' : ''}`);
        if (n.inputs[2]) checkBroadcastsTo(n, get(n, 2), [m, k], 'bias C');
        s.set(o, [m, k]);
        break;
      }
      case 'MatMul':
        s.set(o, matMulShape(n, get(n, 0), get(n, 1)));
        break;
      case 'Add': case 'Sub': case 'Mul': case 'Div': case 'Pow':
      case 'Greater': case 'Less': case 'Equal': case 'GreaterOrEqual': case 'LessOrEqual': case 'And': case 'Or': case 'Xor':
        s.set(o, broadcast(get(n, 0), get(n, 1), n));
        break;
      case 'Where': case 'Sum': case 'Max': case 'Min':
        s.set(o, n.inputs.map((_, i) => get(n, i)).reduce((a, b) => broadcast(a, b, n)));
        break;
      case 'Expand': { // numpy broadcast of the input with the target shape
        const target = consts.get(n.inputs[1]);
        if (!target) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeLabel(n)}": Expand needs a shape that is constant or computed from the input shapes`);
        s.set(o, broadcast(get(n, 0), target.values, n));
        break;
      }
      case 'Pad': {
        const x = get(n, 0);
        const out = padAmounts(n, x, consts).map((p) => p.before === 0 && p.after === 0 ? p.dim : typeof p.dim === 'number' ? p.dim + p.before + p.after : '?');
        if (out.some((d) => typeof d === 'number' && d < 0)) throw shapeError(n, `Pad of ${fmt(x)} gives ${fmt(out)}: a negative dim`);
        s.set(o, out);
        break;
      }
      case 'Relu': case 'LeakyRelu': case 'Sigmoid': case 'Tanh': case 'Neg': case 'Identity': case 'Dropout': case 'Not':
      case 'Erf': case 'Gelu': case 'Sqrt': case 'Exp': case 'Log': case 'Reciprocal': case 'Abs': case 'Clip':
      case 'HardSigmoid': case 'HardSwish': case 'Softplus': case 'Elu': case 'Selu': case 'Cast':
        s.set(o, get(n, 0).slice());
        break;
      case 'PRelu': // the slope broadcasts to the input
        s.set(o, get(n, 0).slice());
        broadcast(get(n, 0), get(n, 1), n);
        break;
      case 'Softmax': case 'LogSoftmax': case 'LayerNormalization': case 'CumSum': { // one axis (CumSum's an input)
        const x = get(n, 0), axis = n.opType === 'CumSum' ? consts.get(n.inputs[1])?.values[0] : int(n, 'axis', -1);
        if (typeof axis === 'number') axisIn(n, axis, x.length);
        s.set(o, x.slice());
        break;
      }
      case 'BatchNormalization': case 'InstanceNormalization': { // scale, bias (mean, var): one value per channel
        const x = get(n, 0);
        ['scale', 'bias', 'mean', 'var'].forEach((what, j) => {
          if (!n.inputs[j + 1]) return;
          const p = get(n, j + 1);
          if (p.length !== 1 || !agree(p[0], x[1])) throw shapeError(n, `${n.opType} ${what} ${fmt(p)} must be [${x[1]}], one value per channel of the input ${fmt(x)}`);
        });
        s.set(o, x.slice());
        break;
      }
      case 'Flatten': {
        const x = get(n, 0);
        const axis = axisIn(n, int(n, 'axis', 1), x.length, 'axis', true);
        s.set(o, [prod(x.slice(0, axis)), prod(x.slice(axis))].map((d, i) => (d === '?' && i === 0 && axis === 1 ? x[0] : d)));
        break;
      }
      case 'Reshape': { // the target may hold dim symbols (a shape computed from a dynamic dim)
        const x = get(n, 0), target = consts.get(n.inputs[1]);
        if (!target) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeLabel(n)}": Reshape needs a shape that is constant or computed from the input shapes (Shape, Gather, Concat, ...)`);
        const t = target.values, allowzero = int(n, 'allowzero', 0);
        t.forEach((d, i) => {
          if (typeof d === 'number' && d < -1) throw attrError(n, `Reshape shape [${t.join(', ')}] holds ${d} (dims are >= 0, or -1 for one inferred)`);
          if (d === 0 && !allowzero && i >= x.length) throw attrError(n, `Reshape shape [${t.join(', ')}] copies dim ${i} (a 0) of an input of rank ${x.length} ${fmt(x)}`);
        });
        if (t.filter((d) => d === -1).length > 1) throw attrError(n, `Reshape shape [${t.join(', ')}] has more than one -1`);
        const known = t.map((d, i) => (d === 0 && !allowzero ? x[i] : d));
        // the input's elements over the target's (symbols cancelled): a whole number for the -1, else 1 (NaN: 0 / 0, any)
        const ratio = inferredDim(x, known.filter((k) => k !== -1));
        if (typeof ratio === 'number' && !Number.isNaN(ratio) && (t.includes(-1) ? !Number.isInteger(ratio) : ratio !== 1))
          throw shapeError(n, `Reshape cannot reshape ${fmt(x)} to [${t.join(', ')}]: the element counts differ`);
        s.set(o, known.map((d) => (d === -1 ? ratio : d)));
        break;
      }
      case 'Transpose': {
        const x = get(n, 0);
        const perm = ints(n, 'perm') ?? x.map((_, i) => x.length - 1 - i);
        if (perm.length !== x.length || perm.some((p) => !Number.isInteger(p) || p < 0 || p >= x.length) || new Set(perm).size !== perm.length)
          throw attrError(n, `Transpose perm [${perm.join(', ')}] is not a permutation of the ${x.length} axes of its input ${fmt(x)}`);
        s.set(o, perm.map((p) => x[p]));
        break;
      }
      case 'Conv': case 'MaxPool': case 'AveragePool': {
        const x = get(n, 0);
        const spatial = spatialRank(n, x);
        const g = convGeometry(n, spatial);
        let k: Dim[];
        if (n.opType === 'Conv') {
          const w = get(n, 1);
          checkConvOperands(n, x, w, typeof w[1] === 'number' ? w[1] * g.group : '?', `${w[1]} per group × ${g.group} groups`);
          k = w.slice(2);
        } else {
          const ks = ints(n, 'kernel_shape') ?? [];
          if (ks.length !== spatial || ks.some((v) => !(v >= 1))) throw attrError(n, `${n.opType} kernel_shape [${ks.join(', ')}] must be ${spatial} sizes >= 1 (input ${fmt(x)})`);
          if (g.pads.some((p, i) => p >= ks[i % spatial])) throw attrError(n, `${n.opType} pads [${g.pads.join(', ')}] must be smaller than the kernel [${ks.join(', ')}]`);
          k = ks;
        }
        const out: Dim[] = [x[0], n.opType === 'Conv' ? get(n, 1)[0] : x[1]];
        for (let i = 0; i < spatial; i++) {
          const h = x[2 + i];
          if (typeof h !== 'number') throw rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": spatial dims must be known`);
          const eff = g.dilations[i] * ((k[i] as number) - 1) + 1;
          const span = h + g.pads[i] + g.pads[i + spatial] - eff;
          let size = (g.ceil ? Math.ceil(span / g.strides[i]) : Math.floor(span / g.strides[i])) + 1;
          if (g.ceil && (size - 1) * g.strides[i] >= h + g.pads[i]) size--; // as PyTorch and onnxruntime
          // no window fits: onnxruntime refuses a Conv, gives a pool an empty output (a negative size it refuses)
          if (span < 0 && (n.opType === 'Conv' || size < 0))
            throw shapeError(n, `${n.opType} kernel spans ${eff} on spatial axis ${i}, more than the ${h + g.pads[i] + g.pads[i + spatial]} of the padded input ${fmt(x)}`);
          out.push(size);
        }
        s.set(o, out);
        if (n.outputs[1]) s.set(n.outputs[1], out);
        break;
      }
      case 'ConvTranspose':
        s.set(o, convTransposeShape(n, get(n, 0), get(n, 1)));
        break;
      case 'Tile': {
        const x = get(n, 0), reps = constInts(n, 1, consts, 'repeats');
        if (reps.length !== x.length) throw attrError(n, `Tile has ${reps.length} repeats [${reps.join(', ')}] for an input of rank ${x.length} ${fmt(x)}`);
        if (reps.some((r) => r < 0)) throw shapeError(n, `Tile repeats [${reps.join(', ')}] give a negative dim`);
        s.set(o, x.map((d, i) => (reps[i] === 1 ? d : typeof d === 'number' ? d * reps[i] : '?')));
        break;
      }
      case 'Resize':
        s.set(o, resizeGeometry(n, get(n, 0), consts).map((a) => a.out));
        break;
      case 'LSTM': case 'GRU': { // unrolled before differentiation (recurrent.ts); these shapes let it find T
        const x = get(n, 0), layout = int(n, 'layout', 0), H = int(n, 'hidden_size', 0);
        const dirs = attrS(n, 'direction', 'forward') === 'bidirectional' ? 2 : 1;
        const [T, B] = layout === 0 ? [x[0], x[1]] : [x[1], x[0]];
        s.set(o, layout === 0 ? [T, dirs, B, H] : [B, T, dirs, H]);
        for (const state of n.outputs.slice(1)) if (state) s.set(state, layout === 0 ? [dirs, B, H] : [B, dirs, H]);
        break;
      }
      case 'Einsum':
        s.set(o, einsumShape(n, n.inputs.map((_, i) => get(n, i))));
        break;
      case 'ReduceSum': case 'ReduceMean': case 'ReduceMax': case 'ReduceMin':
      case 'ReduceL1': case 'ReduceL2': case 'ReduceSumSquare': case 'ReduceLogSumExp': {
        const x = get(n, 0);
        const axes = reduceAxes(n, x.length, consts);
        const keep = int(n, 'keepdims', 1);
        s.set(o, keep ? x.map((d, i) => (axes.includes(i) ? 1 : d)) : x.filter((_, i) => !axes.includes(i)));
        break;
      }
      case 'Unsqueeze': {
        const x = get(n, 0), axes = n.inputs[1] ? constInts(n, 1, consts, 'axes') : ints(n, 'axes') ?? []; // an attribute before opset 13
        const out: Dim[] = [];
        const rank = x.length + axes.length, norm = axes.map((a) => axisIn(n, a, rank, 'axes'));
        checkDistinct(n, norm, axes);
        for (let i = 0, j = 0; i < rank; i++) out.push(norm.includes(i) ? 1 : x[j++]);
        s.set(o, out);
        break;
      }
      case 'Squeeze': {
        const x = get(n, 0);
        const given = n.inputs[1] ? constInts(n, 1, consts, 'axes') : ints(n, 'axes'); // an attribute before opset 13
        const axes = given ? given.map((a) => axisIn(n, a, x.length, 'axes')) : x.map((d, i) => (d === 1 ? i : -1)).filter((i) => i >= 0);
        for (const a of axes) if (!agree(x[a], 1)) throw shapeError(n, `Squeeze of axis ${a} of ${fmt(x)}, whose size is not 1`);
        s.set(o, x.filter((_, i) => !axes.includes(i)));
        break;
      }
      case 'Concat': {
        const xs = n.inputs.map((_, i) => get(n, i));
        const axis = axisIn(n, int(n, 'axis', 0), xs[0].length);
        if (xs.some((x) => x.length !== xs[0].length || x.some((d, i) => i !== axis && !agree(d, xs[0][i]))))
          throw shapeError(n, `Concat on axis ${axis} of inputs that differ in rank or off that axis: ${xs.map(fmt).join(', ')}`);
        const total = xs.reduce((a, x) => (typeof a === 'number' && typeof x[axis] === 'number' ? a + (x[axis] as number) : '?'), 0 as Dim);
        s.set(o, xs[0].map((d, i) => (i === axis ? total : d)));
        break;
      }
      case 'Slice': {
        const x = get(n, 0);
        const starts = constInts(n, 1, consts, 'starts'), ends = constInts(n, 2, consts, 'ends');
        const axes = n.inputs[3] ? constInts(n, 3, consts, 'axes') : starts.map((_, i) => i);
        const steps = n.inputs[4] ? constInts(n, 4, consts, 'steps') : starts.map(() => 1);
        if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length)
          throw attrError(n, `Slice has ${starts.length} starts, ${ends.length} ends, ${axes.length} axes and ${steps.length} steps (as many of each)`);
        const norm = axes.map((a) => axisIn(n, a, x.length, 'axes'));
        checkDistinct(n, norm, axes);
        if (steps.includes(0)) throw attrError(n, `Slice step must not be 0 (steps [${steps.join(', ')}])`);
        const out = x.slice();
        norm.forEach((a, i) => {
          const d = x[a];
          if (typeof d !== 'number') throw rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": Slice needs a known size on axis ${a}`);
          out[a] = sliceCount(d, starts[i], ends[i], steps[i], `node "${nodeLabel(n)}": Slice`);
        });
        s.set(o, out);
        break;
      }
      case 'Split': {
        const x = get(n, 0), axis = axisIn(n, int(n, 'axis', 0), x.length);
        const d = x[axis];
        if (typeof d !== 'number') throw rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": Split needs a known size on axis ${axis}`);
        const given = n.inputs[1] ? constInts(n, 1, consts, 'split') : ints(n, 'split') ?? [];
        if (given.length > 0 && given.length !== n.outputs.length) throw attrError(n, `Split has ${given.length} sizes [${given.join(', ')}] for ${n.outputs.length} outputs`);
        if (given.length > 0 && (given.some((v) => v < 0) || given.reduce((a, b) => a + b, 0) !== d))
          throw shapeError(n, `Split sizes [${given.join(', ')}] do not sum to ${d}, axis ${axis} of its input ${fmt(x)}`);
        const sizes = given.length > 0 ? given : n.outputs.map((_, i, all) => Math.ceil(d / all.length) - (i === all.length - 1 ? Math.ceil(d / all.length) * all.length - d : 0));
        n.outputs.forEach((out, i) => s.set(out, x.map((dim, j) => (j === axis ? sizes[i] : dim))));
        break;
      }
      case 'Gather': {
        const x = get(n, 0), idx = get(n, 1), axis = axisIn(n, int(n, 'axis', 0), x.length), d = x[axis], ids = consts.get(n.inputs[1]);
        const bad = typeof d === 'number' && isNumeric(ids) ? (ids.values as number[]).find((v) => v < -d || v >= d) : undefined;
        if (bad !== undefined) throw attrError(n, `Gather index ${bad} is out of range for axis ${axis} of size ${d}`);
        s.set(o, [...x.slice(0, axis), ...idx, ...x.slice(axis + 1)]);
        break;
      }
      case 'GlobalAveragePool': {
        const x = get(n, 0);
        s.set(o, [x[0], x[1], ...x.slice(2).map(() => 1)]);
        break;
      }
      default:
        throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeLabel(n)}": operator ${n.opType} is not supported by the training-graph derivation`);
    }
    foldNode(n, consts, s, (i) => get(n, i)); // a statically known result replaces the inferred shape
  }
  return s;
}

/** Operators only folding infers: a result not known statically is not supported. */
const FOLD_ONLY = new Set(['Constant', 'Shape', 'Size', 'ConstantOfShape', 'Range', 'ReduceProd']);

/**
 * Why `name`, an input of node `n`, has no shape when `n` is reached: a node after it (or
 * itself) computes it (a cycle, or nodes out of topological order), nothing defines it, or a
 * graph input gives none.
 */
function unknownInput(g: Graph, n: Node, name: string): Error {
  const at = g.nodes.indexOf(n), by = g.nodes.findIndex((m) => m.outputs.includes(name));
  const head = `node "${nodeLabel(n)}" reads "${name}"`;
  if (by >= at)
    return rangeError('ERR_SPARTAN_ONNX', `${head}, which ${by === at ? 'it computes itself' : `node "${nodeLabel(g.nodes[by])}" computes only after it`}: the graph has a cycle, or its nodes are not in topological order`);
  if (by < 0 && !g.inputs.some((v) => v.name === name) && !g.initializers.some((t) => t.name === name))
    return rangeError('ERR_SPARTAN_ONNX', `${head}, which no earlier node, graph input or initializer defines`);
  return rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": the shape of "${name}" is unknown`);
}

/** The number of spatial dims of a Conv's, ConvTranspose's or pool's input [N, C, ...spatial]. */
function spatialRank(n: Node, x: Dim[]): number {
  if (x.length < 3) throw shapeError(n, `${n.opType} needs an input [N, C, ...spatial dims], got ${fmt(x)}`);
  return x.length - 2;
}

/** A Conv's (ConvTranspose's) input and weight: one rank, the input's channels those the weight takes. */
function checkConvOperands(n: Node, x: Dim[], w: Dim[], channels: Dim, how: string): void {
  if (w.length !== x.length) throw shapeError(n, `${n.opType} weight ${fmt(w)} is not of the rank of its input ${fmt(x)}`);
  if (!agree(x[1], channels)) throw shapeError(n, `${n.opType} input ${fmt(x)} has ${x[1]} channels, but its weight ${fmt(w)} takes ${channels} (${how})`);
}

/**
 * numpy matmul shapes: rank >= 2 operands multiply their last two dims and broadcast the
 * rest; a 1-D left operand is a row ([1, K], that dim dropped from the result), a 1-D
 * right operand a column ([K, 1], likewise).
 */
export function matMulShape(n: Node, a: Dim[], b: Dim[]): Dim[] {
  if (a.length === 0 || b.length === 0) throw rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": MatMul of a scalar`);
  const a2 = a.length === 1 ? [1, ...a] : a, b2 = b.length === 1 ? [...b, 1] : b;
  if (!agree(a2[a2.length - 1], b2[b2.length - 2])) throw shapeError(n, `MatMul inner dims differ: ${fmt(a)} times ${fmt(b)}`);
  const out = [...broadcast(a2.slice(0, -2), b2.slice(0, -2), n), a2[a2.length - 2], b2[b2.length - 1]];
  if (b.length === 1) out.pop();
  if (a.length === 1) out.splice(out.length - (b.length === 1 ? 1 : 2), 1);
  return out;
}

export type PadMode = 'constant' | 'reflect' | 'edge' | 'wrap';
const PAD_MODES: readonly string[] = ['constant', 'reflect', 'edge', 'wrap'];

/** A Pad node's mode (an error naming the node for one ONNX does not define). */
export function padMode(n: Node): PadMode {
  const mode = attrS(n, 'mode', 'constant');
  if (!PAD_MODES.includes(mode)) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeLabel(n)}": Pad mode "${mode}" is not supported (constant, reflect, edge, wrap)`);
  return mode as PadMode;
}

/** The static amounts of a Pad on each axis (negative: cropped). */
export function padAmounts(n: Node, x: Dim[], consts: Consts): { dim: Dim; before: number; after: number }[] {
  padMode(n);
  const pads = n.inputs[1] ? constInts(n, 1, consts, 'pads') : ints(n, 'pads') ?? [];
  const rank = x.length;
  const axes = n.inputs[3] ? constInts(n, 3, consts, 'axes').map((a) => axisIn(n, a, rank, 'axes')) : x.map((_, i) => i);
  if (pads.length !== 2 * axes.length)
    throw rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": Pad has ${pads.length} pads for ${axes.length} axes`);
  const out = x.map((dim) => ({ dim, before: 0, after: 0 }));
  axes.forEach((ax, i) => {
    out[ax].before = pads[i];
    out[ax].after = pads[i + axes.length];
  });
  return out;
}

export interface ConvGeometry {
  strides: number[];
  pads: number[]; // [begin..., end...]
  dilations: number[];
  group: number;
  /** Pools only: output sizes round up (a last window that starts in the end padding is dropped). */
  ceil: boolean;
}

/** Strides, explicit pads, dilations and group of a Conv/pool node (auto_pad NOTSET or VALID only). */
export function convGeometry(n: Node, spatial: number): ConvGeometry {
  const autoPad = attrS(n, 'auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID')
    throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeLabel(n)}": auto_pad ${autoPad} is not supported (export with explicit pads)`);
  const g: ConvGeometry = {
    ceil: int(n, 'ceil_mode', 0) === 1,
    strides: ints(n, 'strides') ?? new Array(spatial).fill(1),
    pads: ints(n, 'pads') ?? new Array(2 * spatial).fill(0),
    dilations: ints(n, 'dilations') ?? new Array(spatial).fill(1),
    group: int(n, 'group', 1),
  };
  for (const [what, v, len] of [['strides', g.strides, spatial], ['dilations', g.dilations, spatial], ['pads', g.pads, 2 * spatial]] as const)
    if (v.length !== len || v.some((d) => !Number.isInteger(d) || d < (what === 'pads' ? 0 : 1)))
      throw attrError(n, `${n.opType} ${what} [${v.join(', ')}] must be ${len} integers ${what === 'pads' ? '>= 0 (begins, then ends)' : '>= 1'} for ${spatial} spatial dims`);
  if (!(g.group >= 1)) throw attrError(n, `${n.opType} group ${g.group} must be >= 1`);
  return g;
}

/** The -1 of a Reshape: the elements of `x` over those of `rest`, cancelling dim symbols. */
function inferredDim(x: Dim[], rest: Dim[]): Dim {
  const syms = x.filter((d): d is string => typeof d === 'string');
  let ratio = 1;
  for (const d of x) if (typeof d === 'number') ratio *= d;
  for (const d of rest) {
    if (typeof d === 'number') ratio /= d;
    else {
      const at = d === '?' ? -1 : syms.indexOf(d);
      if (at < 0) return '?';
      syms.splice(at, 1);
    }
  }
  if (syms.length === 0) return ratio;
  return syms.length === 1 && ratio === 1 && syms[0] !== '?' ? syms[0] : '?';
}

/** The values of a constant int input (axes, starts, ...); names the node when they are not static. */
export function constInts(n: Node, input: number, consts: Consts, what: string): number[] {
  const v = consts.get(n.inputs[input]);
  if (!v) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeLabel(n)}": ${n.opType} needs constant ${what}`);
  if (!isNumeric(v))
    throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeLabel(n)}": ${n.opType} needs constant ${what}, but they depend on the dynamic dimension ${v.values.find((d) => typeof d === 'string')}`);
  return v.values;
}

/** Reduce axes (input since opset 13 for ReduceSum, 18 for ReduceMean; else attribute), normalised; all when absent. */
export function reduceAxes(n: Node, rank: number, consts: Consts): number[] {
  const raw = n.inputs[1] ? constInts(n, 1, consts, 'axes') : ints(n, 'axes');
  const all = Array.from({ length: rank }, (_, i) => i);
  if (!raw || raw.length === 0) return int(n, 'noop_with_empty_axes', 0) ? [] : all;
  return raw.map((a) => axisIn(n, a, rank, 'axes')).sort((a, b) => a - b);
}

/** ConvTranspose output: [N, M, s (H - 1) + output_padding + d (k - 1) + 1 - pads] (explicit pads only). */
function convTransposeShape(n: Node, x: Dim[], w: Dim[]): Dim[] {
  const spatial = spatialRank(n, x), g = convGeometry(n, spatial);
  if (n.attrs.output_shape) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${nodeLabel(n)}": ConvTranspose with output_shape is not supported (export with explicit pads and output_padding)`);
  const op = ints(n, 'output_padding') ?? new Array(spatial).fill(0);
  checkConvOperands(n, x, w, w[0], 'its first dim');
  const out: Dim[] = [x[0], typeof w[1] === 'number' ? w[1] * g.group : '?'];
  for (let i = 0; i < spatial; i++) {
    const h = x[2 + i], k = w[2 + i];
    if (typeof h !== 'number' || typeof k !== 'number') throw rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": spatial dims must be known`);
    out.push(g.strides[i] * (h - 1) + op[i] + g.dilations[i] * (k - 1) + 1 - g.pads[i] - g.pads[i + spatial]);
  }
  return out;
}

/** One axis of a Resize: input and output sizes and the scale its coordinate transform uses. */
export interface ResizeAxis { in: Dim; out: Dim; scale: number }

/**
 * A Resize node's geometry per axis (sizes or scales constant; `axes` of opset 18 honoured).
 * The modes the derivation can differentiate are checked here, so a model it cannot train
 * fails at shape inference with the node's name.
 */
export function resizeGeometry(n: Node, x: Dim[], consts: Consts): ResizeAxis[] {
  const name = nodeLabel(n);
  const mode = attrS(n, 'mode', 'nearest');
  if (mode !== 'nearest' && mode !== 'linear') throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${name}": Resize mode "${mode}" is not supported (nearest, linear)`);
  if (int(n, 'antialias', 0)) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${name}": Resize with antialias is not supported`);
  const policy = attrS(n, 'keep_aspect_ratio_policy', 'stretch');
  if (policy !== 'stretch') throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${name}": Resize keep_aspect_ratio_policy "${policy}" is not supported (stretch)`);
  const rank = x.length;
  const axes = (ints(n, 'axes') ?? x.map((_, i) => i)).map((a) => (a + rank) % rank);
  const out: ResizeAxis[] = x.map((d) => ({ in: d, out: d, scale: 1 }));
  const given = (i: number) => !!n.inputs[i] && !(consts.get(n.inputs[i]) && consts.get(n.inputs[i])!.dims.reduce((p, q) => p * q, 1) === 0);
  if (given(3)) {
    // sizes computed from the input's shape keep its batch symbol: Concat(Shape(x)[:2], [h, w])
    const known = consts.get(n.inputs[3]);
    if (!known) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${name}": Resize needs constant sizes`);
    const sizes = known.values;
    axes.forEach((ax, i) => {
      const d = x[ax];
      if (sizes[i] === d) return;
      if (typeof sizes[i] !== 'number') throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${name}": Resize needs constant sizes, but they depend on the dynamic dimension ${sizes[i]}`);
      if (typeof d !== 'number') throw rangeError('ERR_SPARTAN_ONNX', `node "${name}": Resize needs a known size on axis ${ax}`);
      out[ax] = { in: d, out: sizes[i] as number, scale: (sizes[i] as number) / d };
    });
  } else if (given(2)) {
    const scales = constInts(n, 2, consts, 'scales');
    axes.forEach((ax, i) => {
      const d = x[ax];
      if (scales[i] === 1) return;
      if (typeof d !== 'number') throw rangeError('ERR_SPARTAN_ONNX', `node "${name}": Resize needs a known size on axis ${ax}`);
      out[ax] = { in: d, out: Math.floor(d * scales[i]), scale: scales[i] };
    });
  } else throw rangeError('ERR_SPARTAN_ONNX', `node "${name}": Resize has neither scales nor sizes`);
  return out;
}

/** An Einsum equation: one term per operand and the output's, each a list of index letters. */
export function parseEinsum(n: Node): { inputs: string[][]; output: string[] } {
  const eq = attrS(n, 'equation', '').replace(/\s+/g, '');
  const name = nodeLabel(n);
  if (eq.includes('.')) throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${name}": Einsum with an ellipsis ("${eq}") is not supported (name every axis)`);
  const [lhs, rhs] = eq.split('->');
  const inputs = lhs.split(',').map((t) => [...t]);
  if (inputs.length !== n.inputs.length || inputs.some((t) => t.some((c) => !/[a-zA-Z]/.test(c))))
    throw rangeError('ERR_SPARTAN_ONNX', `node "${name}": Einsum equation "${eq}" does not fit its ${n.inputs.length} inputs`);
  const counts = new Map<string, number>();
  for (const c of inputs.flat()) counts.set(c, (counts.get(c) ?? 0) + 1);
  const output = rhs !== undefined ? [...rhs] : [...counts.keys()].filter((c) => counts.get(c) === 1).sort();
  return { inputs, output };
}

function einsumShape(n: Node, xs: Dim[][]): Dim[] {
  const { inputs, output } = parseEinsum(n);
  const dims = new Map<string, Dim>();
  inputs.forEach((t, i) => {
    if (t.length !== xs[i].length) throw rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": Einsum term "${t.join('')}" does not fit an input of rank ${xs[i].length}`);
    t.forEach((c, j) => {
      const had = dims.get(c), d = xs[i][j];
      if (had !== undefined && had !== 1 && d !== 1 && !agree(had, d)) throw shapeError(n, `Einsum index "${c}" is ${had} in one operand and ${d} in another (${xs.map(fmt).join(', ')})`);
      if (had === undefined || had === 1) dims.set(c, d);
    });
  });
  return output.map((c) => dims.get(c) ?? '?');
}
