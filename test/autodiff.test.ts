// Derived training graphs: every gradient checked by central differences through
// onnxruntime-node, on small random float64 models.
import { expect } from 'chai';
import { deriveTrainingGraph } from '../lib/graph/autodiff';
import { GraphBuilder, model } from '../lib/graph/builder';
import { decodeModel, encodeModel, type Model } from '../lib/graph/model';
import { DataType } from '../lib/graph/schema';
import { checkGradients, trainingOutputs } from './gradcheck';
import { inferShapes } from '../lib/graph/shapes';
import { knownFromTensor } from '../lib/graph/fold';
import { freshSeed, normal, rng } from './reference';
import { codeOf } from './helpers';

const seed = freshSeed();
const rand = rng(seed);
const D = DataType.DOUBLE;
const randn = (n: number, s = 0.5) => Float64Array.from({ length: n }, () => normal(rand) * s);

/** x [N, 6] -> ... -> logits [N, 4], exercising every supported operator. */
function zooModel(): Model {
  const b = new GraphBuilder();
  const x = b.input('x', D, ['N', 6]);
  const w1 = b.initializer('w1', [8, 6], randn(48), D);
  const b1 = b.initializer('b1', [8], randn(8), D);
  const h = b.op('Gemm', [x, w1, b1], { transB: { i: 1 }, alpha: { f: 0.7 }, beta: { f: 1.3 } });
  const r = b.op('Relu', [h]);
  const l = b.op('LeakyRelu', [h], { alpha: { f: 0.2 } });
  const s = b.op('Sigmoid', [b.op('Mul', [r, b.initializer('scale', [1, 8], randn(8), D)])]);
  const t = b.op('Tanh', [b.op('Sub', [l, b.initializer('shift', [8], randn(8), D)])]);
  const q = b.op('Div', [b.op('Add', [s, t]), b.op('Add', [b.op('Mul', [s, s]), b.initializer('one', [], Float64Array.of(1.5), D)])]);
  const w2 = b.initializer('w2', [8, 5], randn(40), D);
  const m = b.op('MatMul', [b.op('Neg', [q]), w2]);
  const tr = b.op('Transpose', [b.op('Identity', [m])], { perm: { ints: [1, 0] } });
  const back = b.op('Transpose', [tr], { perm: { ints: [1, 0] } });
  const flat = b.op('Flatten', [b.op('Reshape', [back, b.int64s([-1, 5, 1])])], { axis: { i: 1 } });
  const w3 = b.initializer('w3', [5, 4], randn(20), D);
  b.op('Gemm', [flat, w3, b.initializer('b3', [1, 4], randn(4), D)], { transA: { i: 0 } }, ['logits']);
  b.output('logits', D, ['N', 4]);
  return model(b.graph('zoo'));
}

