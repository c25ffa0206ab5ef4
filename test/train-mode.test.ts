// Training-mode operators in derived training graphs: BatchNormalization by batch statistics
// (gradients by finite differences, running statistics against a float64 reference) and
// Dropout in training mode (the gradient through onnxruntime's own random mask).
import { expect } from 'chai';
import { deriveTrainingGraph } from '../lib/graph/autodiff';
import { GraphBuilder, model } from '../lib/graph/builder';
import type { Model } from '../lib/graph/model';
import { GraphRunner } from '../lib/graph/runner';
import { DataType } from '../lib/graph/schema';
import { inferenceForm, withBatchStatistics } from '../lib/graph/trainMode';
import { checkGradients, trainingOutputs } from './gradcheck';
import { freshSeed, normal, rng } from './reference';
import { codeOf } from './helpers';

const seed = freshSeed();
const rand = rng(seed);
const D = DataType.DOUBLE;
const randn = (n: number, s = 0.5) => Float64Array.from({ length: n }, () => normal(rand) * s);

/** Adds a BatchNormalization of C channels (random affine terms and running statistics) to x. */
function batchNorm(b: GraphBuilder, x: string, C: number, tag: string, trainingMode: number, momentum = 0.8, outputs?: string[]): string {
  const scale = b.initializer(`${tag}.scale`, [C], Float64Array.from({ length: C }, () => 1 + normal(rand) * 0.2), D);
  const bias = b.initializer(`${tag}.bias`, [C], randn(C, 0.2), D);
  const mean = b.initializer(`${tag}.mean`, [C], randn(C, 0.3), D);
  const variance = b.initializer(`${tag}.var`, [C], Float64Array.from({ length: C }, () => 0.5 + rand()), D);
  return b.op('BatchNormalization', [x, scale, bias, mean, variance], { epsilon: { f: 2 ** -10 }, momentum: { f: momentum }, training_mode: { i: trainingMode } }, outputs);
}

/**
 * x [N, 6] -> Gemm -> [N, 2, 2, 3] BatchNorm (4-D) -> Tanh -> [N, 2, 6] BatchNorm (3-D) ->
 * Tanh -> [N, 12] -> Gemm -> BatchNorm (2-D) -> Tanh -> Gemm -> logits [N, 3]. Each
 * BatchNorm's input is also an output (pre.<tag>), for the reference statistics.
 */
function batchNormModel(trainingMode = 1): Model {
  const b = new GraphBuilder();
  const x = b.input('x', D, ['N', 6]);
  const h = b.op('Gemm', [x, b.initializer('w1', [12, 6], randn(72), D)], { transB: { i: 1 } });
  const h4 = b.op('Reshape', [h, b.int64s([-1, 2, 2, 3])], {}, ['pre.bn4']);
  const a4 = b.op('Tanh', [batchNorm(b, h4, 2, 'bn4', trainingMode)]);
  const h3 = b.op('Reshape', [a4, b.int64s([-1, 2, 6])], {}, ['pre.bn3']);
  const a3 = b.op('Tanh', [batchNorm(b, h3, 2, 'bn3', trainingMode, 0.5)]);
  const h2 = b.op('Gemm', [b.op('Reshape', [a3, b.int64s([-1, 12])]), b.initializer('w2', [5, 12], randn(60), D)], { transB: { i: 1 } }, ['pre.bn2']);
  const a2 = b.op('Tanh', [batchNorm(b, h2, 5, 'bn2', trainingMode)]);
  b.op('Gemm', [a2, b.initializer('w3', [3, 5], randn(15), D), b.initializer('b3', [3], randn(3), D)], { transB: { i: 1 } }, ['logits']);
  b.output('logits', D, ['N', 3]);
  for (const t of ['bn4', 'bn3', 'bn2']) b.output(`pre.${t}`, D);
  return model(b.graph('bn'));
}

