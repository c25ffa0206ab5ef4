// The Trainer on a model of two data inputs: token ids and their padding mask (bool), as a
// tokenizer gives them, exported from PyTorch (masked-bag.onnx: embedding, mean over the
// unmasked positions, linear head).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import { decodeModel, GraphRunner, Trainer, type Dataset } from '../lib/index';
import { batches, range } from '../lib/data/dataset';
import { rng } from './reference';
import { countCorrect } from '../lib/train/trainer';
import { failure } from './helpers';

const fixture = () => decodeModel(fs.readFileSync(path.join(__dirname, 'fixtures', 'torch', 'masked-bag.onnx')));

/**
 * Sequences of T ids, the first L (1 to 3) of them real: tokens 0-7 for class 0, 8-15 for
 * class 1. The padding holds tokens of the other class and outnumbers the real ones, so a
 * model that ignored the mask would answer the padding's class.
 */
function maskedTask(count: number, T: number, seed: number): Dataset {
  const rand = rng(seed);
  const ids = new BigInt64Array(count * T), mask = new Uint8Array(count * T), labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const label = rand() < 0.5 ? 0 : 1, L = 1 + Math.floor(rand() * 3);
    labels[i] = label;
    for (let t = 0; t < T; t++) {
      const real = t < L, cls = real ? label : 1 - label;
      ids[i * T + t] = BigInt(cls * 8 + Math.floor(rand() * 8));
      mask[i * T + t] = real ? 1 : 0;
    }
  }
  return { inputs: ids, inputShape: [T], count, labels, otherInputs: { mask: { values: mask, shape: [T] } } };
}

const opts = (method: 'dense' | 'spartan', input?: string) => ({
  forward: fixture(), logits: 'logits', epochs: 4, batchSize: 32, trainCount: 1000, seed: 2, ...(input ? { input } : {}),
  sparsity: method === 'dense' ? { method, density: 1 } : { method, density: 0.5, betaMax: 30 },
  optimizer: { kind: 'adamw' as const, lr: 0.05, weightDecay: 0 },
});

