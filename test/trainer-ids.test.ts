// Token ids against the table they index: the Trainer refuses an id that is not a row of the
// embedding before any step (onnxruntime would fail mid-epoch on one past the end, and ONNX's
// Gather quietly wraps a negative one to the table's end), and which inputs it can bound.
import { expect } from 'chai';
import { GraphBuilder, Trainer, type Dataset } from '../lib/index';
import { model } from '../lib/graph/builder';
import { DataType } from '../lib/graph/schema';
import { indexBounds } from '../lib/train/indexBounds';
import { freshSeed, rng } from './reference';
import { failure, uniformInitializer } from './helpers';


/**
 * ids [N, T] (int64, or int32 cast to int64) → `shift` added (0: none) → embedding of
 * `rows` × 4 → mean over T → Gemm → 3 classes.
 */
function bag(opts: { rows: number; int32?: boolean; shift?: number; input?: string }) {
  const b = new GraphBuilder(), rand = rng(11);
  let ids = b.input(opts.input ?? 'ids', opts.int32 ? DataType.INT32 : DataType.INT64, ['N', 'T']);
  if (opts.int32) ids = b.op('Cast', [ids], { to: { i: DataType.INT64 } });
  if (opts.shift) ids = b.op('Add', [ids, b.int64s([opts.shift])]);
  const emb = uniformInitializer(b, 'emb', [opts.rows, 4], rand);
  const pooled = b.op('ReduceMean', [b.op('Gather', [emb, ids], { axis: { i: 0 } }, ['embedded'])], { axes: { ints: [1] }, keepdims: { i: 0 } });
  b.op('Gemm', [pooled, uniformInitializer(b, 'w', [3, 4], rand), b.initializer('bias', [3], new Float32Array(3))], { transB: { i: 1 } }, ['logits']);
  b.output('logits', DataType.FLOAT, ['N', 3]);
  return model(b.graph('bag'));
}

/** `count` sequences of 5 ids in [0, top); the class is the first id mod 3. */
function ids(count: number, top: number, seed: number, int32 = false): Dataset {
  const rand = rng(seed), T = 5;
  const values = Array.from({ length: count * T }, () => Math.floor(rand() * top));
  const labels = Uint8Array.from({ length: count }, (_, i) => values[i * T] % 3);
  return { inputs: int32 ? Int32Array.from(values) : BigInt64Array.from(values, BigInt), inputShape: [T], count, labels };
}

const create = (forward: ReturnType<typeof bag>) =>
  Trainer.create({ forward, logits: 'logits', epochs: 1, batchSize: 16, trainCount: 64, seed: 1, sparsity: { method: 'spartan', density: 0.5, betaMax: 30 }, optimizer: { kind: 'sgd', lr: 0.1 } });

describe('Trainer: token ids must be rows of their embedding', function () {
  this.timeout(60000);

  for (const int32 of [false, true]) {
    it(`refuses an id past the table and a negative one before any step, with nothing changed (${int32 ? 'int32 ids through a Cast' : 'int64 ids'})`, async () => {
      const t = await create(bag({ rows: 10, int32 }));
      try {
        const before = t.params.map((p) => p.data.slice());
        const seed = freshSeed();
        for (const [value, verb] of [[10, 'trainEpoch'], [-1, 'evaluate'], [1e6, 'accuracy']] as const) {
          const data = ids(64, 10, seed, int32);
          const at = Math.floor(rng(seed + 1)() * data.inputs.length);
          data.inputs[at] = int32 ? value : BigInt(value);
          const run = verb === 'trainEpoch' ? t.trainEpoch(data, 0) : verb === 'evaluate' ? t.evaluate(data) : t.accuracy(data);
          const what = verb === 'trainEpoch' ? 'training' : 'evaluation';
          expect(await failure(run), `seed ${seed}`).to.equal(`ERR_SPARTAN_DATASET: the ${what} data: inputs[${at}] (example ${Math.floor(at / 5)}) is ${value}, ` +
            `but the model's input "ids" indexes the 10 rows of "emb" (Gather "embedded"), so its values must be in [0, 10)`);
        }
        expect(t.sparsifier.stepCount).to.equal(0);
        t.params.forEach((p, i) => expect(Buffer.from(p.data.buffer).equals(Buffer.from(before[i].buffer)), p.name).to.equal(true));
        // every row, 0 and 9 included, is a valid id
        const edges = ids(64, 10, seed, int32);
        edges.inputs[0] = int32 ? 0 : 0n;
        edges.inputs[1] = int32 ? 9 : 9n;
        expect((await t.trainEpoch(edges, 0)).loss).to.be.a('number');
      } finally {
        await t.release();
      }
    });
  }

  it('leaves ids it cannot follow to onnxruntime (an Add before the Gather): ERR_SPARTAN_RUNTIME, with nothing changed', async () => {
    const t = await create(bag({ rows: 10, shift: 1 }));
    try {
      const before = t.params.map((p) => p.data.slice());
      const data = ids(64, 9, 3); // 0-8, shifted to 1-9
      data.inputs[7] = 9n; // shifted to 10: past the table
      expect(await failure(t.trainEpoch(data, 0))).to.match(/^ERR_SPARTAN_RUNTIME: onnxruntime failed to run the training graph at step 0: /);
      expect(t.sparsifier.stepCount).to.equal(0);
      t.params.forEach((p, i) => expect(Buffer.from(p.data.buffer).equals(Buffer.from(before[i].buffer)), p.name).to.equal(true));
    } finally {
      await t.release();
    }
  });
});

describe('Trainer: a model with a tensor named "labels"', () => {
  it('names the training graph\'s labels input otherwise ("labels_1") and trains', async () => {
    const t = await create(bag({ rows: 10, input: 'labels' }));
    try {
      const first = await t.trainEpoch(ids(64, 10, 4), 0);
      expect(first.loss).to.be.a('number').and.satisfy(Number.isFinite);
      expect((await t.evaluate(ids(64, 10, 5))).accuracy).to.be.a('number');
    } finally {
      await t.release();
    }
  });
});

describe('indexBounds: which inputs index which table', () => {
  it('follows value-preserving ops, reads the Gather axis, keeps the smallest table, and ignores an input used as the table', () => {
    const b = new GraphBuilder(), rand = rng(1);
    const a = b.input('a', DataType.INT64, ['N', 'T']);
    const c = b.input('c', DataType.INT64, ['N']);
    const d = b.input('d', DataType.INT64, ['N', 2]);
    const big = uniformInitializer(b, 'big', [50, 4], rand), small = uniformInitializer(b, 'small', [7, 4], rand), wide = uniformInitializer(b, 'wide', [4, 30], rand);
    const flat = b.op('Reshape', [b.op('Unsqueeze', [a, b.int64s([2])]), b.int64s([-1])]);
    b.op('Gather', [big, flat], { axis: { i: 0 } }, ['g1']);
    b.op('Gather', [small, b.op('Identity', [a])], {}, ['g2']); // axis 0 by default
    b.op('Gather', [wide, c], { axis: { i: -1 } }, ['g3']); // columns: 30
    b.op('Gather', [d, b.int64s([0])], { axis: { i: 1 } }, ['g4']); // d is the data here, not ids
    for (const o of ['g1', 'g2', 'g3', 'g4']) b.output(o, DataType.FLOAT, []);
    const m = model(b.graph('bounds'));
    const bounds = indexBounds(m, m.graph.inputs);
    expect(Object.fromEntries(bounds)).to.deep.equal({
      a: { rows: 7, gather: 'g2', table: 'small' },
      c: { rows: 30, gather: 'g3', table: 'wide' },
    });
  });
});