describe(`training-graph derivation (seed ${seed})`, () => {
  it('writes models that decode to the same graph', () => {
    const m = zooModel();
    const back = decodeModel(encodeModel(m));
    expect(back.graph.nodes.map((n) => [n.opType, n.inputs, n.outputs])).to.deep.equal(m.graph.nodes.map((n) => [n.opType, n.inputs, n.outputs]));
    expect(back.graph.initializers.map((t) => [t.name, t.dims, Array.from(t.data as Float64Array)])).to.deep.equal(m.graph.initializers.map((t) => [t.name, t.dims, Array.from(t.data as Float64Array)]));
    expect(back.opset).to.equal(17);
    // attributes at their default value (0, 0.0, "") are left off the wire and read back as that value
    const z = new GraphBuilder();
    z.op('Concat', ['a', 'b'], { axis: { i: 0 } });
    z.op('LeakyRelu', ['a'], { alpha: { f: 0 } });
    z.op('Gelu', ['a'], { approximate: { s: '' } });
    z.op('Constant', [], { value_int: { i: 0 } });
    z.op('LSTM', ['a'], { activations: { strings: ['Sigmoid', 'Tanh', 'Tanh'] } }); // a STRINGS attribute
    expect(decodeModel(encodeModel(model(z.graph('zeros')))).graph.nodes.map((n) => n.attrs)).to.deep.equal(z.nodes.map((n) => n.attrs));
  });

  it('cross-entropy (with label smoothing): every gradient of every supported operator matches finite differences', async function () {
    this.timeout(120000);
    const N = 5;
    const feeds = { x: { data: randn(N * 6, 1), dims: [N, 6] }, labels: { data: BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * 4))), dims: [N] } };
    const n = await checkGradients(zooModel(), feeds, { logits: 'logits', labelSmoothing: 0.1 }, 1e-6);
    expect(n).to.equal(48 + 8 + 8 + 8 + 40 + 20 + 4);
  });

  it('mean-squared error, and a chosen subset of parameters', async function () {
    this.timeout(120000);
    const N = 3;
    const feeds = { x: { data: randn(N * 6, 1), dims: [N, 6] }, labels: { data: randn(N * 4, 1), dims: [N, 4] } };
    const train = deriveTrainingGraph(zooModel(), { logits: 'logits', loss: 'mse', params: ['w1', 'w3'] });
    expect(train.graph.outputs.map((o) => o.name)).to.deep.equal(['loss', 'grad.w1', 'grad.w3', 'logits']);
    expect(train.graph.initializers.some((t) => t.name === 'b1')).to.equal(true); // not trained: stays an initializer
    const n = await checkGradients(zooModel(), feeds as never, { logits: 'logits', loss: 'mse', params: ['w1', 'w3'] }, 1e-6);
    expect(n).to.equal(48 + 20);
  });

  it('names what it cannot do: a missing logits output, an unsupported operator, a non-parameter', () => {
    expect(codeOf(() => deriveTrainingGraph(zooModel(), { logits: 'nope' }))).to.match(/^ERR_SPARTAN_ONNX: .*"nope"/);
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 4]);
    b.op('Round', [b.op('Gemm', [x, b.initializer('w', [4, 4], randn(16), D)])], {}, ['logits']);
    b.nodes[1].name = 'my_round';
    b.output('logits', D, ['N', 4]);
    expect(codeOf(() => deriveTrainingGraph(model(b.graph('g')), { logits: 'logits' }))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: node "my_round": operator Round is not supported/);
    expect(codeOf(() => deriveTrainingGraph(zooModel(), { logits: 'logits', params: ['x'] }))).to.match(/^ERR_SPARTAN_ONNX: parameter "x"/);
  });

  it('refuses to define a name the model has: the labels input (an output, an input, a parameter), loss, grad.<param>', () => {
    for (const taken of ['logits', 'x', 'w1'])
      expect(codeOf(() => deriveTrainingGraph(zooModel(), { logits: 'logits', labels: taken }))).to.equal(
        `ERR_SPARTAN_OPTION: the model already has a tensor named "${taken}": name the training graph's labels input otherwise (the labels option; graph derive --labels)`);
    const renamed = (from: string, to: string) => {
      const m = zooModel();
      for (const n of m.graph.nodes) n.outputs = n.outputs.map((o) => (o === from ? to : o));
      for (const n of m.graph.nodes) n.inputs = n.inputs.map((o) => (o === from ? to : o));
      return m;
    };
    const inner = zooModel().graph.nodes[0].outputs[0]; // the Gemm's output, an inner tensor
    expect(codeOf(() => deriveTrainingGraph(renamed(inner, 'loss'), { logits: 'logits' }))).to.equal('ERR_SPARTAN_ONNX: the model already has a tensor named "loss", which the training graph needs for the loss output');
    expect(codeOf(() => deriveTrainingGraph(renamed(inner, 'grad.w2'), { logits: 'logits' }))).to.match(/^ERR_SPARTAN_ONNX: the model already has a tensor named "grad.w2", which the training graph needs for the gradient output of "w2"/);
    expect(codeOf(() => deriveTrainingGraph(renamed(inner, 'grad.w2'), { logits: 'logits', params: ['w1'] }))).to.equal('no error');
  });
});

