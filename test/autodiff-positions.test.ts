// Cross-entropy with a class per position: logits [N, ..., C] against labels [N, ...], the
// loss averaged over every position. The derivation by finite differences and against a host
// computation of the loss; the Trainer on a token-tagging task.
import { expect } from 'chai';
import { GraphBuilder, Trainer, type Dataset } from '../lib/index';
import { model } from '../lib/graph/builder';
import { DataType } from '../lib/graph/schema';
import { rng } from './reference';
import { failure, uniformInitializer } from './helpers';
import { checkGradients, trainingOutputs } from './gradcheck';

const seed = Number(process.env.TEST_SEED ?? Date.now() % 1e9);

/** x [N, T, 4] (T static or a symbol) -> MatMul [4, 5] + bias -> logits [N, T, 5], float64. */
function perPosition(T: number | string, rand: () => number) {
  const b = new GraphBuilder();
  const x = b.input('x', DataType.DOUBLE, ['N', T, 4]);
  const w = b.initializer('w', [4, 5], Float64Array.from({ length: 20 }, () => rand() * 2 - 1), DataType.DOUBLE);
  const bias = b.initializer('bias', [5], Float64Array.from({ length: 5 }, () => rand() - 0.5), DataType.DOUBLE);
  b.op('Add', [b.op('MatMul', [x, w]), bias], {}, ['logits']);
  b.output('logits', DataType.DOUBLE, ['N', T, 5]);
  return model(b.graph('per-position'));
}

/** The mean over positions of -sum_c target_c log softmax(logits)_c, label smoothing eps, in float64 on the host. */
function hostLoss(logits: Float64Array, labels: BigInt64Array, C: number, eps: number) {
  let sum = 0;
  for (let r = 0; r < labels.length; r++) {
    const row = logits.subarray(r * C, (r + 1) * C), max = Math.max(...row);
    const lse = Math.log(row.reduce((a, v) => a + Math.exp(v - max), 0)) + max;
    for (let c = 0; c < C; c++) sum -= ((c === Number(labels[r]) ? 1 - eps : 0) + eps / C) * (row[c] - lse);
  }
  return sum / labels.length;
}

describe(`cross-entropy with a class per position (logits [N, T, C]; seed ${seed})`, function () {
  this.timeout(60000);
  for (const T of [3, 'T'] as const) {
    it(`${T === 3 ? 'a static' : 'a dynamic'} T: labels [N, T]; the loss is the mean over the N T positions (label smoothing 0.1), the gradients match central differences`, async () => {
      const rand = rng(seed), fwd = perPosition(T, rand), n = 2, t = T === 3 ? 3 : 7;
      const x = Float64Array.from({ length: n * t * 4 }, () => rand() * 2 - 1);
      const labels = BigInt64Array.from({ length: n * t }, () => BigInt(Math.floor(rand() * 5)));
      const feeds = { x: { data: x, dims: [n, t, 4] }, labels: { data: labels, dims: [n, t] } };
      const out = await trainingOutputs(fwd, feeds, { logits: 'logits', labelSmoothing: 0.1 });
      expect(out.loss[0] as number).to.be.closeTo(hostLoss(out.logits as Float64Array, labels, 5, 0.1), 1e-12);
      expect(await checkGradients(fwd, feeds, { logits: 'logits', labelSmoothing: 0.1 }, 1e-6)).to.equal(20 + 5);
    });
  }
});

/** Token ids [N, T] -> embedding [16, 8] -> MatMul [8, 4] -> logits [N, T, 4]: a tagger. */
function tagger() {
  const b = new GraphBuilder(), rand = rng(3);
  const ids = b.input('ids', DataType.INT64, ['N', 'T']);
  const emb = uniformInitializer(b, 'emb', [16, 8], rand);
  const w = uniformInitializer(b, 'w', [8, 4], rand);
  b.op('MatMul', [b.op('Gather', [emb, ids], { axis: { i: 0 } }), w], {}, ['logits']);
  b.output('logits', DataType.FLOAT, ['N', 'T', 4]);
  return model(b.graph('tagger'));
}

describe('Trainer with a label per position (a token tagger, logits [N, T, 4])', function () {
  this.timeout(60000);
  /** Each token's tag is its id mod 4. */
  const task = (count: number, T: number, s: number): Dataset => {
    const rand = rng(s), inputs = BigInt64Array.from({ length: count * T }, () => BigInt(Math.floor(rand() * 16)));
    return { inputs, inputShape: [T], count, labels: BigInt64Array.from(inputs, (v) => v % 4n) };
  };

  it('learns the tags (Spartan at density 0.5), scores per position, and checks the labels per position', async () => {
    const t = await Trainer.create({ forward: tagger(), logits: 'logits', epochs: 5, batchSize: 25, trainCount: 500, seed: 2, sparsity: { method: 'spartan', density: 0.5, betaMax: 30 }, optimizer: { kind: 'adamw', lr: 0.05, weightDecay: 0 } });
    try {
      expect(t.classes).to.equal(4);
      let m;
      for (let e = 0; e < 5; e++) m = await t.trainEpoch(task(500, 6, 10 + e), e);
      expect(m!.trainAccuracy).to.be.within(0, 1);
      const r = await t.evaluate(task(200, 9, 1)); // another length
      expect(r.accuracy).to.be.at.least(0.95);
      expect(r.loss).to.be.below(0.5);
      const short = task(10, 6, 2);
      // T is the ids' (the logits' T is the input's symbol): a label short, or labels of another length, is a count error
      expect(await failure(t.trainEpoch({ ...short, labels: (short.labels as BigInt64Array).subarray(1) }, 5))).to.match(/^ERR_SPARTAN_LABELS: the training data has 10 examples of 6 positions, so 60 labels, but 59/);
      expect(await failure(t.trainEpoch({ ...short, labels: task(10, 5, 2).labels }, 5))).to.match(/^ERR_SPARTAN_LABELS: the training data has 10 examples of 6 positions, so 60 labels, but 50/);
      const bad = (short.labels as BigInt64Array).slice();
      bad[15] = 4n;
      expect(await failure(t.trainEpoch({ ...short, labels: bad }, 5))).to.match(/^ERR_SPARTAN_LABELS: the training data has label 4 \(example 2, position 3\) but the model's logits "logits" have 4 classes/);
    } finally {
      await t.release();
    }
  });
});
