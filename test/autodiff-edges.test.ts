// Derived training graphs, edge cases a review found: MaxPool with column-major indices, a
// LayerNormalization scale broadcast over more than its last axis, a Where whose condition is
// computed, parameters a rule gives no gradient, and models of opsets before 17.
import { expect } from 'chai';
import { deriveTrainingGraph } from '../lib/graph/autodiff';
import { GraphBuilder, model } from '../lib/graph/builder';
import { DataType } from '../lib/graph/schema';
import { checkGradients } from './gradcheck';
import { freshSeed, normal, rng } from './reference';
import { codeOf } from './helpers';
import { Trainer } from '../lib/train/trainer';
import { GraphRunner } from '../lib/graph/runner';
import { sliceCount, sliceIndices } from '../lib/graph/fold';

const seed = freshSeed();
const rand = rng(seed);
const D = DataType.DOUBLE, F = DataType.FLOAT;
const randn = (n: number, s = 0.5) => Float64Array.from({ length: n }, () => normal(rand) * s);
const r32 = (n: number, s = 0.5) => Float32Array.from({ length: n }, () => normal(rand) * s);
const shuffled = (a: number[]) => {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
};
const labels = (n: number, classes: number) => ({ data: BigInt64Array.from({ length: n }, () => BigInt(Math.floor(rand() * classes))), dims: [n] });

