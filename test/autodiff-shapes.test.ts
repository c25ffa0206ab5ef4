// Derived training graphs, second part: Gelu (opset 20), Gather on any axis, and the
// folding of shape computations (torch.onnx.export's Shape -> Gather -> Unsqueeze ->
// Concat -> Reshape chains). Every gradient is checked by central differences through
// onnxruntime-node, as in autodiff.test.ts.
import { expect } from 'chai';
import { deriveTrainingGraph } from '../lib/graph/autodiff';
import { GraphBuilder, model } from '../lib/graph/builder';
import { decodeModel, encodeModel, type Model, type TensorValue } from '../lib/graph/model';
import { GraphRunner } from '../lib/graph/runner';
import { DataType } from '../lib/graph/schema';
import { checkGradients } from './gradcheck';
import { freshSeed, normal, rng } from './reference';
import { codeOf } from './helpers';

const seed = freshSeed();
const rand = rng(seed);
const D = DataType.DOUBLE, F = DataType.FLOAT, I64 = DataType.INT64;
const randn = (n: number, s = 0.5) => Float64Array.from({ length: n }, () => normal(rand) * s);
const labelsOf = (n: number, classes: number) => ({ data: BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * classes))), dims: [n] });
/** A Constant node, as torch.onnx.export writes them. */
const constant = (b: GraphBuilder, t: Omit<TensorValue, 'name'>) => b.op('Constant', [], { value: { t: { name: '', ...t } } });
const i64 = (values: number[], dims = [values.length]) => ({ dims, dataType: I64, data: BigInt64Array.from(values.map(BigInt)) });

describe(`training-graph derivation: Gelu at opset 20, and the Erf form of opset 17 (seed ${seed})`, () => {
  /** x [N, 6] -> Gemm -> Gelu -> (minus its row mean: ReduceMean with an axes input, opset >= 18) -> Gemm -> logits. */
  function geluModel(T: typeof D | typeof F, approximate: 'none' | 'tanh', opset = 20): Model {
    const A = T === D ? Float64Array : Float32Array;
    const r = (n: number, s = 0.5) => A.from(randn(n, s));
    const b = new GraphBuilder();
    const x = b.input('x', T, ['N', 6]);
    const h = b.op('Gemm', [x, b.initializer('w1', [6, 8], r(48, 0.8), T), b.initializer('b1', [8], r(8), T)]);
    const g = b.op('Gelu', [h], approximate === 'none' ? {} : { approximate: { s: 'tanh' } });
    b.nodes[b.nodes.length - 1].name = 'my_gelu';
    const z = b.op('Sub', [g, b.op('ReduceMean', [g, b.int64s([1])], { keepdims: { i: 1 } })]);
    b.op('Gemm', [z, b.initializer('w2', [8, 4], r(32), T)], {}, ['logits']);
    b.output('logits', T, ['N', 4]);
    return model(b.graph('gelu'), opset);
  }

  // onnxruntime 1.30 (CPU) runs Gelu-20 in float32 in both forms, and in float64 only with
  // approximate = "tanh" (the exact form expands to Erf, which has no float64 kernel).
  for (const [T, approximate, tol, step] of [[D, 'tanh', 1e-6, 1e-5], [F, 'tanh', 1e-3, 1e-2], [F, 'none', 1e-3, 1e-2]] as const)
    it(`${T === D ? 'float64' : 'float32'}, approximate = "${approximate}": gradients match finite differences; the model keeps opset 20`, async function () {
      this.timeout(120000);
      const fwd = geluModel(T, approximate);
      const train = deriveTrainingGraph(fwd, { logits: 'logits' });
      expect(train.opset).to.equal(20);
      expect(train.graph.nodes.filter((n) => n.opType === 'Gelu')).to.have.length(1); // the forward Gelu stays one node
      const N = 4, A = T === D ? Float64Array : Float32Array;
      const feeds = { x: { data: A.from(randn(N * 6, 1)), dims: [N, 6] }, labels: labelsOf(N, 4) };
      expect(await checkGradients(fwd, feeds, { logits: 'logits' }, tol, step)).to.equal(48 + 8 + 32);
    });

  it('float32, opset 17: GELU as torch.onnx.export spells it there, x * 0.5 * (1 + erf(x / sqrt 2)), matches finite differences', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', F, ['N', 6]);
    const h = b.op('Gemm', [x, b.initializer('w1', [6, 8], Float32Array.from(randn(48, 0.8)), F), b.initializer('b1', [8], Float32Array.from(randn(8)), F)]);
    // the node sequence of torch's exporter: Div, Erf, Add, Mul, Mul (constants as Constant nodes)
    const scalar = (v: number) => constant(b, { dims: [], dataType: F, data: Float32Array.of(v) });
    const erf = b.op('Erf', [b.op('Div', [h, scalar(Math.SQRT2)])]);
    const g = b.op('Mul', [b.op('Mul', [h, b.op('Add', [erf, scalar(1)])]), scalar(0.5)]);
    b.op('Gemm', [g, b.initializer('w2', [8, 4], Float32Array.from(randn(32)), F)], {}, ['logits']);
    b.output('logits', F, ['N', 4]);
    const fwd = model(b.graph('gelu-erf'), 17);
    expect(deriveTrainingGraph(fwd, { logits: 'logits' }).opset).to.equal(17);
    const N = 4;
    const feeds = { x: { data: Float32Array.from(randn(N * 6, 1)), dims: [N, 6] }, labels: labelsOf(N, 4) };
    expect(await checkGradients(fwd, feeds, { logits: 'logits' }, 1e-3, 1e-2)).to.equal(48 + 8 + 32);
  });

  it('names the node for Gelu below opset 20 and for an unknown approximation', () => {
    expect(codeOf(() => deriveTrainingGraph(geluModel(D, 'none', 17), { logits: 'logits' }))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: node "my_gelu": operator Gelu needs opset >= 20 \(the model imports opset 17\)/);
    const bad = geluModel(D, 'tanh');
    bad.graph.nodes.find((n) => n.opType === 'Gelu')!.attrs.approximate = { s: 'erf' };
    expect(codeOf(() => deriveTrainingGraph(bad, { logits: 'logits' }))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: node "my_gelu": Gelu approximate="erf"/);
  });
});

