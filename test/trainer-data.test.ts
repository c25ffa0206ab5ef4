// The Trainer on a user's own data: token ids into an embedding and an LSTM, more classes
// than a byte holds, and regression with the mse loss.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { decodeModel, GraphBuilder, GraphRunner, Trainer, type Dataset } from '../lib/index';
import { batches } from '../lib/data/dataset';
import { model } from '../lib/graph/builder';
import { DataType } from '../lib/graph/schema';
import { rng } from './reference';
import { failure, uniformInitializer } from './helpers';
import { countCorrect } from '../lib/train/trainer';

const fixture = (name: string) => decodeModel(fs.readFileSync(path.join(__dirname, 'fixtures', 'torch', `${name}.onnx`)));

/** Sequences of 6 token ids in [0, 16); the class is the last token mod 4 (an LSTM must carry it to its last state). */
function tokenTask(count: number, seed: number): Dataset {
  const rand = rng(seed), T = 6;
  const inputs = new BigInt64Array(count * T), labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    for (let t = 0; t < T; t++) inputs[i * T + t] = BigInt(Math.floor(rand() * 16));
    labels[i] = Number(inputs[i * T + T - 1]) % 4;
  }
  return { inputs, inputShape: [T], count, labels, classes: 4 };
}

describe('Trainer on token ids (int64 input: nn.Embedding into nn.LSTM, a PyTorch export)', function () {
  this.timeout(120000);
  const train = tokenTask(2000, 1), test = tokenTask(500, 2);
  const opts = (method: 'dense' | 'spartan') => ({
    forward: fixture('tokens-lstm'), logits: 'logits', epochs: 6, batchSize: 32, trainCount: train.count, seed: 3,
    sparsity: method === 'dense' ? { method, density: 1 } : { method, density: 0.5, betaMax: 30 },
    optimizer: { kind: 'adamw' as const, lr: 0.02, weightDecay: 0 },
  });

  for (const method of ['dense', 'spartan'] as const) {
    it(`${method}: learns the task (>= 90 % test accuracy after 6 epochs), and the exported model scores the same on int64 ids`, async () => {
      const t = await Trainer.create(opts(method));
      try {
        const before = await t.evaluate(test);
        for (let e = 0; e < 6; e++) await t.trainEpoch(train, e);
        const after = await t.evaluate(test);
        expect(after.accuracy).to.be.at.least(0.9);
        expect(after.loss).to.be.below(before.loss / 3);
        if (method === 'spartan') {
          const st = t.sparsifier.stats();
          expect(st.density.global).to.be.closeTo(0.5, 0.01);
          expect(st.density.perLayer['emb.weight']).to.be.below(1); // the embedding table is masked like any weight
        }
        const exported = t.exportSparse();
        const runner = await GraphRunner.create(exported);
        let correct = 0;
        for (const b of batches(test, 250, null)) correct += countCorrect((await runner.run({ input: { data: b.x, dims: [b.size, 6] } })).logits as Float32Array, b.labels!);
        await runner.release();
        expect(correct / test.count).to.equal(after.accuracy);
      } finally {
        await t.release();
      }
    });
  }

  it('refuses ids in the wrong array type, and a token past the embedding, before a step, with nothing changed', async () => {
    const t = await Trainer.create(opts('spartan'));
    try {
      const ints = { ...train, inputs: Int32Array.from(train.inputs as BigInt64Array, Number) };
      expect(await failure(t.trainEpoch(ints, 0))).to.match(/^ERR_SPARTAN_TYPE: the training data: the model's input "input" takes int64, so the examples must be a BigInt64Array \(got Int32Array\)/);
      const floats = { ...train, inputs: Float32Array.from(train.inputs as BigInt64Array, Number) };
      expect(await failure(t.evaluate(floats))).to.match(/^ERR_SPARTAN_TYPE: the evaluation data: .* must be a BigInt64Array \(got Float32Array\)/);
      const before = t.params.map((p) => p.data.slice());
      const bad = { ...train, inputs: (train.inputs as BigInt64Array).slice() };
      for (let i = 0; i < bad.count; i++) bad.inputs[i * 6 + 2] = 16n; // the vocabulary is 0-15
      expect(await failure(t.trainEpoch(bad, 0))).to.match(/^ERR_SPARTAN_DATASET: the training data: inputs\[2\] \(example 0\) is 16, but the model's input "input" indexes the 16 rows of "emb.weight" \(Gather "[^"]+"\), so its values must be in \[0, 16\)$/);
      expect(t.sparsifier.stepCount).to.equal(0);
      t.params.forEach((p, i) => expect(Buffer.from(p.data.buffer).equals(Buffer.from(before[i].buffer)), p.name).to.equal(true));
      expect((await t.trainEpoch({ ...train, count: 64, inputs: train.inputs.subarray(0, 64 * 6), labels: train.labels!.subarray(0, 64) }, 0)).trainAccuracy).to.be.a('number');
    } finally {
      await t.release();
    }
  });
});

/** Token ids [N, T] with T dynamic -> embedding (Gather) -> mean over T -> Gemm -> 4 classes: a bag of words. */
function bagOfWords() {
  const b = new GraphBuilder(), rand = rng(7);
  const x = b.input('ids', DataType.INT64, ['N', 'T']);
  const emb = uniformInitializer(b, 'emb', [16, 8], rand);
  const pooled = b.op('ReduceMean', [b.op('Gather', [emb, x], { axis: { i: 0 } })], { axes: { ints: [1] }, keepdims: { i: 0 } });
  const w = uniformInitializer(b, 'w', [4, 8], rand);
  b.op('Gemm', [pooled, w, b.initializer('bias', [4], new Float32Array(4))], { transB: { i: 1 } }, ['logits']);
  b.output('logits', DataType.FLOAT, ['N', 4]);
  return model(b.graph('bag-of-words'));
}

describe('Trainer on token ids of a dynamic sequence length', function () {
  it('feeds the sequence length the dataset gives (5 here, then 9), and learns which token is most frequent', async () => {
    const task = (count: number, T: number, seed: number): Dataset => {
      const rand = rng(seed), inputs = new BigInt64Array(count * T), labels = new Uint8Array(count);
      for (let i = 0; i < count; i++) {
        labels[i] = Math.floor(rand() * 4);
        for (let t = 0; t < T; t++) inputs[i * T + t] = BigInt(t < 3 ? labels[i] : 4 + Math.floor(rand() * 12)); // 3 copies of the class's token among noise
      }
      return { inputs, inputShape: [T], count, labels };
    };
    const t = await Trainer.create({ forward: bagOfWords(), logits: 'logits', epochs: 10, batchSize: 20, trainCount: 400, seed: 1, sparsity: { method: 'spartan', density: 0.5, betaMax: 30 }, optimizer: { kind: 'adamw', lr: 0.05, weightDecay: 0 } });
    try {
      for (let e = 0; e < 10; e++) await t.trainEpoch(task(400, 5, 20 + e), e);
      expect((await t.evaluate(task(200, 5, 1))).accuracy).to.be.at.least(0.95);
      expect((await t.evaluate(task(200, 9, 2))).accuracy).to.be.at.least(0.9); // another length, same weights
      expect(await failure(t.trainEpoch({ ...task(10, 5, 3), inputShape: [5, 1] }, 10))).to.match(/^ERR_SPARTAN_SHAPE: the training data has examples of shape \[5,1\] but the model's input "ids" takes \[N,T\]: with a dynamic dim past the batch, the examples must have the same rank/);
    } finally {
      await t.release();
    }
  });
});

/** x [N, 8] -> Gemm -> logits [N, C]: a linear classifier of any number of classes. */
function linearClassifier(C: number) {
  const b = new GraphBuilder(), rand = rng(5);
  const x = b.input('x', DataType.FLOAT, ['N', 8]);
  const w = uniformInitializer(b, 'w', [C, 8], rand);
  const bias = b.initializer('b', [C], new Float32Array(C));
  b.op('Gemm', [x, w, bias], { transB: { i: 1 } }, ['logits']);
  b.output('logits', DataType.FLOAT, ['N', C]);
  return model(b.graph('linear'));
}

describe('Trainer labels: more than 256 classes, any integer array', function () {
  this.timeout(60000);
  const C = 300, count = 600, rand = rng(9);
  const inputs = Float32Array.from({ length: count * 8 }, () => rand() * 2 - 1);
  const base = { forward: linearClassifier(C), logits: 'logits', epochs: 1, batchSize: 100, trainCount: count, sparsity: { method: 'dense' as const, density: 1 }, optimizer: { kind: 'sgd' as const, lr: 0.1 } };

  it('trains on Uint16Array, Uint32Array, Int32Array and BigInt64Array labels alike, and refuses C and -1', async () => {
    const t = await Trainer.create(base);
    try {
      expect(t.classes).to.equal(C);
      const labels = Uint16Array.from({ length: count }, (_, i) => (i * 7) % C);
      labels[3] = C - 1;
      const losses: number[] = [];
      for (const arr of [labels, Uint32Array.from(labels), Int32Array.from(labels), BigInt64Array.from(labels, BigInt)]) {
        const fresh = await Trainer.create(base);
        losses.push((await fresh.trainEpoch({ inputs, inputShape: [8], count, labels: arr }, 0)).loss);
        await fresh.release();
      }
      expect(new Set(losses).size).to.equal(1); // the same run whatever array holds the labels
      labels[3] = C;
      expect(await failure(t.trainEpoch({ inputs, inputShape: [8], count, labels }, 0))).to.match(/^ERR_SPARTAN_LABELS: the training data has label 300 \(example 3\) but the model's logits "logits" have 300 classes \(labels 0-299\)/);
      const negative = Int32Array.from(labels);
      negative[3] = -1;
      expect(await failure(t.evaluate({ inputs, inputShape: [8], count, labels: negative }))).to.match(/^ERR_SPARTAN_LABELS: the evaluation data has label -1 \(example 3\)/);
      expect(await failure(t.trainEpoch({ inputs, inputShape: [8], count, labels: Float32Array.from(labels) as never }, 0))).to.match(/^ERR_SPARTAN_TYPE: the training data: labels must be an integer typed array/);
      expect(await failure(t.trainEpoch({ inputs, inputShape: [8], count }, 0))).to.match(/^ERR_SPARTAN_LABELS: the training data has no labels, which the cross-entropy loss trains towards/);
      expect(await failure(t.trainEpoch({ inputs: inputs.subarray(8), inputShape: [8], count, labels }, 0))).to.match(/^ERR_SPARTAN_SHAPE: the training data: 600 examples of shape \[8\] need 4800 values, but inputs has 4792/);
      expect(t.sparsifier.stepCount).to.equal(0);
    } finally {
      await t.release();
    }
  });
});

describe('Trainer with the mse loss (a PyTorch regressor: Linear, Tanh, Linear to 2 outputs)', function () {
  this.timeout(120000);
  /** Two smooth targets of six inputs. */
  function regression(count: number, seed: number): Dataset {
    const rand = rng(seed);
    const inputs = Float32Array.from({ length: count * 6 }, () => rand() * 2 - 1), targets = new Float32Array(count * 2);
    for (let i = 0; i < count; i++) {
      const x = inputs.subarray(i * 6, i * 6 + 6);
      targets[i * 2] = Math.sin(2 * x[0]) + x[1] * x[2];
      targets[i * 2 + 1] = x[3] - 0.5 * x[4] * x[5];
    }
    return { inputs, inputShape: [6], count, targets };
  }
  const train = regression(2000, 11), test = regression(500, 12);
  const opts = (method: 'dense' | 'spartan') => ({
    forward: fixture('regressor'), logits: 'prediction', loss: 'mse' as const, epochs: 30, batchSize: 50, trainCount: train.count, seed: 1,
    sparsity: method === 'dense' ? { method, density: 1 } : { method, density: 0.5, betaMax: 30 },
    optimizer: { kind: 'adamw' as const, lr: 0.01, weightDecay: 0 },
  });

  for (const method of ['dense', 'spartan'] as const) {
    it(`${method}: the test mse falls below a tenth of its start; evaluate() is the exported model's mse`, async () => {
      const t = await Trainer.create(opts(method));
      try {
        expect(t.classes).to.equal(undefined);
        expect(t.targetShape).to.deep.equal([2]);
        const before = await t.evaluate(test);
        expect(before.accuracy).to.equal(undefined);
        let m;
        for (let e = 0; e < 30; e++) m = await t.trainEpoch(train, e);
        expect(m!.trainAccuracy).to.equal(undefined);
        expect(m!.loss).to.be.a('number');
        const after = await t.evaluate(test);
        expect(after.loss).to.be.below(before.loss / 10);
        const runner = await GraphRunner.create(t.exportSparse());
        const pred = (await runner.run({ input: { data: test.inputs, dims: [test.count, 6] } })).prediction as Float32Array;
        await runner.release();
        let sum = 0;
        for (let i = 0; i < pred.length; i++) sum += (pred[i] - test.targets![i]) ** 2;
        expect(after.loss).to.be.closeTo(sum / pred.length, 1e-6 * after.loss);
      } finally {
        await t.release();
      }
    });
  }

  it('refuses missing, short or non-finite targets, accuracy(), and label smoothing', async () => {
    expect(await failure(Trainer.create({ ...opts('dense'), labelSmoothing: 0.1 }))).to.match(/^ERR_SPARTAN_OPTION: labelSmoothing smooths class labels: it has no meaning for the mse loss/);
    expect(await failure(Trainer.create({ ...opts('dense'), loss: 'hinge' as never }))).to.match(/^ERR_SPARTAN_OPTION: loss must be 'cross-entropy' or 'mse' \(got "hinge"\)/);
    const t = await Trainer.create(opts('dense'));
    try {
      expect(await failure(t.trainEpoch({ ...train, targets: undefined }, 0))).to.match(/^ERR_SPARTAN_LABELS: the training data has no targets, which the mse loss trains towards/);
      expect(await failure(t.trainEpoch({ ...train, targets: train.targets!.subarray(1) }, 0))).to.match(/^ERR_SPARTAN_SHAPE: the training data: 2000 examples need 4000 target values \(the prediction "prediction" is \[N, 2\]\), but targets has 3999/);
      const nan = train.targets!.slice();
      nan[5] = NaN;
      expect(await failure(t.trainEpoch({ ...train, targets: nan }, 0))).to.match(/^ERR_SPARTAN_NON_FINITE: the training data: target 5 \(example 2\) is NaN/);
      expect(await failure(t.accuracy(test))).to.match(/^ERR_SPARTAN_OPTION: accuracy\(\) needs class labels/);
      expect(t.sparsifier.stepCount).to.equal(0);
    } finally {
      await t.release();
    }
  });

  it('ignores a stray labels field (the mse loss reads targets): it trained, then failed mid-epoch converting the labels to int64', async () => {
    const small = { ...train, count: 200, inputs: train.inputs.subarray(0, 200 * 6), targets: train.targets!.subarray(0, 400) };
    const plain = await Trainer.create(opts('spartan')), stray = await Trainer.create(opts('spartan'));
    try {
      await plain.trainEpoch(small, 0);
      await stray.trainEpoch({ ...small, labels: new Float32Array(200).fill(0.5) as never }, 0);
      expect(stray.params.every((p, i) => Buffer.from(p.data.buffer).equals(Buffer.from(plain.params[i].data.buffer)))).to.equal(true);
      expect(await stray.evaluate({ ...small, labels: new Uint8Array(3) })).to.deep.equal(await plain.evaluate(small));
    } finally {
      await Promise.all([plain.release(), stray.release()]);
    }
  });
});

/** Token ids [N, T] (T dynamic) -> embedding -> MatMul -> a value per position: prediction [N, T, 1]. */
function positionRegressor() {
  const b = new GraphBuilder(), rand = rng(9);
  const x = b.input('ids', DataType.INT64, ['N', 'T']);
  const emb = uniformInitializer(b, 'emb', [16, 4], rand);
  const w = uniformInitializer(b, 'w', [4, 1], rand);
  b.op('Add', [b.op('MatMul', [b.op('Gather', [emb, x], { axis: { i: 0 } }), w]), b.initializer('bias', [1], new Float32Array(1))], {}, ['prediction']);
  b.output('prediction', DataType.FLOAT, ['N', 'T', 1]);
  return model(b.graph('position-regressor'));
}

describe('Trainer with the mse loss on a prediction of a dynamic sequence length ([N, T, 1])', function () {
  it('takes T from the ids: trains on length 5, scores on length 9, and refuses targets of another length', async () => {
    const task = (count: number, T: number, seed: number): Dataset => {
      const rand = rng(seed), inputs = new BigInt64Array(count * T), targets = new Float32Array(count * T);
      for (let i = 0; i < count * T; i++) {
        const id = Math.floor(rand() * 16);
        inputs[i] = BigInt(id);
        targets[i] = Math.sin(id); // each token's own value
      }
      return { inputs, inputShape: [T], count, targets };
    };
    const t = await Trainer.create({ forward: positionRegressor(), logits: 'prediction', loss: 'mse', epochs: 20, batchSize: 20, trainCount: 200, seed: 1, sparsity: { method: 'spartan', density: 0.75, betaMax: 30 }, optimizer: { kind: 'adamw', lr: 0.05, weightDecay: 0 } });
    try {
      expect(t.targetShape).to.deep.equal(['T', 1]);
      const before = (await t.evaluate(task(50, 9, 2))).loss;
      const accuracies = new Set<unknown>();
      for (let e = 0; e < 20; e++) await t.trainEpoch(task(200, 5, 30 + e), e, (_, __, accuracy) => accuracies.add(accuracy));
      expect([...accuracies], 'onBatch gets no accuracy without a cross-entropy loss').to.deep.equal([undefined]);
      const after = (await t.evaluate(task(50, 9, 2))).loss;
      expect(after).to.be.below(before / 10);
      const short = task(10, 5, 3);
      expect(await failure(t.trainEpoch({ ...short, targets: task(10, 4, 3).targets }, 20))).to.match(/^ERR_SPARTAN_SHAPE: the training data: 10 examples need 50 target values \(the prediction "prediction" is \[N, 5, 1\]\), but targets has 40/);
    } finally {
      await t.release();
    }
  });
});

describe("Trainer on dims nothing names ('?': a dim with neither a value nor a symbol)", function () {
  it('an input [N, 3, ?, ?] takes H != W; logits [N, ?, C] after a Concat read their length from the labels, not from the ids', async () => {
    // images [N, 3, ?, ?] -> GlobalAveragePool -> Flatten -> Gemm: any H and W
    const img = new GraphBuilder(), rand = rng(3);
    const x = img.input('x', DataType.FLOAT, ['N', 3, '?', '?']);
    const pooled = img.op('Flatten', [img.op('GlobalAveragePool', [x])], { axis: { i: 1 } });
    img.op('Gemm', [pooled, uniformInitializer(img, 'w', [2, 3], rand)], { transB: { i: 1 } }, ['logits']);
    img.output('logits', DataType.FLOAT, ['N', 2]);
    const images: Dataset = { inputs: Float32Array.from({ length: 8 * 60 }, () => rand()), inputShape: [3, 4, 5], count: 8, labels: new Uint8Array(8) };
    const opts = { logits: 'logits', epochs: 1, batchSize: 4, trainCount: 8, sparsity: { method: 'dense' as const, density: 1 }, optimizer: { kind: 'sgd' as const, lr: 0.1 } };
    const t1 = await Trainer.create({ ...opts, forward: model(img.graph('any-size')) });
    try {
      expect((await t1.trainEpoch(images, 0)).loss).to.be.a('number');
    } finally {
      await t1.release();
    }
    // ids [N, ?] -> embedding -> Concat with itself along the positions -> [N, ?, 8] -> MatMul: 2T labels per example
    const tag = new GraphBuilder();
    const ids = tag.input('ids', DataType.INT64, ['N', '?']);
    const emb = tag.op('Gather', [uniformInitializer(tag, 'emb', [16, 8], rand), ids], { axis: { i: 0 } });
    const twice = tag.op('Concat', [emb, emb], { axis: { i: 1 } });
    tag.op('MatMul', [twice, uniformInitializer(tag, 'w', [8, 3], rand)], {}, ['logits']);
    tag.output('logits', DataType.FLOAT, ['N', '?', 3]);
    const t2 = await Trainer.create({ ...opts, forward: model(tag.graph('doubled-tagger')) });
    try {
      const T = 5, tokens: Dataset = { inputs: BigInt64Array.from({ length: 8 * T }, (_, i) => BigInt(i % 16)), inputShape: [T], count: 8, labels: new Uint8Array(8 * 2 * T) };
      expect((await t2.trainEpoch(tokens, 0)).loss).to.be.a('number');
      expect(await failure(t2.trainEpoch({ ...tokens, labels: new Uint8Array(8 * T + 3) }, 1))).to.match(/^ERR_SPARTAN_SHAPE: the training data: the logits "logits" take a label per position \[N, \?\], which 43 values for 8 examples do not divide into/);
    } finally {
      await t2.release();
    }
  });
});