const stats = (m: Model) => m.graph.initializers.filter((t) => /\.(mean|var)$/.test(t.name));
const params = (m: Model) => m.graph.initializers.filter((t) => t.dataType === D && t.dims.length >= 1 && !/\.(mean|var)$/.test(t.name)).map((t) => t.name);
const feedsOf = (m: Model, N: number) => ({
  x: { data: randn(N * 6, 1), dims: [N, 6] },
  labels: { data: BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * 3))), dims: [N] },
  ...Object.fromEntries(stats(m).map((t) => [t.name, { data: t.data as Float64Array, dims: t.dims }])),
});

/** Per channel of x [N, C, ...]: the batch mean and the biased variance, in float64. */
function channelStats(x: Float64Array, N: number, C: number): { mean: number[]; variance: number[]; count: number } {
  const L = x.length / (N * C), count = N * L;
  const mean = new Array<number>(C).fill(0), variance = new Array<number>(C).fill(0);
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let l = 0; l < L; l++) mean[c] += x[(n * C + c) * L + l] / count;
  for (let n = 0; n < N; n++) for (let c = 0; c < C; c++) for (let l = 0; l < L; l++) variance[c] += (x[(n * C + c) * L + l] - mean[c]) ** 2 / count;
  return { mean, variance, count };
}