describe('Trainer on a model of two inputs (token ids and a bool padding mask, a PyTorch export)', function () {
  this.timeout(120000);
  const train = maskedTask(1000, 8, 1), test = maskedTask(400, 8, 2);

  for (const method of ['dense', 'spartan'] as const) {
    it(`${method}: learns the task through the mask (>= 0.95), on another sequence length too, and the exported model scores the same`, async () => {
      const t = await Trainer.create(opts(method));
      try {
        for (let e = 0; e < 4; e++) await t.trainEpoch(train, e);
        const after = await t.evaluate(test);
        expect(after.accuracy).to.be.at.least(0.95);
        expect((await t.evaluate(maskedTask(400, 12, 3))).accuracy).to.be.at.least(0.95); // T is dynamic in both inputs
        // the mask is fed, not ignored: with every position unmasked the padding's class wins
        const unmasked = { ...test, otherInputs: { mask: { values: new Uint8Array(400 * 8).fill(1), shape: [8] } } };
        expect((await t.evaluate(unmasked)).accuracy).to.be.below(0.1);
        if (method === 'spartan') expect(t.sparsifier.stats().density.global).to.be.closeTo(0.5, 0.01);
        const runner = await GraphRunner.create(t.exportSparse());
        let correct = 0;
        for (const b of batches(test, 100, null))
          correct += countCorrect((await runner.run({ ids: { data: b.x, dims: [b.size, 8] }, mask: { data: b.others!.mask, dims: [b.size, 8], type: 'bool' } })).logits as Float32Array, b.labels!);
        await runner.release();
        expect(correct / test.count).to.equal(after.accuracy);
      } finally {
        await t.release();
      }
    });
  }

  it('takes either input as `input`: the mask as `inputs` and the ids in otherInputs train bit for bit alike', async () => {
    const swapped: Dataset = { ...train, inputs: train.otherInputs!.mask.values, otherInputs: { ids: { values: train.inputs, shape: [8] } } };
    const losses: number[][] = [];
    for (const [input, data] of [[undefined, train], ['mask', swapped]] as const) {
      const t = await Trainer.create(opts('spartan', input));
      try {
        const run: number[] = [], accuracy: number[] = [];
        const m = await t.trainEpoch(data, 0, (_, loss, acc) => (run.push(loss), accuracy.push(acc!)));
        losses.push(run);
        // onBatch's accuracy is the epoch's so far: its last value is the epoch's, each a count of correct examples over those seen
        expect(accuracy[accuracy.length - 1]).to.equal(m.trainAccuracy);
        let correct = 0;
        accuracy.forEach((a, i) => {
          const seen = Math.min((i + 1) * 32, 1000), now = a * seen;
          expect(Math.abs(now - Math.round(now)), `step ${i + 1}: a count of correct examples`).to.be.below(1e-9);
          expect(Math.round(now) - correct, `step ${i + 1}: at most the batch more`).to.be.within(0, seen - i * 32);
          correct = Math.round(now);
        });
      } finally {
        await t.release();
      }
    }
    expect(losses[0].length).to.equal(Math.ceil(1000 / 32));
    expect(losses[1]).to.deep.equal(losses[0]);
  });

  it('refuses a dataset that does not fit the inputs before any step: missing, unknown, wrong type, short, a shared dim given two values, or an id past the embedding', async () => {
    const t = await Trainer.create(opts('spartan'));
    try {
      const before = t.params.map((p) => p.data.slice());
      const mask = train.otherInputs!.mask;
      expect(await failure(t.trainEpoch({ ...train, otherInputs: undefined }, 0))).to.match(/^ERR_SPARTAN_DATASET: the training data has no examples for the model's input "mask": give them in otherInputs\["mask"\]/);
      expect(await failure(t.trainEpoch({ ...train, otherInputs: { mask, attention: mask } }, 0))).to.match(/^ERR_SPARTAN_DATASET: the training data: otherInputs has "attention", which is not an input of the model \(its other inputs: mask\)/);
      expect(await failure(t.trainEpoch({ ...train, otherInputs: { mask, ids: mask } }, 0))).to.match(/otherInputs has "ids", which is not another input of the model/);
      expect(await failure(t.trainEpoch({ ...train, otherInputs: { mask: { values: Int32Array.from(mask.values as Uint8Array), shape: [8] } } }, 0)))
        .to.match(/^ERR_SPARTAN_TYPE: the training data: the model's input "mask" takes bool, so otherInputs\["mask"\]\.values must be a Uint8Array \(got Int32Array\)/);
      expect(await failure(t.evaluate({ ...test, otherInputs: { mask: { values: mask.values.subarray(1), shape: [8] } } })))
        .to.match(/^ERR_SPARTAN_SHAPE: the evaluation data: 400 examples of shape \[8\] need 3200 values, but otherInputs\["mask"\]\.values has 7999/);
      const short = maskedTask(10, 6, 4);
      expect(await failure(t.trainEpoch({ ...maskedTask(10, 8, 4), otherInputs: short.otherInputs }, 0)))
        .to.match(/^ERR_SPARTAN_SHAPE: the training data: the model's inputs "ids" and "mask" share the dim T, but the dataset gives them 8 and 6/);
      expect(await failure(t.trainEpoch({ ...train, otherInputs: { mask: { values: mask.values, shape: [0] } } }, 0))).to.match(/^ERR_SPARTAN_SHAPE: the training data: otherInputs\["mask"\]\.shape must be a list of positive integers/);
      expect(t.sparsifier.stepCount).to.equal(0);
      t.params.forEach((p, i) => expect(Buffer.from(p.data.buffer).equals(Buffer.from(before[i].buffer)), p.name).to.equal(true));
    } finally {
      await t.release();
    }
    // ids fed through otherInputs are checked against their embedding too
    const swapped = await Trainer.create(opts('spartan', 'mask'));
    try {
      const ids = (train.inputs as BigInt64Array).slice();
      ids[13] = 16n;
      expect(await failure(swapped.trainEpoch({ ...train, inputs: train.otherInputs!.mask.values, otherInputs: { ids: { values: ids, shape: [8] } } }, 0)))
        .to.match(/^ERR_SPARTAN_DATASET: the training data: otherInputs\["ids"\]\.values\[13\] \(example 1\) is 16, but the model's input "ids" indexes the 16 rows of "[^"]+"/);
      expect(swapped.sparsifier.stepCount).to.equal(0);
    } finally {
      await swapped.release();
    }
  });

  it('refuses at creation a second input of a fixed batch size or of a type it cannot feed, and an input name that is not a data input', async () => {
    const withMask = (shape: (string | number)[], elemType = 9) => {
      const m = fixture();
      m.graph.inputs = m.graph.inputs.map((v) => (v.name === 'mask' ? { ...v, shape, elemType } : v));
      return m;
    };
    const create = (forward: ReturnType<typeof fixture>, input?: string) => failure(Trainer.create({ ...opts('dense', input), forward }).then((t) => t.release()));
    expect(await create(withMask([32, 'T']))).to.match(/^ERR_SPARTAN_SHAPE: the model's input "mask" has a fixed batch size of 32/);
    expect(await create(withMask(['N', 'T'], 10))).to.match(/^ERR_SPARTAN_TYPE: the Trainer trains float32 models on float32, integer \(int64, int32\) or bool inputs, but the input "mask" has ONNX type 10/);
    expect(await create(fixture(), 'emb.weight')).to.match(/^ERR_SPARTAN_OPTION: the model has no input named "emb.weight" \(inputs: ids, mask\)/);
  });

  it('batches and ranges carry the other inputs with their examples, in the shuffled order', () => {
    const count = 37, x = Float32Array.from({ length: count * 2 }, (_, i) => i);
    const ids = BigInt64Array.from({ length: count * 3 }, (_, i) => BigInt(Math.floor(i / 3) * 10 + (i % 3)));
    const data: Dataset = { inputs: x, inputShape: [2], count, labels: Uint8Array.from({ length: count }, (_, i) => i % 5), otherInputs: { ids: { values: ids, shape: [3] } } };
    for (const reuse of [false, true]) {
      let seen = 0;
      for (const b of batches(data, 8, 11, reuse)) {
        for (let j = 0; j < b.size; j++) {
          const example = (b.x as Float32Array)[j * 2] / 2;
          expect([...(b.others!.ids as BigInt64Array).subarray(j * 3, j * 3 + 3)]).to.deep.equal([0n, 1n, 2n].map((k) => BigInt(example * 10) + k));
          expect(Number(b.labels![j])).to.equal(example % 5);
        }
        seen += b.size;
      }
      expect(seen).to.equal(count);
    }
    const part = range(data, 10, 12);
    expect([...(part.otherInputs!.ids.values as BigInt64Array)]).to.deep.equal([100n, 101n, 102n, 110n, 111n, 112n]);
  });
});