describe(`training-graph derivation: edge cases (seed ${seed})`, () => {
  it('MaxPool with storage_order=1: the indices the derivation adds are row-major, so the gradient lands on the argmax', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', F, ['N', 2, 5, 4]);
    // a parameter per input entry: a wrong scatter position gives a wrong entry's gradient.
    // Inputs 0.2 apart and scales within 0.5 % of 1 keep every window's argmax under the
    // finite differences' steps (no kinks)
    const scaled = b.op('Mul', [x, b.initializer('s', [2, 5, 4], Float32Array.from({ length: 40 }, () => 1 + 0.005 * rand()), F)]);
    const mp = b.op('MaxPool', [scaled], { kernel_shape: { ints: [2, 2] }, storage_order: { i: 1 } });
    b.op('Gemm', [b.op('Flatten', [mp], { axis: { i: 1 } }), b.initializer('fc', [3, 24], r32(72), F)], { transB: { i: 1 } }, ['logits']);
    b.output('logits', F, ['N', 3]);
    const N = 2;
    const spaced = () => shuffled(Array.from({ length: 40 }, (_, i) => 0.2 * (i + 1)));
    const feeds = { x: { data: Float32Array.from([...spaced(), ...spaced()]), dims: [N, 2, 5, 4] }, labels: labels(N, 3) };
    expect(await checkGradients(model(b.graph('pool')), feeds, { logits: 'logits' }, 1e-3, 1e-2)).to.equal(40 + 72);
  });

  it('MaxPool with storage_order=1 whose Indices output the model reads is refused by name', () => {
    const b = new GraphBuilder();
    const x = b.input('x', F, ['N', 1, 4, 4]);
    const scaled = b.op('Mul', [x, b.initializer('s', [1, 1, 4, 4], r32(16), F)]);
    b.op('MaxPool', [scaled], { kernel_shape: { ints: [2, 2] }, storage_order: { i: 1 } }, ['pooled', 'where']);
    b.nodes[b.nodes.length - 1].name = 'my_pool';
    b.op('Flatten', ['pooled'], { axis: { i: 1 } }, ['logits']);
    b.output('logits', F, ['N', 4]);
    b.output('where', DataType.INT64, ['N', 1, 2, 2]);
    expect(codeOf(() => deriveTrainingGraph(model(b.graph('pool')), { logits: 'logits' }))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: node "my_pool": MaxPool with storage_order=1/);
  });

  it('LayerNormalization on axis 1 of [N, 3, 4] with scale [1, 4] and bias [4]: gradients of their own shapes, matching finite differences', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 3, 4]);
    const h = b.op('Mul', [x, b.initializer('w', [3, 4], randn(12), D)]);
    const ln = b.op('LayerNormalization', [h, b.initializer('g', [1, 4], randn(4), D), b.initializer('bb', [4], randn(4), D)], { axis: { i: 1 }, epsilon: { f: 1e-3 } });
    b.op('Gemm', [b.op('Flatten', [ln], { axis: { i: 1 } }), b.initializer('out', [12, 3], randn(36), D)], {}, ['logits']);
    b.output('logits', D, ['N', 3]);
    const N = 3;
    const feeds = { x: { data: randn(N * 12, 1), dims: [N, 3, 4] }, labels: labels(N, 3) };
    expect(await checkGradients(model(b.graph('ln')), feeds, { logits: 'logits' }, 1e-6, 1e-5)).to.equal(12 + 4 + 4 + 36);
  });

  it('Where with a computed condition (Greater) and a Cast comparison mask: gradients match finite differences', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 5]);
    const h = b.op('Gemm', [x, b.initializer('w', [5, 6], randn(30), D)]);
    const zero = b.constant(Float64Array.of(0), [], D);
    const leaky = b.op('Where', [b.op('Greater', [h, zero]), h, b.op('Mul', [h, b.constant(Float64Array.of(0.1), [], D)])]);
    const kept = b.op('Mul', [leaky, b.op('Cast', [b.op('Less', [h, b.constant(Float64Array.of(2), [], D)])], { to: { i: D } })]);
    b.op('Gemm', [kept, b.initializer('out', [6, 3], randn(18), D)], {}, ['logits']);
    b.output('logits', D, ['N', 3]);
    const N = 4;
    // inputs well inside their pieces: finite differences step over no kink
    const feeds = { x: { data: randn(N * 5, 1), dims: [N, 5] }, labels: labels(N, 3) };
    expect(await checkGradients(model(b.graph('where')), feeds, { logits: 'logits' }, 1e-5, 1e-6)).to.equal(30 + 18);
  });

  for (const [outer, inner] of [[D, F], [F, D]] as const) {
    it(`a ${inner === F ? 'float32' : 'float64'} island in a ${outer === D ? 'float64' : 'float32'} model (Cast, ${inner === F ? 'Erf' : 'Sigmoid'}, Tanh, Cast back): the gradient graph loads and matches finite differences`, async function () {
      this.timeout(120000);
      const b = new GraphBuilder();
      const arr = (n: number) => (outer === D ? randn(n) : r32(n));
      const x = b.input('x', outer, ['N', 4]);
      const h = b.op('Gemm', [x, b.initializer('w', [4, 5], arr(20), outer)]);
      // the island's own constant and a trained parameter of its type
      const island = b.op('Cast', [h], { to: { i: inner } });
      // Erf where the island is float32 (onnxruntime has no float64 Erf), Sigmoid where float64
      const bent = b.op('Tanh', [b.op(inner === F ? 'Erf' : 'Sigmoid', [b.op('Mul', [island, b.initializer('s', [5], inner === F ? r32(5) : randn(5), inner)])])]);
      const back = b.op('Cast', [b.op('Add', [bent, b.constant(inner === F ? Float32Array.of(0.5) : Float64Array.of(0.5), [], inner)])], { to: { i: outer } });
      b.op('Gemm', [back, b.initializer('out', [5, 3], arr(15), outer)], {}, ['logits']);
      b.output('logits', outer, ['N', 3]);
      const N = 3;
      const feeds = { x: { data: outer === D ? randn(N * 4, 1) : r32(N * 4, 1), dims: [N, 4] }, labels: labels(N, 3) };
      expect(await checkGradients(model(b.graph('island')), feeds, { logits: 'logits' }, 2e-3, 1e-3)).to.equal(20 + 5 + 15);
    });
  }

  it('a parameter named in params that a rule gives no gradient (BatchNormalization mean, Clip bound) is refused by node and input, not left at zero', () => {
    const bn = new GraphBuilder();
    const x = bn.input('x', D, ['N', 2, 3]);
    const h = bn.op('Mul', [x, bn.initializer('p', [2, 3], randn(6), D)]);
    const stats = ['bn.s', 'bn.b', 'bn.m', 'bn.v'].map((n, i) => bn.initializer(n, [2], i === 3 ? Float64Array.of(1, 2) : randn(2), D));
    bn.op('BatchNormalization', [h, ...stats], {}, ['y']);
    bn.nodes[bn.nodes.length - 1].name = 'my_bn';
    bn.op('Flatten', ['y'], { axis: { i: 1 } }, ['logits']);
    bn.output('logits', D, ['N', 6]);
    const m = model(bn.graph('bn'));
    expect(codeOf(() => deriveTrainingGraph(m, { logits: 'logits', params: ['p', 'bn.s', 'bn.b', 'bn.m'] }))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: node "my_bn": no gradient for input 3 of BatchNormalization \("bn.m"\)/);
    expect(deriveTrainingGraph(m, { logits: 'logits', params: ['p', 'bn.s', 'bn.b'] }).graph.outputs.map((o) => o.name)).to.include('grad.bn.s');

    const clip = new GraphBuilder();
    const cx = clip.input('x', D, ['N', 4]);
    const lo = clip.initializer('lo', [1], Float64Array.of(-0.5), D);
    clip.op('Clip', [clip.op('Mul', [cx, clip.initializer('w', [4], randn(4), D)]), lo], {}, ['logits']);
    clip.nodes[clip.nodes.length - 1].name = 'my_clip';
    clip.output('logits', D, ['N', 4]);
    expect(codeOf(() => deriveTrainingGraph(model(clip.graph('clip')), { logits: 'logits', params: ['w', 'lo'] }))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: node "my_clip": no gradient for input 1 of Clip \("lo"\)/);
  });

  it('constants too large to fold (Range to 3e9, a 50000 x 50000 broadcast) and a Slice of a 3e9-entry axis: a coded error or a graph, in moments, not a heap exhausted', function () {
    this.timeout(60000);
    const i64 = (...v: number[]) => BigInt64Array.from(v, BigInt);
    const derive = (build: (b: GraphBuilder, x: string) => string, xShape: (number | string)[] = ['N', 6]) => {
      const b = new GraphBuilder();
      const x = b.input('x', F, xShape);
      const y = build(b, x);
      b.op('Gemm', [b.op('Flatten', [y], { axis: { i: 1 } }), b.initializer('w', [3, 6], r32(18), F)], { transB: { i: 1 } }, ['logits']);
      b.output('logits', F, ['N', 3]);
      const t0 = performance.now();
      const outcome = codeOf(() => deriveTrainingGraph(model(b.graph('big')), { logits: 'logits' }));
      expect(performance.now() - t0).to.be.below(10000);
      return outcome;
    };
    // an unused Range to 3e9 (counted, not built), then a broadcast Add of two int64 constants
    expect(derive((b, x) => {
      b.op('Range', [b.initializer('s', [], i64(0), DataType.INT64), b.initializer('l', [], i64(3e9), DataType.INT64), b.initializer('d', [], i64(1), DataType.INT64)]);
      return x;
    })).to.match(/^(no error|ERR_SPARTAN_\w+: )/);
    expect(derive((b, x) => {
      b.op('Add', [b.initializer('ca', [50000, 1], new BigInt64Array(50000), DataType.INT64), b.initializer('cb', [1, 50000], new BigInt64Array(50000), DataType.INT64)]);
      return x;
    })).to.match(/^(no error|ERR_SPARTAN_\w+: )/);
    // x[:, 1:] on an axis of 3e9 entries (its Slice gradient would list every index)
    expect(derive((b, x) => b.op('Slice', [x, b.int64s([1]), b.initializer('e', [1], BigInt64Array.of(9223372036854775807n), DataType.INT64), b.int64s([1])]), ['N', 3e9])).to.match(/^ERR_SPARTAN_\w+: /);
  });

  it('sliceCount (shape inference: no list of indices) agrees with sliceIndices on random bounds and steps, INT64 extremes included', () => {
    const big = 9223372036854775807;
    for (let i = 0; i < 2000; i++) {
      const d = Math.floor(rand() * 12);
      const pick = () => (rand() < 0.1 ? (rand() < 0.5 ? big : -big) : Math.floor(rand() * 30) - 15);
      const step = (rand() < 0.5 ? 1 : -1) * (1 + Math.floor(rand() * 4));
      const [start, end] = [pick(), pick()];
      expect(sliceCount(d, start, end, step), `${d} ${start} ${end} ${step}`).to.equal(sliceIndices(d, start, end, step).length);
    }
    expect(sliceCount(3e9, 1, big, 1)).to.equal(3e9 - 1); // x[:, 1:] on an axis too long to list
  });

  it('BatchNormalization statistics an old exporter also listed as graph inputs (keep_initializers_as_inputs): batch mode feeds them once and trains no gradient for them', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', F, ['N', 2, 4, 4]);
    const c = b.op('Conv', [x, b.initializer('w', [3, 2, 3, 3], r32(54), F)], { pads: { ints: [1, 1, 1, 1] } });
    const stats = ['bn.s', 'bn.b', 'bn.m', 'bn.v'].map((n, i) => b.initializer(n, [3], Float32Array.from({ length: 3 }, () => (i === 3 ? 1 + rand() : normal(rand))), F));
    const bn = b.op('BatchNormalization', [c, ...stats]);
    b.op('Gemm', [b.op('Flatten', [bn], { axis: { i: 1 } }), b.initializer('fc', [48, 5], r32(240), F)], {}, ['logits']);
    b.output('logits', F, ['N', 5]);
    const m = model(b.graph('bn'));
    m.graph.inputs.push({ name: 'bn.m', elemType: F, shape: [3] }, { name: 'bn.v', elemType: F, shape: [3] });
    const train = deriveTrainingGraph(m, { logits: 'logits', batchNorm: 'batch' });
    const inputs = train.graph.inputs.map((i) => i.name);
    expect(inputs.filter((n) => n === 'bn.m' || n === 'bn.v')).to.deep.equal(['bn.m', 'bn.v']); // once each (twice before: onnxruntime refused the graph)
    const outputs = train.graph.outputs.map((o) => o.name);
    expect(outputs).to.include.members(['grad.bn.s', 'state.bn.m', 'state.bn.v']);
    expect(outputs).to.not.include('grad.bn.m');
    expect(outputs).to.not.include('grad.bn.v');
    await (await GraphRunner.create(train)).release();
    // the Trainer too: its evaluation graph took them as inputs a second time (onnxruntime refused it)
    const t = await Trainer.create({ forward: m, logits: 'logits', epochs: 1, batchSize: 16, trainCount: 64, seed: 1, sparsity: { method: 'dense', density: 1 }, optimizer: { kind: 'sgd', lr: 0.1 } });
    try {
      expect(t.buffers.map((x) => x.name)).to.deep.equal(['bn.m', 'bn.v']);
      const data = { inputs: r32(64 * 32, 1), inputShape: [2, 4, 4], count: 64, labels: Uint8Array.from({ length: 64 }, () => Math.floor(rand() * 5)) };
      const before = t.buffers[0].data.slice();
      expect(Number.isFinite((await t.trainEpoch(data, 0)).loss)).to.equal(true);
      expect(Array.from(t.buffers[0].data)).to.not.deep.equal(Array.from(before)); // the running mean moved
      expect(Number.isFinite((await t.evaluate(data)).accuracy)).to.equal(true);
    } finally {
      await t.release();
    }
  });

  it('a model below opset 11 is refused with what to do, before anything is derived; training graphs import opset 17 or newer', () => {
    const b = new GraphBuilder();
    const x = b.input('x', F, ['N', 4]);
    b.op('Gemm', [x, b.initializer('w', [4, 3], r32(12), F)], {}, ['logits']);
    b.output('logits', F, ['N', 3]);
    for (const opset of [7, 9, 10])
      expect(codeOf(() => deriveTrainingGraph(model(b.graph('old'), opset), { logits: 'logits' })), `opset ${opset}`).to.match(new RegExp(`^ERR_SPARTAN_UNSUPPORTED_OP: the model imports opset ${opset}; training graphs are derived from opset 11 or newer`));
    const lifted = deriveTrainingGraph(model(b.graph('new'), 13), { logits: 'logits' });
    expect([lifted.opset, lifted.irVersion]).to.deep.equal([17, 8]); // training graphs are opset 17 or newer
    expect(deriveTrainingGraph(model(b.graph('newer'), 19), { logits: 'logits' }).opset).to.equal(19); // never lowered
  });

  it('an opset-11 or -12 model means the same in its opset-17 training graph: attributes that became inputs, (Log)Softmax of a flattened input, Dropout\'s ratio; finite differences', async function () {
    this.timeout(60000);
    /** x [N, 2, 6] scaled -> Unsqueeze, Squeeze (axes) -> Softmax (axis 1: over 12 values) -> Split (split) -> ReduceSum (axes) -> Mul -> LogSoftmax (axis 2) -> Dropout (ratio) -> Flatten -> Gemm. */
    const build = (opset: number) => {
      const b = new GraphBuilder();
      const x = b.input('x', F, ['N', 2, 6]);
      const scaled = b.op('Mul', [x, b.initializer('s', [2, 6], r32(12, 1), F)]);
      const sq = b.op('Squeeze', [b.op('Unsqueeze', [scaled], { axes: { ints: [1] } })], { axes: { ints: [1] } });
      const sm = b.op('Softmax', [sq], {}); // axis 1 by default before 13
      b.nodes[b.nodes.length - 1].name = 'my_softmax';
      const [a, c] = [b.fresh('a'), b.fresh('c')];
      b.op('Split', [sm], { axis: { i: 2 }, split: { ints: [2, 4] } }, [a, c]);
      const rs = b.op('ReduceSum', [c], { axes: { ints: [2] }, keepdims: { i: 1 } });
      const ls = b.op('LogSoftmax', [b.op('Mul', [a, b.op('Add', [rs, b.initializer('t', [1, 2, 1], r32(2), F)])])], { axis: { i: 2 } });
      const dropped = b.op('Dropout', [ls], opset < 12 ? { ratio: { f: 0.3 } } : {});
      b.op('Gemm', [b.op('Flatten', [dropped], { axis: { i: 1 } }), b.initializer('w', [4, 3], r32(12), F)], {}, ['logits']);
      b.output('logits', F, ['N', 3]);
      return model(b.graph(`opset${opset}`), opset);
    };
    const N = 3, x = r32(N * 12, 1), labels = { data: BigInt64Array.from([0n, 2n, 1n]), dims: [N] };
    for (const opset of [11, 12]) {
      const fwd = build(opset);
      const train = deriveTrainingGraph(fwd, { logits: 'logits' });
      expect(train.opset).to.equal(17);
      const run = async (m: Parameters<typeof GraphRunner.create>[0], feeds: Record<string, unknown>) => {
        const runner = await GraphRunner.create(m);
        try {
          return Array.from((await runner.run({ x: { data: x, dims: [N, 2, 6] }, ...feeds } as never)).logits as Float32Array);
        } finally {
          await runner.release();
        }
      };
      const params = Object.fromEntries(fwd.graph.initializers.map((t) => [t.name, { data: t.data, dims: t.dims }]));
      const want = await run(fwd, {}), got = await run(train, { ...params, labels });
      got.forEach((v, i) => expect(v, `opset ${opset}: logits[${i}]`).to.be.closeTo(want[i], 1e-6));
      expect(await checkGradients(fwd, { x: { data: x, dims: [N, 2, 6] }, labels }, { logits: 'logits' }, 1e-3, 1e-2), `opset ${opset}`).to.equal(12 + 2 + 12);
    }
    // an operator the model's opset does not have yet
    const ge = new GraphBuilder();
    const h = ge.op('Gemm', [ge.input('x', F, ['N', 4]), ge.initializer('w', [4, 3], r32(12), F)]);
    ge.op('Mul', [h, ge.op('Cast', [ge.op('GreaterOrEqual', [h, ge.constant(Float32Array.of(0), [], F)])], { to: { i: F } })], {}, ['logits']);
    ge.output('logits', F, ['N', 3]);
    expect(codeOf(() => deriveTrainingGraph(model(ge.graph('ge'), 11), { logits: 'logits' }))).to.match(/^ERR_SPARTAN_ONNX: node ".*": operator GreaterOrEqual is not in opset 11 \(it came in opset 12\)/);
    expect(deriveTrainingGraph(model(ge.graph('ge'), 12), { logits: 'logits' }).opset).to.equal(17);
    // attributes of the wrong kind are refused, not dropped (onnxruntime refuses the model)
    const wrong = build(11);
    wrong.graph.nodes.find((n) => n.opType === 'Squeeze')!.attrs.axes = { i: 1 };
    expect(codeOf(() => deriveTrainingGraph(wrong, { logits: 'logits' }))).to.match(/^ERR_SPARTAN_ONNX: node ".*": Squeeze's attribute axes must be a list of ints/);
    const badRatio = build(11);
    badRatio.graph.nodes.find((n) => n.opType === 'Dropout')!.attrs.ratio = { i: 1 };
    expect(codeOf(() => deriveTrainingGraph(badRatio, { logits: 'logits' }))).to.match(/^ERR_SPARTAN_ONNX: node ".*": Dropout's attribute ratio must be a float in \[0, 1\)/);
  });

  it('an opset-13 model means the same in its opset-17 training graph: logits equal, BatchNormalization with training outputs in training mode', async () => {
    /** Pad -> Conv -> BatchNormalization (5 outputs at opset 13: training mode) -> Clip -> Resize -> Dropout -> ReduceMean -> Gemm. */
    const build = (bnOutputs: number, readSaved = false) => {
      const b = new GraphBuilder();
      const x = b.input('x', F, ['N', 1, 4, 4]);
      const padded = b.op('Pad', [x, b.int64s([0, 0, 1, 1, 0, 0, 1, 1])]);
      const conv = b.op('Conv', [padded, b.initializer('k', [2, 1, 3, 3], r32(18), F)]);
      const stats = ['s', 'z', 'm', 'v'].map((n, i) => b.initializer(`bn.${n}`, [2], i === 3 ? Float32Array.of(0.7, 1.3) : r32(2), F));
      const bnOut = [b.fresh('bn'), ...Array.from({ length: bnOutputs - 1 }, () => b.fresh('bn_extra'))];
      b.op('BatchNormalization', [conv, ...stats], { epsilon: { f: 1e-3 } }, bnOut);
      const clipped = b.op('Clip', [bnOut[0], b.constant(Float32Array.of(-1), [], F), b.constant(Float32Array.of(1.5), [], F)]);
      const up = b.op('Resize', [clipped, '', b.constant(Float32Array.of(1, 1, 2, 2), [4], F)], { mode: { s: 'linear' } });
      const dropped = b.op('Dropout', [up, b.constant(Float32Array.of(0.3), [], F)]);
      const pooled = b.op('ReduceMean', [readSaved ? b.op('Add', [dropped, b.op('Unsqueeze', [bnOut[3], b.int64s([0, 2, 3])])]) : dropped], { axes: { ints: [2, 3] }, keepdims: { i: 0 } });
      b.op('Gemm', [pooled, b.initializer('w', [2, 3], r32(6), F)], {}, ['logits']);
      b.output('logits', F, ['N', 3]);
      return model(b.graph('old'), 13);
    };
    const N = 3, x = r32(N * 16, 1);
    const logitsOf = async (m: Parameters<typeof GraphRunner.create>[0], feeds: Record<string, unknown>) => {
      const runner = await GraphRunner.create(m);
      try {
        return Array.from((await runner.run({ x: { data: x, dims: [N, 1, 4, 4] }, ...feeds } as never)).logits as Float32Array);
      } finally {
        await runner.release();
      }
    };
    for (const bnOutputs of [1, 5]) {
      const fwd = build(bnOutputs);
      const train = deriveTrainingGraph(fwd, { logits: 'logits' }); // batchNorm 'as-exported'
      expect(train.opset).to.equal(17);
      // the training graph takes the parameters and the running statistics as inputs
      const inits = Object.fromEntries(fwd.graph.initializers.map((t) => [t.name, { data: t.data, dims: t.dims }]));
      const feeds = { ...Object.fromEntries(train.graph.inputs.filter((i) => inits[i.name]).map((i) => [i.name, inits[i.name]])), labels: { data: new BigInt64Array(N), dims: [N] } };
      const want = await logitsOf(fwd, {}), got = await logitsOf(train, feeds);
      got.forEach((v, i) => expect(v, `${bnOutputs} outputs: logits[${i}]`).to.be.closeTo(want[i], 1e-5));
      // 5 outputs: batch statistics, and the running ones updated (state.<name>); 1: inference form
      expect(train.graph.outputs.some((o) => o.name === 'state.bn.m'), `${bnOutputs} outputs`).to.equal(bnOutputs === 5);
    }
    expect(codeOf(() => deriveTrainingGraph(build(5, true), { logits: 'logits' }))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: node ".*": its output "bn_extra_\d+" \(the batch's saved mean or variance, a BatchNormalization output before opset 14\) is read by the model/);
    // an operator the model's own opset does not have: the lift would have made it valid
    const hs = new GraphBuilder();
    hs.op('HardSwish', [hs.op('Gemm', [hs.input('x', F, ['N', 4]), hs.initializer('w', [4, 3], r32(12), F)])], {}, ['logits']);
    hs.nodes[hs.nodes.length - 1].name = 'my_hs';
    hs.output('logits', F, ['N', 3]);
    expect(codeOf(() => deriveTrainingGraph(model(hs.graph('hs'), 13), { logits: 'logits' }))).to.equal('ERR_SPARTAN_ONNX: node "my_hs": operator HardSwish is not in opset 13 (it came in opset 14), which the model imports: onnxruntime refuses the model');
    expect(deriveTrainingGraph(model(hs.graph('hs'), 14), { logits: 'logits' }).opset).to.equal(17);
  });

  it('a model of opset 13-16 gets an opset-17 training graph: MaxPool\'s and Gather\'s gradients (an opset-16 scatter-add) too, checked by finite differences', async () => {
    const build = (opset: number) => {
      const b = new GraphBuilder();
      const x = b.input('x', F, ['N', 1, 4, 4]);
      const scaled = b.op('Mul', [x, b.initializer('s', [1, 1, 4, 4], Float32Array.from({ length: 16 }, (_, i) => 0.8 + 0.025 * i), F)]);
      b.op('MaxPool', [scaled], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } }, ['pooled']);
      const flat = b.op('Flatten', ['pooled'], { axis: { i: 1 } });
      const row = b.op('Gather', [b.initializer('t', [3, 4], r32(12), F), b.int64s([2])], { axis: { i: 0 } }); // [1, 4]
      b.op('Add', [flat, row], {}, ['logits']);
      b.output('logits', F, ['N', 4]);
      return model(b.graph('pool'), opset);
    };
    for (const opset of [13, 15, 16]) {
      const train = deriveTrainingGraph(build(opset), { logits: 'logits' });
      expect(train.opset, `opset ${opset}`).to.equal(17);
      expect(train.graph.nodes.map((n) => n.opType)).to.include.members(['ScatterElements', 'ScatterND']);
      // each 2x2 window's maximum stands clear of the rest (no switch within the differences' steps)
      const x = Float32Array.from({ length: 2 * 16 }, (_, i) => {
        const n = i >> 4, r = (i >> 2) & 3, c = i & 3;
        return (r & 1) * 2 + (c & 1) === ((r >> 1) * 2 + (c >> 1) + n + opset) % 4 ? 2 + 0.1 * i / 32 : 0.5 * Math.sin(3.7 * i);
      });
      const feeds = { x: { data: x, dims: [2, 1, 4, 4] }, labels: { data: BigInt64Array.from([1n, 3n]), dims: [2] } };
      expect(await checkGradients(build(opset), feeds, { logits: 'logits' }, 1e-3, 1e-2)).to.equal(16 + 12);
    }
  });
});