describe(`training-graph derivation: convolutions and pooling (seed ${seed})`, () => {
  // onnxruntime's CPU Conv has no float64 kernel: these run in float32, with a step and
  // tolerance for it, on functions that are smooth in every parameter (no kinks inside the step).
  const F = DataType.FLOAT;
  const r32 = (n: number, s = 0.3) => Float32Array.from(randn(n, s));

  it('Conv (strides, asymmetric pads, dilations, groups, bias), AveragePool, GlobalAveragePool', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', F, ['N', 3, 9, 9]);
    const c1 = b.op('Conv', [x, b.initializer('k1', [4, 3, 3, 3], r32(108), F), b.initializer('kb1', [4], r32(4), F)], { strides: { ints: [2, 1] }, pads: { ints: [1, 0, 2, 1] }, dilations: { ints: [1, 2] } });
    const c2 = b.op('Conv', [b.op('Tanh', [c1]), b.initializer('k2', [6, 2, 2, 2], r32(48), F)], { group: { i: 2 } });
    const ap = b.op('AveragePool', [c2], { kernel_shape: { ints: [2, 2] }, strides: { ints: [1, 2] } });
    const gp = b.op('GlobalAveragePool', [b.op('Mul', [ap, ap])]);
    b.op('Gemm', [b.op('Flatten', [gp], { axis: { i: 1 } }), b.initializer('fc', [5, 6], r32(30), F)], { transB: { i: 1 } }, ['logits']);
    b.output('logits', F, ['N', 5]);
    const fwd = model(b.graph('convs'));
    const before = JSON.stringify(fwd.graph.nodes);
    const N = 2;
    const feeds = { x: { data: r32(N * 243, 1), dims: [N, 3, 9, 9] }, labels: { data: BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * 5))), dims: [N] } };
    expect(await checkGradients(fwd, feeds, { logits: 'logits' }, 1e-3, 1e-2)).to.equal(108 + 4 + 48 + 30);
    expect(JSON.stringify(fwd.graph.nodes)).to.equal(before); // the caller's model is untouched
  });

  it('MaxPool (overlapping, strided windows): the gradient is scattered to the argmax', async function () {
    this.timeout(120000);
    // per-channel positive scale and shift before the pool keep every window's ordering,
    // so the loss is smooth in them while their gradient flows through the max-pool
    const b = new GraphBuilder();
    const x = b.input('x', F, ['N', 3, 6, 7]);
    const scaled = b.op('Add', [b.op('Mul', [x, b.initializer('s', [1, 3, 1, 1], Float32Array.from({ length: 3 }, () => 0.5 + rand()), F)]), b.initializer('t', [1, 3, 1, 1], r32(3), F)]);
    const mp = b.op('MaxPool', [scaled], { kernel_shape: { ints: [3, 2] }, strides: { ints: [1, 2] } });
    b.op('Gemm', [b.op('Flatten', [mp], { axis: { i: 1 } }), b.initializer('fc', [4, 36], r32(144), F)], { transB: { i: 1 } }, ['logits']);
    b.output('logits', F, ['N', 4]);
    const N = 3;
    const feeds = { x: { data: r32(N * 126, 1), dims: [N, 3, 6, 7] }, labels: { data: BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * 4))), dims: [N] } };
    expect(await checkGradients(model(b.graph('pool')), feeds, { logits: 'logits' }, 1e-3, 1e-2)).to.equal(3 + 3 + 144);
  });
});

describe(`training-graph derivation: softmax, reductions, shape ops, BatchNormalization (seed ${seed})`, () => {
  // float64 where onnxruntime has every kernel (it has no float64 Erf: Tanh stands in), float32 with Erf
  for (const [F, act, tol, step] of [[D, 'Tanh', 1e-6, 1e-5], [DataType.FLOAT, 'Erf', 1e-3, 1e-2]] as const)
  it(`${F === D ? 'float64' : 'float32'}: Softmax, LogSoftmax, ${act}, ReduceSum, ReduceMean, Unsqueeze, Squeeze, Cast, Concat, Slice, BatchNormalization`, async function () {
    this.timeout(120000);
    const T = F === D ? Float64Array : Float32Array;
    const r32 = (n: number, s = 0.5) => T.from(randn(n, s));
    const b = new GraphBuilder();
    const x = b.input('x', F, ['N', 6]);
    const h = b.op('Gemm', [x, b.initializer('w1', [6, 8], r32(48), F)]);
    const u = b.op('Unsqueeze', [h, b.int64s([2, 3])]);
    const bn = b.op('BatchNormalization', [u, b.initializer('bn.scale', [8], r32(8), F), b.initializer('bn.bias', [8], r32(8), F),
      b.initializer('bn.mean', [8], r32(8), F), b.initializer('bn.var', [8], T.from(Array.from({ length: 8 }, () => 0.5 + rand())), F)], { epsilon: { f: 1e-3 } });
    const q = b.op('Squeeze', [bn, b.int64s([2, 3])]);
    const e = b.op(act, [b.op('Mul', [q, b.constant(T.of(0.5), [], F)])]);
    const sl = b.op('Slice', [e, b.int64s([1]), b.int64s([7]), b.int64s([1])]);
    const sm = b.op('Softmax', [b.op('Gemm', [x, b.initializer('w2', [6, 6], r32(36), F)])], { axis: { i: 1 } });
    const ls = b.op('LogSoftmax', [b.op('Gemm', [x, b.initializer('w3', [6, 6], r32(36), F)])], { axis: { i: 1 } });
    const c = b.op('Concat', [sl, sm, ls], { axis: { i: 1 } });
    const rs = b.op('ReduceSum', [c, b.int64s([1])], { keepdims: { i: 1 } });
    const rm = b.op('Unsqueeze', [b.op('ReduceMean', [b.op('Mul', [c, c])], { axes: { ints: [1] }, keepdims: { i: 0 } }), b.int64s([1])]);
    // z = c + 0.05 rs rm: O(1) values keep the loss mildly curved, so float32 central differences are accurate
    const z = b.op('Add', [c, b.op('Mul', [b.op('Mul', [b.op('Cast', [rs], { to: { i: F } }), rm]), b.constant(T.of(0.05), [], F)])]);
    b.op('Gemm', [z, b.initializer('w4', [18, 5], r32(90), F)], {}, ['logits']);
    b.output('logits', F, ['N', 5]);
    const fwd = model(b.graph('ops'));
    const train = deriveTrainingGraph(fwd, { logits: 'logits' });
    const grads = train.graph.outputs.map((o) => o.name).filter((n) => n.startsWith('grad.'));
    expect(grads).to.deep.equal(['grad.w1', 'grad.bn.scale', 'grad.bn.bias', 'grad.w2', 'grad.w3', 'grad.w4']); // running stats are not parameters
    const N = 3;
    const feeds = { x: { data: r32(N * 6, 1), dims: [N, 6] }, labels: { data: BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * 5))), dims: [N] } };
    const params = ['w1', 'bn.scale', 'bn.bias', 'w2', 'w3', 'w4'];
    expect(await checkGradients(fwd, feeds, { logits: 'logits', params }, tol, step)).to.equal(48 + 8 + 8 + 36 + 36 + 90);
  });
});