describe(`training-graph derivation: Gather on any axis (seed ${seed})`, () => {
  it('float64: scalar and tensor indices, negative indices, repeated indices accumulate, on parameters and activations', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 3]);
    const emb = b.initializer('emb', [3, 5, 4], randn(60), D);
    // axis 1, indices [2, 2] holding 4 three times (as 4 and as -1)
    const g1 = b.op('Gather', [emb, constant(b, i64([4, -1, 0, 4], [2, 2]))], { axis: { i: 1 } }); // [3, 2, 2, 4]
    const g2 = b.op('Gather', [emb, constant(b, i64([-1], []))], { axis: { i: 2 } }); // scalar index: [3, 5]
    const g3 = b.op('Gather', [emb, b.int64s([2, 0, 2])], { axis: { i: -3 } }); // axis 0 spelled -3: [3, 5, 4]
    const g4 = b.op('Gather', [emb, constant(b, i64([1, 3, 1], [3, 1]))], { axis: { i: -1 } }); // [3, 5, 3, 1]
    const flat = (t: string, n: number) => b.op('Reshape', [t, b.int64s([1, n])]);
    const feats = b.op('Tanh', [b.op('Concat', [flat(g1, 48), flat(g2, 15), flat(g3, 60), flat(g4, 45)], { axis: { i: 1 } })]); // [1, 168]
    // an activation gathered on axis 1 (a batch dim in front), with a repeated index
    const h = b.op('Gemm', [x, b.initializer('wx', [3, 6], randn(18), D)]); // [N, 6]
    const hg = b.op('Gather', [h, b.int64s([5, 0, 5, -2])], { axis: { i: 1 } }); // [N, 4]
    const fromEmb = b.op('MatMul', [feats, b.initializer('w', [168, 4], randn(672, 0.2), D)]); // [1, 4]
    b.op('Add', [b.op('Tanh', [hg]), fromEmb], {}, ['logits']);
    b.output('logits', D, ['N', 4]);
    const N = 3;
    const feeds = { x: { data: randn(N * 3, 1), dims: [N, 3] }, labels: labelsOf(N, 4) };
    expect(await checkGradients(model(b.graph('gathers')), feeds, { logits: 'logits' }, 1e-6, 1e-5)).to.equal(60 + 18 + 672);
  });

  it('names the node when constant indices are out of range (indices fed at run time derive)', () => {
    const build = (indices: (b: GraphBuilder) => string) => {
      const b = new GraphBuilder();
      const x = b.input('x', D, ['N', 4]);
      const h = b.op('Gemm', [x, b.initializer('w', [4, 4], randn(16), D)]);
      b.op('Gather', [h, indices(b)], { axis: { i: 1 } }, ['logits']);
      b.nodes[b.nodes.length - 1].name = 'my_gather';
      b.output('logits', D, ['N', 2]);
      return model(b.graph('g'));
    };
    // indices fed at run time are an input of the training graph (autodiff.test.ts checks their gradients)
    expect(deriveTrainingGraph(build((b) => b.input('idx', I64, [2])), { logits: 'logits', loss: 'mse' }).graph.inputs.map((v) => v.name)).to.include('idx');
    expect(codeOf(() => deriveTrainingGraph(build((b) => b.int64s([0, 4])), { logits: 'logits', loss: 'mse' }))).to.match(/^ERR_SPARTAN_ONNX: node "my_gather": Gather index 4 is out of range for axis 1 of size 4/);
  });
});

