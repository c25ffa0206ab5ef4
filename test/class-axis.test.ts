// Cross-entropy with the classes on axis 1, PyTorch's layout: a segmenter's logits
// [N, C, H, W] against labels [N, H, W] (the derivation itself is checked against PyTorch's
// autograd in torch-export.test.ts, fixtures tagger-f64 and segment-f32).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { decodeModel, GraphRunner, Trainer, type Dataset } from '../lib/index';
import { deriveTrainingGraph } from '../lib/graph/autodiff';
import { batches } from '../lib/data/dataset';
import { countCorrect, crossEntropySum } from '../lib/train/metrics';
import { GraphBuilder, model } from '../lib/graph/builder';
import { DataType } from '../lib/graph/schema';
import { freshSeed, rng } from './reference';
import { failure } from './helpers';

const segmenter = () => decodeModel(fs.readFileSync(path.join(__dirname, 'fixtures', 'torch', 'segment-f32.onnx')));

/** 5x5 images; each pixel's class is its value's band: below -0.4, up to 0.4, above. */
function bands(count: number, seed: number): Dataset {
  const rand = rng(seed), inputs = new Float32Array(count * 25), labels = new Uint8Array(count * 25);
  for (let i = 0; i < inputs.length; i++) {
    inputs[i] = 2 * rand() - 1;
    labels[i] = inputs[i] < -0.4 ? 0 : inputs[i] <= 0.4 ? 1 : 2;
  }
  return { inputs, inputShape: [1, 5, 5], count, labels };
}

/** Pixel accuracy of logits [n, 3, 5, 5], the argmax over axis 1 written out here. */
function pixelAccuracy(logits: Float32Array, labels: BigInt64Array): number {
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const n = Math.floor(i / 25), p = i % 25, at = (c: number) => logits[(n * 3 + c) * 25 + p];
    const best = at(2) > Math.max(at(0), at(1)) ? 2 : at(1) > at(0) ? 1 : 0;
    if (BigInt(best) === labels[i]) correct++;
  }
  return correct / labels.length;
}

describe('cross-entropy on classes at axis 1 (PyTorch layout [N, C, H, W])', function () {
  this.timeout(120000);

  const seed = freshSeed();
  it(`metrics: crossEntropySum and countCorrect with labels after the class axis equal them on the classes moved last (seed ${seed})`, () => {
    const rand = rng(seed), A = 3, C = 4, P = 6;
    const logits = Float32Array.from({ length: A * C * P }, () => 4 * rand() - 2);
    const labels = BigInt64Array.from({ length: A * P }, () => BigInt(Math.floor(rand() * C)));
    const last = new Float32Array(A * P * C); // [A, P, C]
    for (let a = 0; a < A; a++) for (let c = 0; c < C; c++) for (let p = 0; p < P; p++) last[(a * P + p) * C + c] = logits[(a * C + c) * P + p];
    expect(crossEntropySum(logits, labels, P)).to.be.closeTo(crossEntropySum(last, labels), 1e-9);
    expect(countCorrect(logits, labels, P)).to.equal(countCorrect(last, labels));
    expect(crossEntropySum(logits, labels, P)).to.not.be.closeTo(crossEntropySum(logits, labels), 1e-6); // the layout matters
  });

  it('the Trainer (classAxis 1, Spartan at density 0.5) learns per-pixel classes; evaluate() equals the exported model per pixel', async () => {
    const train = bands(400, 1), test = bands(100, 2);
    const t = await Trainer.create({
      forward: segmenter(), logits: 'logits', classAxis: 1, epochs: 8, batchSize: 20, trainCount: train.count, seed: 1,
      sparsity: { method: 'spartan', density: 0.5, betaMax: 30 }, optimizer: { kind: 'adamw', lr: 0.03, weightDecay: 0 },
    });
    try {
      expect(t.classes).to.equal(3);
      for (let e = 0; e < 8; e++) await t.trainEpoch(train, e);
      const after = await t.evaluate(test);
      expect(after.accuracy).to.be.at.least(0.9);
      expect(t.sparsifier.stats().density.global).to.be.closeTo(0.5, 0.02);
      const runner = await GraphRunner.create(t.exportSparse());
      let correct = 0, loss = 0;
      for (const b of batches(test, 50, null)) {
        const logits = (await runner.run({ input: { data: b.x, dims: [b.size, 1, 5, 5] } })).logits as Float32Array;
        correct += pixelAccuracy(logits, b.labels!) * b.labels!.length;
        for (let i = 0; i < b.labels!.length; i++) { // -log softmax over axis 1, in float64
          const n = Math.floor(i / 25), p = i % 25, z = [0, 1, 2].map((c) => logits[(n * 3 + c) * 25 + p]);
          const m = Math.max(...z);
          loss += Math.log(z.reduce((s, v) => s + Math.exp(v - m), 0)) + m - z[Number(b.labels![i])];
        }
      }
      await runner.release();
      expect(after.accuracy).to.equal(correct / (test.count * 25));
      expect(after.loss).to.be.closeTo(loss / (test.count * 25), 1e-6); // float32 logits of two sessions (weights as inputs vs initializers)
    } finally {
      await t.release();
    }
  });

  it('without classAxis the same model reads W as the classes and refuses the [N, H, W] labels; a bad axis, or one under mse, is ERR_SPARTAN_OPTION', async () => {
    const base = { forward: segmenter(), logits: 'logits', epochs: 1, batchSize: 20, trainCount: 40, sparsity: { method: 'dense' as const, density: 1 }, optimizer: { kind: 'sgd' as const, lr: 0.1 } };
    const t = await Trainer.create(base);
    try {
      expect(t.classes).to.equal(5);
      expect(await failure(t.trainEpoch(bands(40, 3), 0))).to.match(/^ERR_SPARTAN_LABELS: the training data has 40 examples of 15 positions, so 600 labels, but 1000/);
    } finally {
      await t.release();
    }
    for (const classAxis of [0, 4, -4, 1.5]) expect(await failure(Trainer.create({ ...base, classAxis }))).to.match(/^ERR_SPARTAN_OPTION: classAxis must be an axis of the logits other than the batch axis 0: 1 to 3, or -1 for the last/);
    expect(() => deriveTrainingGraph(segmenter(), { logits: 'logits', loss: 'mse', classAxis: 1 })).to.throw(/classAxis says where the logits' classes lie: it has no meaning for the mse loss/);
    const same = deriveTrainingGraph(segmenter(), { logits: 'logits', classAxis: -3 }).graph.inputs.find((v) => v.name === 'labels');
    expect(same?.shape).to.deep.equal(['N', 5, 5]); // -3 of rank 4 is axis 1
  });
});

describe('cross-entropy on logits of rank 1', () => {
  it('is ERR_SPARTAN_ONNX (logits [N] have no class axis), with or without classAxis', () => {
    const b = new GraphBuilder();
    const x = b.input('x', DataType.FLOAT, ['N', 3]);
    b.op('Flatten', [b.op('MatMul', [x, b.initializer('w', [3, 1], new Float32Array(3))])], { axis: { i: 0 } }, ['logits']);
    b.output('logits', DataType.FLOAT, ['N']);
    for (const classAxis of [undefined, 1])
      expect(() => deriveTrainingGraph(model(b.graph('scores')), { logits: 'logits', classAxis })).to.throw(/cross-entropy needs logits of shape \[N, C\]/).with.property('code', 'ERR_SPARTAN_ONNX');
  });
});