describe(`training-graph derivation: Split, Gather, LayerNormalization (seed ${seed})`, () => {
  it('float64: gradients match finite differences (a Split output left unused gets zeros)', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 4]);
    const emb = b.initializer('emb', [7, 4], randn(28), D);
    const rows = b.op('Gather', [emb, b.int64s([3, 0, 3, 6])]); // [4, 4], a repeated index accumulates
    const h = b.op('Gemm', [x, rows]); // [N, 4]
    const ln = b.op('LayerNormalization', [b.op('Gemm', [h, b.initializer('w', [4, 6], randn(24), D)]), b.initializer('ln.scale', [6], randn(6), D), b.initializer('ln.bias', [6], randn(6), D)], { axis: { i: -1 }, epsilon: { f: 1e-3 } });
    const [p1, , p3] = [b.fresh('s'), b.fresh('s'), b.fresh('s')];
    const parts = [p1, b.fresh('s_unused'), p3];
    b.op('Split', [ln, b.int64s([2, 1, 3])], { axis: { i: 1 } }, parts);
    const z = b.op('Concat', [b.op('Tanh', [parts[0]]), parts[2]], { axis: { i: 1 } }); // [N, 5]
    b.op('Gemm', [z, b.initializer('out', [5, 3], randn(15), D)], {}, ['logits']);
    b.output('logits', D, ['N', 3]);
    const N = 4;
    const feeds = { x: { data: randn(N * 4, 1), dims: [N, 4] }, labels: { data: BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * 3))), dims: [N] } };
    expect(await checkGradients(model(b.graph('sgl')), feeds, { logits: 'logits' }, 1e-6, 1e-5)).to.equal(28 + 24 + 6 + 6 + 15);
  });
});

describe(`training-graph derivation: Concat along a dynamic axis (seed ${seed})`, () => {
  it('float64: [N, T, 3] joined to itself transformed along T (2T positions, T known only at run time): gradients match finite differences', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 'T', 3]);
    const h = b.op('Tanh', [b.op('MatMul', [x, b.initializer('w1', [3, 3], randn(9), D)])]);
    const joined = b.op('Concat', [h, b.op('Mul', [x, b.initializer('scale', [3], randn(3), D)])], { axis: { i: 1 } }); // [N, 2T, 3]
    const pooled = b.op('ReduceMean', [b.op('Mul', [joined, joined])], { axes: { ints: [1] }, keepdims: { i: 0 } });
    b.op('Gemm', [pooled, b.initializer('w2', [3, 4], randn(12), D)], {}, ['logits']);
    b.output('logits', D, ['N', 4]);
    const N = 3, T = 5;
    const feeds = { x: { data: randn(N * T * 3, 1), dims: [N, T, 3] }, labels: { data: BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * 4))), dims: [N] } };
    expect(await checkGradients(model(b.graph('concat-t')), feeds, { logits: 'logits' }, 1e-6, 1e-5)).to.equal(9 + 3 + 12);
  });
});