describe(`training-graph derivation: shape computations are folded (seed ${seed})`, () => {
  /**
   * torch.onnx.export style: x.view(x.size(0), -1) and a weight reshaped to a size read off
   * an activation's shape, spelled with Shape, Gather, Unsqueeze, Concat, Cast, Slice, Mul,
   * Constant and ConstantOfShape nodes. `batch` is the input's first dim ('N' or a number).
   */
  function torchStyle(batch: number | string): Model {
    const b = new GraphBuilder();
    const x = b.input('x', D, [batch, 2, 3, 4]);
    const y = b.op('Tanh', [b.op('Add', [x, b.initializer('bias', [1, 2, 1, 1], randn(2), D)])]);
    const s = b.op('Shape', [y]); // [N, 2, 3, 4]
    const n = b.op('Gather', [s, constant(b, i64([0], []))], { axis: { i: 0 } }); // N (dynamic unless batch is a number)
    const rest = b.op('Slice', [s, constant(b, i64([1])), constant(b, i64([Number.MAX_SAFE_INTEGER]))]); // [2, 3, 4]
    const d1 = b.op('Gather', [s, constant(b, i64([1], []))], { axis: { i: 0 } });
    const d2 = b.op('Gather', [s, constant(b, i64([-2], []))], { axis: { i: 0 } });
    const d3 = b.op('Gather', [rest, constant(b, i64([2], []))], { axis: { i: 0 } });
    const feat = b.op('Cast', [b.op('Mul', [b.op('Mul', [d1, d2]), d3])], { to: { i: I64 } }); // 24, whatever N is
    const un = (t: string) => b.op('Unsqueeze', [t, constant(b, i64([0]))]);
    const target = b.op('Concat', [un(n), un(feat)], { axis: { i: 0 } }); // [N, 24]
    const flat = b.op('Reshape', [y, target]);
    b.nodes[b.nodes.length - 1].name = 'view';
    const wshape = b.op('Concat', [un(feat), constant(b, i64([4]))], { axis: { i: 0 } }); // [24, 4]
    const w = b.op('Reshape', [b.initializer('w', [96], randn(96, 0.3), D), wshape]);
    const offset = b.op('ConstantOfShape', [constant(b, i64([1, 4]))], { value: { t: { name: '', dims: [1], dataType: D, data: Float64Array.of(0.25) } } });
    const shift = b.op('Mul', [offset, b.op('Cast', [d1], { to: { i: D } })]); // 0.25 * 2, from a Cast of a shape
    b.op('Add', [b.op('MatMul', [flat, w]), shift], {}, ['logits']);
    b.output('logits', D, [batch, 4]);
    return model(b.graph('torch-style'));
  }

  it('a dynamic batch: the batch-independent parts fold to constants, x.view(N, -1) stays a shape computation; gradients match at two batch sizes', async function () {
    this.timeout(120000);
    const fwd = decodeModel(encodeModel(torchStyle('N'))); // as read from an exported file
    const train = deriveTrainingGraph(fwd, { logits: 'logits' });
    // kept: Shape -> Gather(0) -> Unsqueeze -> Concat for the view's [N, 24]; everything else is an initializer
    const forwardOps = train.graph.nodes.slice(0, train.graph.nodes.findIndex((n) => n.outputs.includes('logits')) + 1).map((n) => n.opType);
    expect(forwardOps).to.deep.equal(['Add', 'Tanh', 'Shape', 'Gather', 'Unsqueeze', 'Concat', 'Reshape', 'Reshape', 'MatMul', 'Add']);
    const view = train.graph.nodes.find((n) => n.name === 'view')!;
    expect(train.graph.initializers.some((t) => t.name === view.inputs[1])).to.equal(false);
    const wReshape = train.graph.nodes.find((n) => n.opType === 'Reshape' && n.inputs[0] === 'w')!;
    const wShape = train.graph.initializers.find((t) => t.name === wReshape.inputs[1])!;
    expect(Array.from(wShape.data as BigInt64Array, Number)).to.deep.equal([24, 4]);
    for (const N of [2, 5]) {
      const feeds = { x: { data: randn(N * 24, 1), dims: [N, 2, 3, 4] }, labels: labelsOf(N, 4) };
      expect(await checkGradients(fwd, feeds, { logits: 'logits' }, 1e-6, 1e-5)).to.equal(2 + 96);
    }
  });

  it('a static batch: the whole chain folds (no Shape left), gradients match', async function () {
    this.timeout(120000);
    const fwd = torchStyle(3);
    const train = deriveTrainingGraph(fwd, { logits: 'logits' });
    const forwardOps = train.graph.nodes.slice(0, train.graph.nodes.findIndex((n) => n.outputs.includes('logits')) + 1).map((n) => n.opType);
    expect(forwardOps).to.deep.equal(['Add', 'Tanh', 'Reshape', 'Reshape', 'MatMul', 'Add']);
    const feeds = { x: { data: randn(3 * 24, 1), dims: [3, 2, 3, 4] }, labels: labelsOf(3, 4) };
    expect(await checkGradients(fwd, feeds, { logits: 'logits' }, 1e-6, 1e-5)).to.equal(2 + 96);
  });

  it('the forward outputs of the derived graph equal those of the forward model', async function () {
    const fwd = torchStyle('N');
    const N = 3, x = { data: randn(N * 24, 1), dims: [N, 2, 3, 4] };
    const params = Object.fromEntries(fwd.graph.initializers.filter((t) => t.dataType === D).map((t) => [t.name, { data: t.data as Float64Array, dims: t.dims }]));
    const f = await GraphRunner.create(fwd), t = await GraphRunner.create(deriveTrainingGraph(fwd, { logits: 'logits' }));
    const a = (await f.run({ x })).logits as Float64Array, c = (await t.run({ x, labels: labelsOf(N, 4), ...params })).logits as Float64Array;
    expect(Array.from(c)).to.deep.equal(Array.from(a));
    await f.release();
    await t.release();
  });

  it('names the node when a value that must be static depends on the dynamic batch', () => {
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 6]);
    const h = b.op('Gemm', [x, b.initializer('w', [6, 6], randn(36), D)]);
    const n = b.op('Unsqueeze', [b.op('Gather', [b.op('Shape', [x]), constant(b, i64([0], []))]), constant(b, i64([0]))]);
    b.op('Slice', [h, constant(b, i64([0])), n, constant(b, i64([1]))], {}, ['logits']);
    b.nodes[b.nodes.length - 1].name = 'dyn_slice';
    b.output('logits', D, ['N', '?']);
    expect(codeOf(() => deriveTrainingGraph(model(b.graph('g')), { logits: 'logits', loss: 'mse' }))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: node "dyn_slice": Slice needs constant ends, but they depend on the dynamic dimension N/);
  });
});