describe(`training-mode BatchNormalization in derived training graphs (seed ${seed})`, () => {
  it('batch statistics on 4-D, 3-D and 2-D inputs: every gradient matches finite differences', async function () {
    this.timeout(120000);
    const m = batchNormModel();
    const n = await checkGradients(m, feedsOf(m, 5), { logits: 'logits', params: params(m) }, 1e-6);
    expect(n).to.equal(72 + 60 + 15 + 3 + 2 * (2 + 2 + 5));
  });

  it('outputs state.<name>: momentum blends of the batch mean and the unbiased batch variance', async function () {
    this.timeout(60000);
    for (const N of [5, 1]) { // one example: a 2-D BatchNorm has one value per channel (n - 1 counts as 1)
      const m = batchNormModel();
      const train = deriveTrainingGraph(m, { logits: 'logits', params: params(m) });
      expect(train.graph.outputs.filter((o) => o.name.startsWith('state.')).map((o) => o.name)).to.deep.equal(
        ['bn4.mean', 'bn4.var', 'bn3.mean', 'bn3.var', 'bn2.mean', 'bn2.var'].map((s) => `state.${s}`));
      expect(train.graph.inputs.map((v) => v.name)).to.include.members(stats(m).map((t) => t.name));
      expect(train.graph.initializers.map((t) => t.name)).to.not.include.members(stats(m).map((t) => t.name));
      const out = await trainingOutputs(m, feedsOf(m, N), { logits: 'logits', params: params(m) });
      for (const [tag, C, momentum] of [['bn4', 2, 0.8], ['bn3', 2, 0.5], ['bn2', 5, 0.8]] as const) {
        const { mean, variance, count } = channelStats(out[`pre.${tag}`] as Float64Array, N, C);
        const old = (s: string) => m.graph.initializers.find((t) => t.name === `${tag}.${s}`)!.data as Float64Array;
        const f = Math.fround(momentum); // ONNX attributes are float32
        const wantMean = mean.map((v, c) => f * old('mean')[c] + (1 - f) * v);
        const wantVar = variance.map((v, c) => f * old('var')[c] + (1 - f) * (v * count) / Math.max(count - 1, 1));
        const got = (s: string) => Array.from(out[`state.${tag}.${s}`] as Float64Array);
        got('mean').forEach((v, c) => expect(v, `${tag}.mean[${c}], N ${N}`).to.be.closeTo(wantMean[c], 1e-12));
        got('var').forEach((v, c) => expect(v, `${tag}.var[${c}], N ${N}`).to.be.closeTo(wantVar[c], 1e-12));
        expect(Number.isFinite(got('var')[0])).to.equal(true);
      }
    }
  });

  it("'frozen' normalises by the running statistics (inference form), 'as-exported' follows each node's training_mode", async function () {
    this.timeout(120000);
    const m = batchNormModel(1);
    const frozen = deriveTrainingGraph(m, { logits: 'logits', params: params(m), batchNorm: 'frozen' });
    expect(frozen.graph.outputs.some((o) => o.name.startsWith('state.'))).to.equal(false);
    expect(frozen.graph.nodes.filter((n) => n.opType === 'BatchNormalization').map((n) => [n.attrs.training_mode, n.outputs.length])).to.deep.equal([[undefined, 1], [undefined, 1], [undefined, 1]]);
    const feeds = feedsOf(m, 4);
    const { x, labels } = feeds;
    await checkGradients(m, { x, labels }, { logits: 'logits', params: params(m), batchNorm: 'frozen' }, 1e-6);
    // the same model in inference form, as-exported: the same loss
    const lossOf = async (mm: Model, opts: Parameters<typeof deriveTrainingGraph>[1], f: object) => ((await trainingOutputs(mm, f as never, opts)).loss as Float64Array)[0];
    const frozenLoss = await lossOf(m, { logits: 'logits', params: params(m), batchNorm: 'frozen' }, { x, labels });
    const inference = inferenceForm(m);
    expect(await lossOf(inference, { logits: 'logits', params: params(m) }, { x, labels })).to.equal(frozenLoss);
    // training_mode 0 nodes under 'batch' use batch statistics; under 'as-exported' they stay frozen
    expect(deriveTrainingGraph(inference, { logits: 'logits', params: params(m) }).graph.outputs.some((o) => o.name.startsWith('state.'))).to.equal(false);
    expect(await lossOf(inference, { logits: 'logits', params: params(m), batchNorm: 'batch' }, feeds)).to.equal(await lossOf(m, { logits: 'logits', params: params(m) }, feeds));
  });

  it("a training-mode export's running-statistic outputs carry the next values", async function () {
    this.timeout(60000);
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 3]);
    const h = b.op('Gemm', [x, b.initializer('w', [4, 3], randn(12), D)], { transB: { i: 1 } });
    batchNorm(b, h, 4, 'bn', 1, 0.9, ['logits', 'bn_mean_out', 'bn_var_out']);
    b.output('logits', D, ['N', 4]);
    b.output('bn_mean_out', D, [4]);
    b.output('bn_var_out', D, [4]);
    const m = model(b.graph('exported'));
    const out = await trainingOutputs(m, { x: { data: randn(9), dims: [3, 3] }, labels: { data: BigInt64Array.of(0n, 3n, 1n), dims: [3] }, 'bn.mean': { data: randn(4), dims: [4] }, 'bn.var': { data: Float64Array.of(1, 2, 3, 4), dims: [4] } } as never, { logits: 'logits', params: ['w', 'bn.scale', 'bn.bias'] });
    expect(Array.from(out.bn_mean_out as Float64Array)).to.deep.equal(Array.from(out['state.bn.mean'] as Float64Array));
    expect(Array.from(out.bn_var_out as Float64Array)).to.deep.equal(Array.from(out['state.bn.var'] as Float64Array));
    // in inference form those outputs do not exist: read, they are an error
    expect(codeOf(() => inferenceForm(m))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: .*"bn_mean_out" is read by the model/);
  });

  it('names what it cannot do: a running statistic shared by two nodes or computed by one, a bad mode', () => {
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 2]);
    const one = Float64Array.of(1, 1), zero = Float64Array.of(0, 0);
    for (const [n, v] of [['s', one], ['z', zero], ['m', zero], ['v', one]] as const) b.initializer(n, [2], v, D);
    const y = b.op('BatchNormalization', [x, 's', 'z', 'm', 'v'], { training_mode: { i: 1 } });
    b.op('BatchNormalization', [y, 's', 'z', 'm', 'v'], { training_mode: { i: 1 } }, ['logits']);
    b.output('logits', D, ['N', 2]);
    expect(codeOf(() => withBatchStatistics(model(b.graph('shared')), 'as-exported'))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: BatchNormalization nodes .* share the running statistic "m"/);
    const c = new GraphBuilder();
    const cx = c.input('x', D, ['N', 2]);
    for (const [n, v] of [['s', one], ['z', zero], ['m', zero]] as const) c.initializer(n, [2], v, D);
    c.op('BatchNormalization', [cx, 's', 'z', 'm', c.op('Abs', ['m'])], {}, ['logits']);
    c.output('logits', D, ['N', 2]);
    expect(codeOf(() => withBatchStatistics(model(c.graph('computed')), 'batch'))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: .*running statistic "abs_\d+" must be an initializer or an input/);
    expect(codeOf(() => deriveTrainingGraph(batchNormModel(), { logits: 'logits', batchNorm: 'train' as never }))).to.match(/^ERR_SPARTAN_OPTION: batchNorm must be one of as-exported, batch, frozen/);
  });
});