describe(`training-graph derivation: Gather with indices fed at run time (seed ${seed})`, () => {
  it('float64: embedding rows, another axis, int32 and negative indices, a scalar index: gradients match finite differences', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const ids = b.input('ids', DataType.INT64, ['N', 3]); // token ids, repeats and negatives
    const cols = b.input('cols', DataType.INT32, ['N']); // int32 indices into axis 1
    const pick = b.input('pick', DataType.INT64, []); // one row, a scalar index
    const emb = b.initializer('emb', [7, 4], randn(28), D);
    const rows = b.op('Gather', [emb, ids]); // [N, 3, 4]
    const table = b.initializer('table', [4, 6], randn(24), D);
    const picked = b.op('Transpose', [b.op('Gather', [table, cols], { axis: { i: 1 } })], { perm: { ints: [1, 0] } }); // [N, 4]
    const one = b.op('Gather', [b.initializer('bank', [5, 4], randn(20), D), pick]); // [4]
    const h = b.op('Tanh', [b.op('Add', [b.op('ReduceSum', [rows, b.int64s([1])], { keepdims: { i: 0 } }), b.op('Mul', [picked, one])])]); // [N, 4]
    b.op('Gemm', [h, b.initializer('out', [4, 3], randn(12), D)], {}, ['logits']);
    b.output('logits', D, ['N', 3]);
    const N = 4;
    const feeds = {
      ids: { data: BigInt64Array.from([0, 3, 3, -1, 6, 2, -7, 5, 1, 3, 3, 3], BigInt), dims: [N, 3] },
      cols: { data: Int32Array.of(5, -2, 0, 5), dims: [N] },
      pick: { data: BigInt64Array.of(-2n), dims: [] },
      labels: { data: BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * 3))), dims: [N] },
    };
    const fwd = model(b.graph('gather'));
    expect(await checkGradients(fwd, feeds, { logits: 'logits' }, 1e-6, 1e-5)).to.equal(28 + 24 + 20 + 12);
    // the rows no index picked get exactly zero
    const out = await trainingOutputs(fwd, feeds, { logits: 'logits' });
    const g = out['grad.bank'] as Float64Array;
    expect([0, 1, 2, 4].flatMap((r) => Array.from(g.subarray(4 * r, 4 * r + 4))).every((v) => v === 0)).to.equal(true);
    expect(Array.from(g.subarray(12, 16)).some((v) => v !== 0)).to.equal(true);
  });
});

