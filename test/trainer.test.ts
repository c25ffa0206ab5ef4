// End to end on real data: LeNet-300-100 trained on MNIST through the derived
// training graph in onnxruntime-node, sparsified, exported, and re-run.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { head, loadFashionMnist, loadMnist } from '../lib/data/dataset';
import { decodeModel } from '../lib/graph/model';
import { deriveTrainingGraph } from '../lib/graph/autodiff';
import { untieInitializers } from '../lib/graph/untie';
import { GraphRunner } from '../lib/graph/runner';
import { lenet300100, lenet5 } from '../lib/models/lenet';
import { Trainer, countCorrect } from '../lib/train/trainer';
import { batches } from '../lib/data/dataset';
import { failure } from './helpers';

/** Trainers a test opens; each describe's afterEach releases them (their onnxruntime sessions), failed or not. */
const opened: Trainer[] = [];
async function open(options: Parameters<typeof Trainer.create>[0]): Promise<Trainer> {
  const t = await Trainer.create(options);
  opened.push(t);
  return t;
}
async function releaseOpened() {
  for (const t of opened.splice(0)) await t.release();
}

describe('Trainer on MNIST (LeNet-300-100, LeNet-5)', () => {
  afterEach(releaseOpened);
  const train = head(loadMnist('train'), 20000);
  const test = loadMnist('test');

  it('reads the MNIST IDX files (60,000 / 10,000 images of 28x28, labels 0-9)', () => {
    const full = loadMnist('train');
    expect(full.count).to.equal(60000);
    expect(test.count).to.equal(10000);
    expect(full.inputs.length).to.equal(60000 * 784);
    expect(Math.max(...full.labels.subarray(0, 1000))).to.equal(9);
    let max = 0;
    for (let i = 0; i < 784 * 100; i++) max = Math.max(max, full.inputs[i]);
    expect(max).to.equal(1);
  });

  it('batches: the reusing form yields the same batches in one pair of buffers, short last batch included', () => {
    const d = head(test, 1000);
    const fresh = [...batches(d, 300, 7)].map((b) => ({ x: b.x.slice(), labels: b.labels!.slice(), size: b.size }));
    let buffer: ArrayBufferLike | undefined;
    let i = 0;
    for (const b of batches(d, 300, 7, true)) {
      expect(b.size).to.equal(fresh[i].size);
      expect(b.x.length).to.equal(b.size * 784);
      expect(Buffer.from(b.x.buffer, b.x.byteOffset, b.x.byteLength).equals(Buffer.from(fresh[i].x.buffer))).to.equal(true);
      expect(Array.from(b.labels!)).to.deep.equal(Array.from(fresh[i].labels));
      buffer ??= b.x.buffer;
      expect(b.x.buffer).to.equal(buffer);
      i++;
    }
    expect(i).to.equal(4); // 300, 300, 300, 100
    expect(fresh[3].size).to.equal(100);
  });

  it('reads Fashion-MNIST with the fixed split: 60,000 / 10,000, 6,000 / 1,000 per class, interleaved, 12 duplicates across', function () {
    this.timeout(60000);
    const tr = loadFashionMnist('train'), te = loadFashionMnist('test');
    expect([tr.count, te.count]).to.deep.equal([60000, 10000]);
    for (let c = 0; c < 10; c++) {
      expect(tr.labels.filter((l) => l === c).length).to.equal(6000);
      expect(te.labels.filter((l) => l === c).length).to.equal(1000);
    }
    for (const d of [tr, te]) for (let i = 0; i < d.inputs.length; i += 997) expect(d.inputs[i]).to.be.within(0, 1);
    // the classes interleave, so a prefix (--train-count) holds every class alike
    for (const d of [tr, te]) expect(Array.from(d.labels.subarray(0, 30))).to.deep.equal(Array.from({ length: 30 }, (_, i) => i % 10));
    // the split is by position, and the package's images hold duplicates: 12 of the test
    // images also appear among the training images (0.12 %, as the README says), no more
    const key = (d: typeof tr, i: number) => Buffer.from(d.inputs.buffer, d.inputs.byteOffset + i * 784 * 4, 784 * 4).toString('base64');
    const train = new Set(Array.from({ length: tr.count }, (_, i) => key(tr, i)));
    let shared = 0;
    for (let i = 0; i < te.count; i++) shared += train.has(key(te, i)) ? 1 : 0;
    expect(shared).to.equal(12);
  });

  for (const [name, make, method, betaMax, floor] of [['LeNet-300-100', lenet300100, 'dense', 10, 0.93], ['LeNet-300-100', lenet300100, 'spartan', 300, 0.9], ['LeNet-5', lenet5, 'spartan', 300, 0.9]] as const) {
    it(`${name}, ${method} at ${method === 'dense' ? 'full density' : '95 % sparsity'}: >= ${floor * 100} % test accuracy after 2 epochs on 20k images; the exported sparse model scores the same`, async function () {
      this.timeout(120000);
      const t = await open({
        forward: make(1), logits: 'logits', epochs: 2, batchSize: 128, trainCount: train.count, seed: 1,
        sparsity: { method, density: method === 'dense' ? 1 : 0.05, betaMax },
        optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 },
      });
      let last;
      for (let e = 0; e < 2; e++) last = await t.trainEpoch(train, e);
      const acc = await t.accuracy(test);
      console.log(`      ${method}: train loss ${last!.loss.toFixed(3)}, test accuracy ${(acc * 100).toFixed(2)} %, density ${last!.density.toFixed(4)}`);
      expect(acc).to.be.at.least(floor);
      if (method !== 'dense') expect(last!.density).to.be.closeTo(0.05, 1e-3);
      // export: an ordinary forward model, exactly sparse, same predictions
      const exported = t.exportSparse();
      const weights = exported.graph.initializers.filter((w) => w.dims.length === 2);
      const nonzero = weights.reduce((a, w) => a + (w.data as Float32Array).filter((x) => x !== 0).length, 0);
      const total = exported.graph.initializers.reduce((a, w) => a + w.data.length, 0);
      const biases = exported.graph.initializers.filter((w) => w.dims.length === 1).reduce((a, w) => a + w.data.length, 0);
      const convs = exported.graph.initializers.filter((w) => w.dims.length === 4);
      const convNonzero = convs.reduce((a, w) => a + (w.data as Float32Array).filter((x) => x !== 0).length, 0);
      if (method !== 'dense') expect((nonzero + convNonzero + biases) / total).to.be.at.most(0.0501); // + the dense biases
      const runner = await GraphRunner.create(exported);
      let correct = 0;
      for (const b of batches(test, 1000, null)) {
        const out = (await runner.run({ x: { data: b.x, dims: [b.size, 1, 28, 28] } })).logits as Float32Array;
        correct += countCorrect(out, b.labels!);
      }
      await runner.release();
      expect(correct / test.count).to.be.closeTo(acc, 1e-9);
    });
  }
});