describe(`training-mode Dropout in derived training graphs (seed ${seed})`, () => {
  /** logits = Dropout(x W^T + b) [N, 4]; the mask is an output too. */
  function dropoutModel(training: 'true' | 'false' | 'input' | 'absent', ratio = 0.4): Model {
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 3]);
    const h = b.op('Gemm', [x, b.initializer('w', [4, 3], randn(12), D), b.initializer('bias', [4], randn(4), D)], { transB: { i: 1 } });
    const inputs = [h, b.constant(Float64Array.of(ratio), [], D)];
    if (training === 'input') inputs.push(b.input('training', DataType.BOOL, []));
    if (training === 'true' || training === 'false') inputs.push(b.op('Constant', [], { value: { t: { name: 'tm', dims: [], dataType: DataType.BOOL, data: Uint8Array.of(training === 'true' ? 1 : 0) } } }));
    b.op('Dropout', inputs, {}, ['logits', 'mask']);
    b.output('logits', D, ['N', 4]);
    b.output('mask', DataType.BOOL, ['N', 4]);
    return model(b.graph('dropout'));
  }

  /** The reference gradient of w and bias for softmax cross-entropy through the given mask and scale. */
  function reference(m: Model, x: Float64Array, labels: BigInt64Array, logits: Float64Array, mask: Uint8Array, scale: number) {
    const N = labels.length, w = m.graph.initializers.find((t) => t.name === 'w')!.data as Float64Array;
    const gw = new Float64Array(12), gb = new Float64Array(4);
    for (let n = 0; n < N; n++) {
      const row = Array.from(logits.subarray(n * 4, n * 4 + 4)), top = Math.max(...row);
      const e = row.map((v) => Math.exp(v - top)), z = e.reduce((a, v) => a + v, 0);
      for (let j = 0; j < 4; j++) {
        const dz = ((e[j] / z - (BigInt(j) === labels[n] ? 1 : 0)) / N) * (mask[n * 4 + j] ? scale : 0);
        gb[j] += dz;
        for (let i = 0; i < 3; i++) gw[j * 3 + i] += dz * x[n * 3 + i];
      }
    }
    expect(w.length).to.equal(12);
    return { gw, gb };
  }

  it('in training mode the gradient flows through the kept entries, scaled by 1 / (1 - ratio); otherwise Dropout is the identity', async function () {
    this.timeout(60000);
    const N = 6, x = randn(N * 3, 1), labels = BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * 4)));
    for (const [training, feedTraining, kept] of [['true', undefined, 'some'], ['input', true, 'some'], ['input', false, 'all'], ['false', undefined, 'all'], ['absent', undefined, 'all']] as const) {
      const m = dropoutModel(training);
      const feeds: Record<string, unknown> = { x: { data: x, dims: [N, 3] }, labels: { data: labels, dims: [N] } };
      if (feedTraining !== undefined) feeds.training = { data: Uint8Array.of(feedTraining ? 1 : 0), dims: [], type: 'bool' };
      const out = await trainingOutputs(m, feeds as never, { logits: 'logits' });
      const mask = out.mask as unknown as Uint8Array | boolean[];
      const bits = Uint8Array.from(Array.from(mask as ArrayLike<number | boolean>, Number));
      const dropped = bits.filter((v) => !v).length;
      if (kept === 'all') expect(dropped, `${training}: nothing dropped`).to.equal(0);
      else expect(dropped, `${training}: some of 24 dropped at ratio 0.4`).to.be.within(1, 23);
      const scale = kept === 'all' ? 1 : 1 / (1 - 0.4);
      const { gw, gb } = reference(m, x, labels, out.logits as Float64Array, bits, scale);
      Array.from(out['grad.w'] as Float64Array).forEach((v, i) => expect(v, `${training}: grad.w[${i}]`).to.be.closeTo(gw[i], 1e-12));
      Array.from(out['grad.bias'] as Float64Array).forEach((v, i) => expect(v, `${training}: grad.bias[${i}]`).to.be.closeTo(gb[i], 1e-12));
    }
  });

  /** logits = Gemm(Dropout(tanh(x W1^T + b1)), W2): the dropped units feed a second layer. */
  function twoLayerDropout(training: 'true' | 'absent'): Model {
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 3]);
    const h = b.op('Tanh', [b.op('Gemm', [x, b.initializer('w1', [5, 3], randn(15), D), b.initializer('b1', [5], randn(5), D)], { transB: { i: 1 } })]);
    const inputs = [h, b.constant(Float64Array.of(0.4), [], D)];
    if (training === 'true') inputs.push(b.op('Constant', [], { value: { t: { name: 'tm', dims: [], dataType: DataType.BOOL, data: Uint8Array.of(1) } } }));
    const dropped = b.op('Dropout', inputs);
    b.op('Gemm', [dropped, b.initializer('w2', [4, 5], randn(20), D)], { transB: { i: 1 } }, ['logits']);
    b.output('logits', D, ['N', 4]);
    return model(b.graph('dropout2'));
  }

  it('finite differences: Dropout as the identity (no training mode), and with a fixed mask input (mask-inputs)', async function () {
    this.timeout(60000);
    const N = 4, x = randn(N * 3, 1), labels = BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * 4)));
    const feeds = { x: { data: x, dims: [N, 3] }, labels: { data: labels, dims: [N] } };
    expect(await checkGradients(twoLayerDropout('absent'), feeds, { logits: 'logits' }, 1e-6)).to.equal(15 + 5 + 20);
    // a mask of 0 and 1 / (1 - ratio), some of each in every row
    const fwd = twoLayerDropout('true');
    const maskName = deriveTrainingGraph(fwd, { logits: 'logits', dropout: 'mask-inputs' }).graph.inputs.find((i) => i.name.startsWith('dropout_mask.'))!.name;
    const mask = Float64Array.from({ length: N * 5 }, (_, i) => ((i * 7 + (i >> 2)) % 3 === 0 ? 0 : 1 / 0.6));
    const withMask = { ...feeds, [maskName]: { data: mask, dims: [N, 5] } };
    expect(await checkGradients(fwd, withMask, { logits: 'logits', dropout: 'mask-inputs' }, 1e-6)).to.equal(15 + 5 + 20);
    // the mask matters: the dropped units' rows of w1 get no gradient from those examples, and
    // a unit dropped in every example none at all
    const allDropped = Float64Array.from(mask, (v, i) => (i % 5 === 2 ? 0 : v));
    const out = await trainingOutputs(fwd, { ...feeds, [maskName]: { data: allDropped, dims: [N, 5] } }, { logits: 'logits', dropout: 'mask-inputs' });
    expect(Array.from((out['grad.w1'] as Float64Array).subarray(2 * 3, 3 * 3)).every((v) => v === 0)).to.equal(true); // (-0 too)
    expect((out['grad.b1'] as Float64Array)[2]).to.equal(0);
  });

  it('inferenceForm drops the training_mode input, so the model runs as the identity', async function () {
    this.timeout(60000);
    const m = inferenceForm(dropoutModel('true'));
    expect(m.graph.nodes.find((n) => n.opType === 'Dropout')!.inputs).to.have.length(2);
    expect(m.graph.nodes.map((n) => n.opType)).to.deep.equal(['Gemm', 'Dropout']); // the training_mode Constant went with it
    const runner = await GraphRunner.create(m);
    try {
      const out = await runner.run({ x: { data: randn(30, 1), dims: [10, 3] } });
      expect(Array.from(out.mask as unknown as ArrayLike<number | boolean>, Number).every((v) => v === 1)).to.equal(true);
    } finally {
      await runner.release();
    }
  });
});