describe(`training-graph derivation: Slice with steps, MaxPool with ceil_mode (seed ${seed})`, () => {
  it('float64: strided, reversed and empty slices, and a ceil-mode max pool: gradients match finite differences', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 6, 5]);
    const img = b.input('img', D, ['N', 1, 4, 4]);
    const slice = (t: string, starts: number[], ends: number[], axes: number[], steps: number[]) =>
      b.op('Slice', [t, b.int64s(starts), b.int64s(ends), b.int64s(axes), b.int64s(steps)]);
    // rows 5, 3, 1 (reversed, stride 2; the end far below clamps) and columns 0, 2, 4
    const h = slice(b.op('Mul', [x, b.initializer('p', [6, 5], randn(30), D)]), [5, 0], [-100, 5], [1, 2], [-2, 2]); // [N, 3, 3]
    const rows = slice(b.initializer('q', [7, 3], randn(21), D), [1], [7], [0], [3]); // rows 1, 4: [2, 3]
    const none = slice(b.initializer('r', [4, 3], randn(12), D), [2], [2], [0], [2]); // [0, 3]: r gets zeros
    const stack = b.op('Concat', [rows, none, b.initializer('s', [1, 3], randn(3), D)], { axis: { i: 0 } }); // [3, 3]
    const mixed = b.op('Reshape', [b.op('Tanh', [b.op('MatMul', [h, stack])]), b.int64s([-1, 9])]); // [N, 9]
    // 4x4 -> k 3, stride 2: floor mode gives 1x1, ceil mode 2x2 (windows cut by the edge)
    const scaled = b.op('Mul', [img, b.initializer('w', [1, 2, 4, 4], randn(32), D)]); // [N, 2, 4, 4] (no float64 Conv in onnxruntime)
    const pool = b.op('MaxPool', [scaled], { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] }, ceil_mode: { i: 1 } });
    const pooled = b.op('Reshape', [pool, b.int64s([-1, 8])]);
    // k 2, stride 2, one row and column of end padding: ceil mode's third window would start in
    // the padding, so it is dropped (2x2, as PyTorch and onnxruntime do)
    const cut = b.op('MaxPool', [scaled], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] }, pads: { ints: [0, 0, 1, 1] }, ceil_mode: { i: 1 } });
    const edge = b.op('Reshape', [cut, b.int64s([-1, 8])]);
    const feat = b.op('Concat', [mixed, pooled, edge], { axis: { i: 1 } }); // [N, 25]
    b.op('Gemm', [feat, b.initializer('out', [25, 3], randn(75, 0.3), D)], {}, ['logits']);
    b.output('logits', D, ['N', 3]);
    const N = 3;
    const feeds = {
      x: { data: randn(N * 30, 1), dims: [N, 6, 5] }, img: { data: randn(N * 16, 1), dims: [N, 1, 4, 4] },
      labels: { data: BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * 3))), dims: [N] },
    };
    const fwd = model(b.graph('strided'));
    // the derivation's shapes agree with onnxruntime's (which the Reshapes to 8 columns check)
    const consts = new Map(fwd.graph.initializers.filter((t) => t.dataType === DataType.INT64).map((t) => [t.name, knownFromTensor(t)]));
    const shapes = inferShapes(fwd, consts);
    expect([shapes.get(pool), shapes.get(cut), shapes.get(h), shapes.get(none)]).to.deep.equal([['N', 2, 2, 2], ['N', 2, 2, 2], ['N', 3, 3], [0, 3]]);
    expect(await checkGradients(fwd, feeds, { logits: 'logits' }, 1e-6, 1e-5)).to.equal(30 + 21 + 12 + 3 + 32 + 75);
    const out = await trainingOutputs(fwd, feeds, { logits: 'logits' });
    // what no slice kept gets exactly zero: r entirely, q's rows 0, 2, 3, 5, 6, p's rows 0, 2, 4 and columns 1, 3
    const zero = (name: string, at: (i: number) => boolean) => Array.from(out[`grad.${name}`] as Float64Array).filter((_, i) => at(i));
    expect(zero('r', () => true).every((v) => v === 0)).to.equal(true);
    expect(zero('q', (i) => ![1, 4].includes(Math.floor(i / 3))).every((v) => v === 0)).to.equal(true);
    expect(zero('q', (i) => [1, 4].includes(Math.floor(i / 3))).every((v) => v !== 0)).to.equal(true);
    expect(zero('p', (i) => Math.floor(i / 5) % 2 === 0 || (i % 5) % 2 === 1).every((v) => v === 0)).to.equal(true);
  });

  it('names what it cannot do: AveragePool with dilations, a Slice step of 0', () => {
    const pool = new GraphBuilder();
    const img = pool.input('img', D, ['N', 1, 4, 4]);
    const c = pool.op('Conv', [img, pool.initializer('w', [1, 1, 1, 1], randn(1), D)]);
    pool.op('Reshape', [pool.op('AveragePool', [c], { kernel_shape: { ints: [2, 2] }, dilations: { ints: [2, 2] } }), pool.int64s([-1, 4])], {}, ['logits']);
    pool.output('logits', D, ['N', 4]);
    expect(() => deriveTrainingGraph(model(pool.graph('avg')), { logits: 'logits' })).to.throw(/AveragePool with dilations is not supported/).with.property('code', 'ERR_SPARTAN_UNSUPPORTED_OP');
    const sl = new GraphBuilder();
    const x = sl.input('x', D, ['N', 4]);
    const h = sl.op('Gemm', [x, sl.initializer('w', [4, 4], randn(16), D)]);
    sl.op('Slice', [h, sl.int64s([0]), sl.int64s([4]), sl.int64s([1]), sl.int64s([0])], {}, ['logits']);
    sl.output('logits', D, ['N', 4]);
    expect(() => deriveTrainingGraph(model(sl.graph('zero-step')), { logits: 'logits' })).to.throw(/Slice step must not be 0/).with.property('code', 'ERR_SPARTAN_ONNX');
  });
});