describe('Trainer execution providers', () => {
  afterEach(releaseOpened);
  const base = {
    forward: lenet300100(), logits: 'logits', epochs: 1, batchSize: 8, trainCount: 8,
    sparsity: { method: 'dense' as const, density: 1 }, optimizer: { kind: 'sgd' as const, lr: 0.1 },
  };
  it('rejects an unknown provider list with ERR_SPARTAN_OPTION', async () => {
    let caught: unknown;
    try {
      await Trainer.create({ ...base, executionProviders: ['tpu' as 'cpu'] });
    } catch (e) {
      caught = e;
    }
    expect((caught as { code?: string }).code).to.equal('ERR_SPARTAN_OPTION');
  });

  it('rejects an input name the model lacks, an input with a fixed batch size, a float64 model (float64 inputs, or token ids into float64 weights), an unknown weightDecayOn, before any session opens', async () => {
    const codeOf = async (o: Parameters<typeof Trainer.create>[0]) => Trainer.create(o).then(() => 'created', (e: { code?: string; message: string }) => `${e.code}: ${e.message}`);
    expect(await codeOf({ ...base, input: 'image' })).to.match(/^ERR_SPARTAN_OPTION: the model has no input named "image" \(inputs: x\)/);
    const fixed = lenet300100();
    fixed.graph.inputs[0].shape![0] = 8;
    expect(await codeOf({ ...base, forward: fixed })).to.match(/^ERR_SPARTAN_SHAPE: the model's input "x" has a fixed batch size of 8 /);
    expect(await codeOf({ ...base, sparsify: 'fc1.weight' as never })).to.match(/^ERR_SPARTAN_OPTION: sparsify must be a list of parameter names/);
    expect(await codeOf({ ...base, sparsify: ['fc1.bias', 'nope'] })).to.match(/^ERR_SPARTAN_OPTION: sparsify names "nope", which is not a parameter/);
    const f64 = decodeModel(fs.readFileSync(path.join(__dirname, 'fixtures', 'torch', 'mlp-f64.onnx')));
    expect(await codeOf({ ...base, forward: f64 })).to.match(/^ERR_SPARTAN_TYPE: the Trainer trains float32 models on float32, integer \(int64, int32\) or bool inputs, but the input "input" has ONNX type 11 \(export the model in float32/);
    const tokens = decodeModel(fs.readFileSync(path.join(__dirname, 'fixtures', 'torch', 'tokens-f64.onnx')));
    expect(await codeOf({ ...base, forward: tokens })).to.match(/^ERR_SPARTAN_TYPE: the Trainer trains float32 models on float32, integer \(int64, int32\) or bool inputs, but "[^"]+" is float64 \(export the model in float32/);
    expect(await codeOf({ ...base, weightDecayOn: 'biases' as never })).to.match(/^ERR_SPARTAN_OPTION: weightDecayOn must be 'all' or 'weights' \(got "biases"\)/);
  });

  it("weightDecayOn: 'weights' leaves the rank-1 parameters (biases, norms) undecayed, on top of optimizer.noDecay", async () => {
    // a zero gradient isolates the decay (SGD without momentum: p -= lr * wd * p)
    const trainer = async (extra: { weightDecayOn?: 'all' | 'weights'; noDecay?: string[] }) =>
      open({ ...base, optimizer: { kind: 'sgd', lr: 0.5, weightDecay: 0.1, noDecay: extra.noDecay }, weightDecayOn: extra.weightDecayOn });
    const decayed = async (t: Trainer) => {
      const before = t.params.map((p) => p.data.slice());
      t.optimizer.step(Object.fromEntries(t.params.map((p) => [p.name, new Float32Array(p.data.length)])));
      return t.params.filter((p, i) => p.data.some((v, j) => v !== before[i][j])).map((p) => p.name);
    };
    const all = await trainer({});
    expect(await decayed(all)).to.deep.equal(all.params.map((p) => p.name));
    const weights = await trainer({ weightDecayOn: 'weights' });
    expect(await decayed(weights)).to.deep.equal(weights.params.filter((p) => p.shape.length >= 2).map((p) => p.name));
    const both = await trainer({ weightDecayOn: 'weights', noDecay: ['fc1.weight'] });
    expect(await decayed(both)).to.deep.equal(both.params.filter((p) => p.shape.length >= 2 && p.name !== 'fc1.weight').map((p) => p.name));
  });

  it("an LSTM export (unrolled in the training graph) trains; its bias B [1, 8H] is neither masked nor decayed under 'weights', its W and R are", async function () {
    this.timeout(60000);
    const forward = decodeModel(fs.readFileSync(path.join(__dirname, 'fixtures', 'torch', 'mnist-lstm.onnx')));
    const lstm = forward.graph.nodes.find((n) => n.opType === 'LSTM')!;
    const [, W, R, B] = lstm.inputs;
    const t = await Trainer.create({
      ...base, forward, trainCount: 256, batchSize: 64, sparsity: { method: 'spartan', density: 0.3 },
      optimizer: { kind: 'sgd', lr: 0.5, weightDecay: 0.1 }, weightDecayOn: 'weights',
    });
    try {
      expect(t.params.find((p) => p.name === B)!.shape).to.deep.equal([1, 8 * 16]);
      const data = head(loadMnist('train'), 256);
      const first = await t.trainEpoch(data, 0);
      expect(Number.isFinite(first.loss)).to.equal(true);
      const perLayer = t.sparsifier.stats().density.perLayer;
      expect(perLayer[B], 'B is a bias').to.equal(1);
      expect(perLayer[W]).to.be.below(1);
      expect(perLayer[R]).to.be.below(1);
      const before = t.params.map((p) => p.data.slice());
      t.optimizer.step(Object.fromEntries(t.params.map((p) => [p.name, new Float32Array(p.data.length)])));
      const decayed = t.params.filter((p, i) => p.data.some((v, j) => v !== before[i][j])).map((p) => p.name);
      expect(decayed).to.include.members([W, R, 'fc.weight']);
      expect(decayed).to.not.include(B);
    } finally {
      await t.release();
    }
  });

  it('trains apart the parameters torch.onnx.export merged because their values were equal (untieInitializers)', async () => {
    const forward = decodeModel(fs.readFileSync(path.join(__dirname, 'fixtures', 'torch', 'transformer-f32.onnx')));
    const identities = forward.graph.nodes.filter((n) => n.opType === 'Identity').length;
    const t = await open({ ...base, forward });
    expect(t.untied.map((u) => u.name).sort()).to.deep.equal(['enc.norm1.bias', 'enc.norm2.bias', 'enc.norm2.weight']);
    expect(t.params.map((p) => p.name)).to.include.members(['enc.norm1.weight', 'enc.norm2.weight', 'enc.self_attn.out_proj.bias', 'enc.norm1.bias', 'enc.norm2.bias']);
    expect(forward.graph.nodes.filter((n) => n.opType === 'Identity').length, "the caller's model is untouched").to.equal(identities);
    const exported = t.exportSparse();
    expect(exported.graph.initializers.map((i) => i.name)).to.include('enc.norm2.weight');
    expect(exported.graph.nodes.some((n) => n.opType === 'Identity')).to.equal(false);
  });

  it("'cuda' without onnxruntime's CUDA providers is ERR_SPARTAN_CUDA; with them it opens", async function () {
    const dir = path.dirname(require.resolve('onnxruntime-node/package.json'));
    const hasCudaEp = fs.readdirSync(path.join(dir, 'bin'), { recursive: true }).some((f) => String(f).includes('providers_cuda'));
    let caught: unknown;
    try {
      await open({ ...base, executionProviders: ['cuda', 'cpu'] });
    } catch (e) {
      caught = e;
    }
    if (hasCudaEp) {
      console.log("      onnxruntime-node's CUDA providers are installed here: the session opened");
      expect(caught).to.equal(undefined);
    } else {
      expect((caught as { code?: string }).code).to.equal('ERR_SPARTAN_CUDA');
      expect((caught as Error).message).to.match(/CUDA execution provider/);
      // found missing before onnxruntime tried (and printed its own red error line)
      expect((caught as Error).message).to.match(/libonnxruntime_providers_cuda\.so is not installed/);
    }
  });

  it('rejects data that does not fit the model (a label >= C, an example of the wrong size) before it trains or scores', async () => {
    const t = await open(base);
    const data = head(loadMnist('train'), 8);
    const before = t.params.map((p) => p.data.slice());
    const failure = async (d: typeof data, run: 'train' | 'score') => {
      try {
        await (run === 'train' ? t.trainEpoch(d, 0) : t.accuracy(d));
      } catch (e) {
        return e as Error & { code?: string };
      }
      return undefined;
    };
    const labels = data.labels.slice();
    labels[5] = 10;
    for (const run of ['train', 'score'] as const) {
      const e = await failure({ ...data, labels }, run);
      expect(e?.code, run).to.equal('ERR_SPARTAN_LABELS');
      expect(e?.message).to.match(/has label 10 \(example 5\) but the model's logits "logits" have 10 classes \(labels 0-9\)/);
      const small = await failure({ ...data, inputs: data.inputs.subarray(0, 8 * 700), inputShape: [1, 700] }, run);
      expect(small?.code, run).to.equal('ERR_SPARTAN_SHAPE');
      expect(small?.message).to.match(/examples of shape \[1,700\] \(700 values\) but the model's input "x" takes \[N,1,28,28\] \(784 per example\)/);
    }
    expect(t.sparsifier.stepCount).to.equal(0);
    t.params.forEach((p, i) => expect(Buffer.from(p.data.buffer).equals(Buffer.from(before[i].buffer)), p.name).to.equal(true));
    // a label that fits trains as before
    labels[5] = 9;
    expect(Number.isFinite((await t.trainEpoch({ ...data, labels }, 0)).loss)).to.equal(true);
  });

  it('passes sessionOptions to onnxruntime (one thread, no spinning: the same step as the default) and rejects a non-object', async () => {
    const data = head(loadMnist('train'), 8);
    const losses: number[] = [];
    for (const sessionOptions of [undefined, { intraOpNumThreads: 1, extra: { session: { intra_op: { allow_spinning: '0' } } } }]) {
      const t = await open({ ...base, sessionOptions });
      losses.push((await t.trainEpoch(data, 0)).loss);
    }
    expect(Number.isFinite(losses[0])).to.equal(true);
    expect(losses[1]).to.be.closeTo(losses[0], 1e-5);
    let caught: unknown;
    try {
      await Trainer.create({ ...base, sessionOptions: 'fast' as unknown as object });
    } catch (e) {
      caught = e;
    }
    expect((caught as { code?: string }).code).to.equal('ERR_SPARTAN_OPTION');
  });
});

describe('Trainer with BatchNormalization and Dropout (mnist-bn: a training-mode torch.onnx.export)', () => {
  const forward = decodeModel(fs.readFileSync(path.join(__dirname, 'fixtures', 'torch', 'mnist-bn.onnx')));
  const stats = ['bn1.running_mean', 'bn1.running_var', 'bn2.running_mean', 'bn2.running_var'];
  const data = head(loadMnist('train'), 600);
  const options = (extra: Partial<Parameters<typeof Trainer.create>[0]> = {}) => ({
    forward, logits: 'logits', epochs: 1, batchSize: 200, trainCount: data.count, seed: 4,
    sparsity: { method: 'spartan' as const, density: 0.5 }, optimizer: { kind: 'sgd' as const, lr: 0.05, momentum: 0.9 }, ...extra,
  });
  const initial = (name: string) => forward.graph.initializers.find((t) => t.name === name)!.data as Float32Array;

  it("'batch' (default): the running statistics are buffers, not parameters; each step moves them as the training graph says", async function () {
    this.timeout(60000);
    const t = await Trainer.create(options({ trainCount: 200 }));
    try {
      expect(t.params.map((p) => p.name)).to.not.include.members(stats);
      expect(t.buffers.map((b) => b.name)).to.deep.equal(stats);
      await t.trainEpoch(head(data, 200), 0); // one step, the whole batch
      // bn1 comes before the dropout, so its batch statistics do not depend on the batch's order or masks
      const train = deriveTrainingGraph(untieInitializers(forward).model, { logits: 'logits', batchNorm: 'batch', dropout: 'mask-inputs' });
      const runner = await GraphRunner.create(train);
      const feeds: Record<string, { data: Float32Array | BigInt64Array; dims: number[] }> = {
        input: { data: data.inputs.subarray(0, 200 * 784), dims: [200, 1, 28, 28] },
        labels: { data: BigInt64Array.from(data.labels.subarray(0, 200), (v) => BigInt(v)), dims: [200] },
        'dropout_mask./drop/Dropout_output_0': { data: new Float32Array(200 * 288).fill(1), dims: [200, 288] },
      };
      for (const v of train.graph.inputs) if (!feeds[v.name]) feeds[v.name] = { data: initial(v.name), dims: forward.graph.initializers.find((i) => i.name === v.name)!.dims };
      const out = await runner.run(feeds);
      await runner.release();
      for (const name of ['bn1.running_mean', 'bn1.running_var']) {
        const got = t.buffers.find((b) => b.name === name)!.data, want = out[`state.${name}`] as Float32Array;
        expect(Array.from(got).some((v, i) => v !== initial(name)[i]), `${name} moved`).to.equal(true);
        got.forEach((v, i) => expect(v, `${name}[${i}]`).to.be.closeTo(want[i], 1e-5 * (1 + Math.abs(want[i]))));
      }
    } finally {
      await t.release();
    }
  });

  it('evaluation and the exported model use the running statistics, in inference form (no dropout): the same accuracy', async function () {
    this.timeout(60000);
    const t = await Trainer.create(options({ epochs: 3, batchSize: 50 }));
    try {
      for (let e = 0; e < 3; e++) await t.trainEpoch(data, e);
      const test = head(loadMnist('test'), 1000);
      const acc = await t.accuracy(test);
      expect(await t.accuracy(test), 'evaluation is deterministic').to.equal(acc);
      expect(acc, 'well above chance after 36 steps of 50').to.be.above(0.6);
      const exported = t.exportSparse();
      expect(exported.graph.nodes.filter((n) => n.opType === 'BatchNormalization').every((n) => n.outputs.length === 1 && n.attrs.training_mode === undefined)).to.equal(true);
      expect(exported.graph.nodes.filter((n) => n.opType === 'Dropout').every((n) => n.inputs.length <= 2)).to.equal(true);
      for (const s of stats) expect(Array.from(exported.graph.initializers.find((i) => i.name === s)!.data as Float32Array)).to.deep.equal(Array.from(t.buffers.find((b) => b.name === s)!.data));
      const runner = await GraphRunner.create(exported);
      let correct = 0;
      for (const b of batches(test, 500, null)) correct += countCorrect((await runner.run({ input: { data: b.x, dims: [b.size, 1, 28, 28] } })).logits as Float32Array, b.labels!);
      await runner.release();
      expect(correct / test.count).to.be.closeTo(acc, 1e-9);
    } finally {
      await t.release();
    }
  });

  it("'frozen' never changes the running statistics; the dropout masks repeat from the seed (same seed, same weights) and keep 1 - ratio", async function () {
    this.timeout(60000);
    const frozen = await Trainer.create(options({ batchNorm: 'frozen' }));
    await frozen.trainEpoch(data, 0);
    for (const b of frozen.buffers) expect(Array.from(b.data)).to.deep.equal(Array.from(initial(b.name)));
    await frozen.release();
    const weightsAfter = async (seed: number) => {
      const t = await Trainer.create(options({ seed }));
      await t.trainEpoch(data, 0);
      const w = t.params.map((p) => p.data.slice());
      const masks = (t as unknown as { dropoutFeeds(step: number, size: number): Record<string, { data: Float32Array }> }).dropoutFeeds(0, 100);
      await t.release();
      return { w, mask: Object.values(masks)[0].data };
    };
    const a = await weightsAfter(4), b = await weightsAfter(4), c = await weightsAfter(5);
    a.w.forEach((w, i) => expect(Buffer.from(w.buffer).equals(Buffer.from(b.w[i].buffer)), `param ${i}`).to.equal(true));
    expect(a.w.some((w, i) => w.some((v, j) => v !== c.w[i][j]))).to.equal(true);
    expect(a.mask.length).to.equal(100 * 288);
    expect(new Set(a.mask)).to.deep.equal(new Set([0, Math.fround(1 / 0.8)]));
    const dropped = a.mask.filter((v) => v === 0).length / a.mask.length;
    expect(dropped).to.be.closeTo(0.2, 0.01);
  });

  it('release() frees both sessions (twice is fine); a released Trainer refuses to train or score', async function () {
    this.timeout(60000);
    const t = await Trainer.create(options());
    await t.release();
    await t.release();
    const codeOf = (p: Promise<unknown>) => p.then(() => 'resolved', (e: { code?: string }) => e.code);
    expect(await codeOf(t.trainEpoch(data, 0))).to.equal('ERR_SPARTAN_DISPOSED');
    expect(await codeOf(t.accuracy(data))).to.equal('ERR_SPARTAN_DISPOSED');
    expect(await codeOf(Trainer.create(options({ batchNorm: 'train' as never })))).to.equal('ERR_SPARTAN_OPTION');
  });

  it('release() during trainEpoch waits for the run in flight; the epoch rejects with ERR_SPARTAN_DISPOSED before its next step, the steps taken kept whole', async function () {
    this.timeout(60000);
    const t = await Trainer.create(options());
    let steps = 0;
    const epoch = t.trainEpoch(data, 0, () => steps++);
    await new Promise((r) => setTimeout(r, 0));
    await t.release();
    expect(await failure(epoch)).to.match(/^ERR_SPARTAN_DISPOSED: this Trainer was released before the training graph at step \d+ could run$/);
    expect(t.sparsifier.stepCount, 'every step that ran finished, sparsifier and optimizer alike').to.equal(steps);
    // an epoch and an evaluation at once: release() waits for both runs, whichever ends first
    const u = await Trainer.create(options());
    const both = [u.trainEpoch(data, 0), u.evaluate(data)];
    await new Promise((r) => setTimeout(r, 0));
    const first = u.release(), again = u.release();
    expect(again).to.equal(first);
    await first;
    for (const p of both) expect(await failure(p)).to.match(/^ERR_SPARTAN_DISPOSED: |^resolved$/);
  });
});

describe('Trainer with logits that are an inner tensor of the model', () => {
  afterEach(releaseOpened);
  it('a model whose only output is softmax(logits) trains on its logits, evaluates and exports; graph derive outputs the logits too', async function () {
    this.timeout(120000);
    const base = lenet300100(1);
    const probs = { name: 'probs', elemType: base.graph.outputs[0].elemType, shape: base.graph.outputs[0].shape };
    const forward = { ...base, graph: { ...base.graph, nodes: [...base.graph.nodes, { opType: 'Softmax', name: 'to_probs', inputs: ['logits'], outputs: ['probs'], attrs: { axis: { i: 1 } } }], outputs: [probs] } };
    expect(deriveTrainingGraph(forward, { logits: 'logits' }).graph.outputs.map((o) => o.name)).to.include.members(['loss', 'logits', 'probs']);
    const train = head(loadMnist('train'), 2000), test = head(loadMnist('test'), 1000);
    const options = { logits: 'logits', epochs: 1, batchSize: 64, trainCount: train.count, seed: 1, sparsity: { method: 'imp' as const, density: 0.5 }, optimizer: { kind: 'sgd' as const, lr: 0.1, momentum: 0.9 } };
    const t = await open({ ...options, forward }), same = await open({ ...options, forward: base });
    const [metrics, sameMetrics] = [await t.trainEpoch(train, 0), await same.trainEpoch(train, 0)];
    const { accuracy } = await t.evaluate(test);
    expect(accuracy).to.be.above(0.5);
    // the same training as the model with logits as its output, to the bit
    expect([metrics.loss, accuracy]).to.deep.equal([sameMetrics.loss, (await same.evaluate(test)).accuracy]);
    const runner = await GraphRunner.create(t.exportSparse());
    let correct = 0;
    for (const b of batches(test, 500, null)) correct += countCorrect((await runner.run({ x: { data: b.x, dims: [b.size, 1, 28, 28] } })).logits as Float32Array, b.labels!);
    expect(correct / test.count).to.equal(accuracy);
  });
});