describe(`training-graph derivation: Max, Min, ReduceMax, ReduceMin, Softplus, HardSigmoid, HardSwish, Elu, Selu (seed ${seed})`, () => {
  it('float64: elementwise Max / Min (broadcast, three inputs) and ReduceMax / ReduceMin (keepdims on and off): gradients match finite differences', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 4, 3]);
    const h = b.op('Mul', [x, b.initializer('p', [4, 3], randn(12), D)]); // [N, 4, 3]
    const mx = b.op('Max', [h, b.initializer('floor', [3], randn(3), D), b.op('Neg', [h])]); // |h| or the floor
    const mn = b.op('Min', [h, b.initializer('cap', [4, 1], randn(4), D)]);
    const rmax = b.op('ReduceMax', [b.op('Add', [mx, mn])], { axes: { ints: [1] }, keepdims: { i: 0 } }); // [N, 3]
    const rmin = b.op('ReduceMin', [b.op('Mul', [mx, mn])], { axes: { ints: [2] }, keepdims: { i: 1 } }); // [N, 4, 1]
    const feat = b.op('Concat', [rmax, b.op('Reshape', [rmin, b.int64s([-1, 4])])], { axis: { i: 1 } }); // [N, 7]
    b.op('Gemm', [feat, b.initializer('out', [7, 3], randn(21), D)], {}, ['logits']);
    b.output('logits', D, ['N', 3]);
    const N = 4;
    const feeds = { x: { data: randn(N * 12, 1), dims: [N, 4, 3] }, labels: { data: BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * 3))), dims: [N] } };
    expect(await checkGradients(model(b.graph('maxmin')), feeds, { logits: 'logits' }, 1e-6, 1e-5)).to.equal(12 + 3 + 4 + 21);
  });

  it('float32 (onnxruntime has no float64 kernels for them): the piecewise activations, each on entries kept off its kinks', async function () {
    this.timeout(120000);
    const F = DataType.FLOAT;
    // each activation acts on a parameter directly, so a finite-difference step moves one
    // entry; entries sit at least 0.2 from every kink (0 for Elu / Selu, +-3 for HardSwish,
    // where alpha x + beta crosses 0 or 1 for HardSigmoid), farther than the step of 1e-2
    const away = (n: number, lo: number, hi: number, kinks: number[]) => Float32Array.from({ length: n }, () => {
      for (;;) {
        const v = lo + (hi - lo) * rand();
        if (kinks.every((k) => Math.abs(v - k) > 0.2)) return v;
      }
    });
    const b = new GraphBuilder();
    const x = b.input('x', F, ['N', 6]);
    const acts = [
      b.op('Softplus', [b.initializer('softplus', [6], away(6, -3, 3, []), F)]),
      b.op('HardSigmoid', [b.initializer('hardsigmoid', [6], away(6, -4, 4, [-1.25, 1.25]), F)], { alpha: { f: 0.4 }, beta: { f: 0.5 } }),
      b.op('HardSwish', [b.initializer('hardswish', [6], away(6, -5, 5, [-3, 3]), F)]),
      b.op('Elu', [b.initializer('elu', [6], away(6, -2, 2, [0]), F)], { alpha: { f: 0.7 } }),
      b.op('Selu', [b.initializer('selu', [6], away(6, -2, 2, [0]), F)]),
    ];
    const feat = b.op('Concat', acts.map((act) => b.op('Mul', [x, act])), { axis: { i: 1 } }); // [N, 30]
    b.op('Gemm', [feat, b.initializer('out', [30, 3], Float32Array.from(randn(90, 0.3)), F)], {}, ['logits']);
    b.output('logits', F, ['N', 3]);
    const N = 3;
    const feeds = { x: { data: Float32Array.from(randn(N * 6, 1)), dims: [N, 6] }, labels: { data: BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * 3))), dims: [N] } };
    expect(await checkGradients(model(b.graph('acts')), feeds, { logits: 'logits' }, 1e-3, 1e-2)).to.equal(5 * 6 + 90);
  });
});

describe(`training-graph derivation: batched and 1-D MatMul, Pad, Pow, Sqrt, Exp, Log, Reciprocal, Abs, Clip, Where, Expand, Sum (seed ${seed})`, () => {
  it('float64: gradients match finite differences (broadcast batch dims summed back, cropping pads)', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 3, 4]);
    // [N, 3, 4] x [2, 1, 4, 5] -> [2, N, 3, 5]: both operands broadcast along a batch dim
    const wb = b.initializer('wb', [2, 1, 4, 5], randn(40), D);
    const h = b.op('Tanh', [b.op('MatMul', [x, wb])]);
    // a 1-D left operand ([4] x [N, 3, 4, 2] -> [N, 3, 2]) and a 1-D right one ([.., 5] x [5])
    const row = b.op('MatMul', [b.initializer('row', [4], randn(4), D), b.op('Reshape', [b.op('Mul', [x, x]), b.int64s([-1, 3, 4, 1])])]); // [N, 3, 1]
    const col = b.op('MatMul', [h, b.initializer('col', [5], randn(5), D)]); // [2, N, 3]
    const colN = b.op('Transpose', [col], { perm: { ints: [1, 2, 0] } }); // [N, 3, 2]
    // Pad: two zeros before and one after on the last axis, crop one off the front of axis 1
    const padded = b.op('Pad', [b.op('Add', [colN, row]), b.int64s([0, -1, 2, 0, 0, 1])]); // [N, 2, 5]
    // elementwise: Pow with a trained exponent and with a constant one, Sqrt, Exp, Log, Reciprocal
    const pos = b.op('Add', [b.op('Mul', [padded, padded]), b.initializer('one', [], Float64Array.of(1), D)]);
    const p = b.op('Pow', [pos, b.initializer('expo', [1], Float64Array.of(0.7), D)]);
    const q = b.op('Pow', [padded, b.constant(Float32Array.of(3), [], DataType.FLOAT)]); // exponent of its own type
    const r0 = b.op('Sub', [b.op('Add', [b.op('Sqrt', [pos]), b.op('Log', [pos])]), b.op('Add', [b.op('Reciprocal', [pos]), b.op('Exp', [b.op('Neg', [pos])])])]);
    // Abs, and Clip with both bounds (ReLU6-like), with only a lower one (the max input left empty)
    const clipped = b.op('Clip', [padded, b.constant(Float64Array.of(-0.8), [], D), b.constant(Float64Array.of(0.9), [], D)]);
    const r = b.op('Add', [b.op('Add', [r0, b.op('Abs', [padded])]), b.op('Add', [clipped, b.op('Clip', [padded, b.constant(Float64Array.of(-0.5), [], D), ''])])]);
    // Where with a constant condition (a mask) and a trained branch broadcast into it, Expand, Sum
    const cond = b.constant(Uint8Array.of(1, 0, 0, 1, 1, 0, 1, 0, 1, 1), [2, 5], DataType.BOOL);
    const tok = b.initializer('tok', [1, 5], randn(5), D);
    const masked = b.op('Where', [cond, padded, b.op('Expand', [tok, b.int64s([2, 5])])]); // [N, 2, 5]
    const w = b.op('Sum', [masked, b.op('Mul', [padded, padded]), tok]);
    const feat = b.op('Reshape', [b.op('Concat', [p, q, r, w], { axis: { i: 1 } }), b.int64s([-1, 40])]); // [N, 40]
    b.op('Gemm', [feat, b.initializer('out', [40, 3], randn(120, 0.2), D)], {}, ['logits']);
    b.output('logits', D, ['N', 3]);
    const N = 3;
    const feeds = { x: { data: randn(N * 12, 1), dims: [N, 3, 4] }, labels: { data: BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * 3))), dims: [N] } };
    const fwd = model(b.graph('mpp'));
    const train = deriveTrainingGraph(fwd, { logits: 'logits' });
    expect(train.graph.outputs.filter((o) => o.name.startsWith('grad.')).map((o) => [o.name, o.shape])).to.deep.equal([
      ['grad.wb', [2, 1, 4, 5]], ['grad.row', [4]], ['grad.col', [5]], ['grad.expo', [1]], ['grad.tok', [1, 5]], ['grad.out', [40, 3]],
    ]);
    expect(await checkGradients(fwd, feeds, { logits: 'logits' }, 1e-6, 1e-5)).to.equal(40 + 4 + 5 + 1 + 5 + 120);
  });

  it('names what it cannot do: a Pad mode ONNX does not define, a MatMul of a scalar', () => {
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 4]);
    b.op('Gemm', [b.op('Pad', [x, b.int64s([0, 1, 0, 1])], { mode: { s: 'mirror' } }), b.initializer('w6', [6, 3], randn(18), D)], {}, ['logits']);
    b.output('logits', D, ['N', 3]);
    expect(() => deriveTrainingGraph(model(b.graph('mirror')), { logits: 'logits' })).to.throw(/Pad mode "mirror" is not supported \(constant, reflect, edge, wrap\)/).with.property('code', 'ERR_SPARTAN_UNSUPPORTED_OP');
    const s = new GraphBuilder();
    const y = s.input('x', D, ['N', 4]);
    s.op('Mul', [s.op('MatMul', [s.initializer('k', [], Float64Array.of(2), D), y]), s.initializer('w', [4], randn(4), D)], {}, ['logits']);
    s.output('logits', D, ['N', 4]);
    expect(() => deriveTrainingGraph(model(s.graph('scalar')), { logits: 'logits' })).to.throw(/MatMul of a scalar/).with.property('code', 'ERR_SPARTAN_ONNX');
  });
});
