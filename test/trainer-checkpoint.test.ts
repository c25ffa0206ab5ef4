// Trainer.state / load / saveCheckpoint / resume: a resumed run is the uninterrupted one, bit
// for bit; a bad state or file changes nothing.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as zlib from 'node:zlib';
import { expect } from 'chai';
import { head, loadMnist } from '../lib/data/dataset';
import { decodeModel } from '../lib/graph/model';
import { Trainer } from '../lib/train/trainer';
import type { TrainerState } from '../lib/train/checkpoint';
import { failure as rejection } from './helpers';

describe('Trainer checkpoints (mnist-bn: BatchNorm running statistics and seeded Dropout, Spartan, AdamW)', function () {
  this.timeout(120000);
  const forward = decodeModel(fs.readFileSync(path.join(__dirname, 'fixtures', 'torch', 'mnist-bn.onnx')));
  const data = head(loadMnist('train'), 512);
  const create = (method: 'spartan' | 'imp' = 'spartan') => Trainer.create({
    forward, logits: 'logits', epochs: 3, batchSize: 64, trainCount: data.count, seed: 4,
    sparsity: { method, density: 0.2, betaMax: 50 }, optimizer: { kind: 'adamw', lr: 1e-3 },
  });
  const bytes = (t: Trainer) => [...t.params, ...t.buffers].map((p) => Buffer.from(p.data.buffer, p.data.byteOffset, p.data.byteLength));
  const same = (a: Buffer[], b: Buffer[]) => a.length === b.length && a.every((x, i) => x.equals(b[i]));
  const failure = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      return `${(e as { code?: string }).code}: ${(e as Error).message}`;
    }
    return 'no error';
  };
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-ck-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a run resumed from the checkpoint after epoch 1 ends where the uninterrupted run ends, bit for bit', async () => {
    const straight = await create(), first = await create(), resumed = await create();
    try {
      for (let e = 0; e < 3; e++) await straight.trainEpoch(data, e);
      await first.trainEpoch(data, 0);
      const file = path.join(dir, 'deep', 'er', 'ck.bin'); // folders created
      first.saveCheckpoint(file, { epoch: 0, note: 'after one' });
      expect(resumed.resume(file)).to.deep.equal({ epoch: 0, note: 'after one' });
      expect(same(bytes(resumed), bytes(first))).to.equal(true);
      expect(resumed.sparsifier.stepCount).to.equal(first.sparsifier.stepCount);
      for (let e = 1; e < 3; e++) await resumed.trainEpoch(data, e);
      expect(same(bytes(resumed), bytes(straight))).to.equal(true);
      expect(same(bytes(resumed), bytes(first))).to.equal(false);
      // state() / load() without a file: the same
      const again = await create();
      again.load(straight.state());
      expect(same(bytes(again), bytes(straight))).to.equal(true);
      await again.release();
    } finally {
      await Promise.all([straight.release(), first.release(), resumed.release()]);
    }
  });

  it('a damaged, foreign or mismatched checkpoint, or one accept() refuses, is ERR_SPARTAN_STATE and changes nothing', async () => {
    const t = await create(), other = await create('imp');
    try {
      await t.trainEpoch(data, 0);
      const file = path.join(dir, 'ck.bin');
      t.saveCheckpoint(file, { epoch: 0 });
      const good = fs.readFileSync(file), decoded = v8.deserialize(good);
      await t.trainEpoch(data, 1); // the checkpoint is now one epoch behind
      const before = bytes(t), step = t.sparsifier.stepCount, optimizer = v8.serialize(t.optimizer.state());
      const shortParams = { ...decoded, params: [decoded.params[0].subarray(1), ...decoded.params.slice(1)] };
      // the file ends with "SCRC" and the CRC-32 of the rest; a weight's last mantissa bit
      // flipped still deserialises, to a checkpoint that would load
      expect(good.toString('latin1', good.length - 8, good.length - 4)).to.equal('SCRC');
      expect(good.readUInt32LE(good.length - 4)).to.equal(zlib.crc32(good.subarray(0, good.length - 8)));
      const p0: Float32Array = decoded.params[0], at = good.indexOf(Buffer.from(p0.buffer, p0.byteOffset, 64));
      expect(at).to.be.above(0);
      const flipped = Buffer.from(good);
      flipped[at + 4 * 5] ^= 0x01;
      const flippedParams: Float32Array[] = v8.deserialize(flipped).params;
      expect(flippedParams[0][5]).to.not.equal(p0[5]);
      expect(flippedParams[0][5]).to.be.closeTo(p0[5], 1e-6);
      const cases: [Buffer, RegExp][] = [
        [Buffer.from('not a checkpoint'), /^ERR_SPARTAN_STATE: .*ck\.bin is not a usable checkpoint \(.*\); remove it, or start without it$/],
        [good.subarray(0, good.length >> 1), /is not a usable checkpoint/],
        [flipped, /ck\.bin is not a usable checkpoint \(its checksum does not match its contents: the file was damaged after it was written\)/],
        // a byte cut off or added (v8 reads its value and ignores what follows: these loaded, unchecked, as files from before the trailer)
        [good.subarray(0, good.length - 1), /ck\.bin is not a usable checkpoint \(it does not end with its checksum: the file was cut short or had bytes added after it was written\)/],
        [Buffer.concat([good, Buffer.of(0x0a)]), /ck\.bin is not a usable checkpoint \(it does not end with its checksum: the file was cut short or had bytes added after it was written\)/],
        [Buffer.concat([good, good.subarray(good.length - 8)]), /ck\.bin is not a usable checkpoint \(its checksum does not match its contents/],
        [Buffer.concat([v8.serialize(decoded), Buffer.from('SCR')]), /ck\.bin is not a usable checkpoint \(it does not end with its checksum/],
        [v8.serialize({ ...decoded, format: 'something-else' }), /is not a usable checkpoint \(format something-else\)/],
        [v8.serialize({ ...decoded, version: 2 }), /ck\.bin is a version 2 checkpoint; this spartan reads version 1/],
        [v8.serialize(shortParams), /is not a usable checkpoint \(its parameters do not match the model's\)/],
        [v8.serialize({ ...decoded, buffers: [new Float32Array(3)] }), /its running statistics do not match the model's BatchNormalization layers/],
        // a NaN lambda (the solver never returns one), or one per layer under a global budget
        [v8.serialize({ ...decoded, sparsifier: { ...decoded.sparsifier, lambda: [NaN] } }), /cannot load sparsifier state: lambda must be null or 1 number \(one per budget group\), none NaN/],
        [v8.serialize({ ...decoded, sparsifier: { ...decoded.sparsifier, lambdaBefore: [1, 2] } }), /cannot load sparsifier state: lambda must be null or 1 number/],
        // the optimizer's state loads first, then the sparsifier's fails: the optimizer's is put back
        [v8.serialize({ ...decoded, sparsifier: other.sparsifier.state() }), /is not a usable checkpoint \(cannot load sparsifier state: method imp != spartan\)/],
      ];
      for (const [b, pattern] of cases) {
        fs.writeFileSync(file, b);
        expect(failure(() => t.resume(file))).to.match(pattern);
        expect(same(bytes(t), before)).to.equal(true);
        expect(t.sparsifier.stepCount).to.equal(step);
        expect(v8.serialize(t.optimizer.state()).equals(optimizer)).to.equal(true);
      }
      fs.writeFileSync(file, good);
      expect(failure(() => t.resume(file, (meta) => {
        if (meta.epoch !== 5) throw Object.assign(new RangeError('not the epoch I want'), { code: 'ERR_SPARTAN_STATE' });
      }))).to.equal('ERR_SPARTAN_STATE: not the epoch I want');
      expect(same(bytes(t), before)).to.equal(true);
      expect(failure(() => t.load({ ...t.state(), optimizer: other.optimizer.state(), sparsifier: {} as never }))).to.match(/^ERR_SPARTAN_STATE: cannot load trainer state: cannot load sparsifier state: not a sparsifier state/);
      expect(v8.serialize(t.optimizer.state()).equals(optimizer)).to.equal(true);
      expect(failure(() => t.saveCheckpoint(file, { params: 1 }))).to.match(/^ERR_SPARTAN_OPTION: checkpoint metadata may not use the key "params"/);
      expect(fs.readFileSync(file).equals(good)).to.equal(true); // not overwritten
      expect(t.resume(file)).to.deep.equal({ epoch: 0 }); // and the good one loads
      expect(t.sparsifier.stepCount).to.equal(step / 2);
      // a checkpoint from before the trailer (the object alone, ending where the file ends) loads, unchecked
      await t.trainEpoch(data, 1);
      fs.writeFileSync(file, v8.serialize(decoded));
      expect(t.resume(file)).to.deep.equal({ epoch: 0 });
      expect(t.sparsifier.stepCount).to.equal(step / 2);
    } finally {
      await Promise.all([t.release(), other.release()]);
    }
  });

  it('a state with a hole in an array, or at a step past 2^52, is refused before anything loads; a folder that cannot be made is ERR_SPARTAN_STATE, not a hang', async () => {
    const t = await create(), other = await create();
    try {
      await other.trainEpoch(data, 0);
      await other.trainEpoch(data, 1);
      await t.trainEpoch(data, 0);
      const before = v8.serialize(t.state());
      // every() skips holes: the hole passed the check, and load() failed with a TypeError after the optimizer, sparsifier and params[0] were written
      const holes: TrainerState[] = [{ ...other.state() }, { ...other.state() }, { ...other.state() }];
      delete holes[0].params[1];
      delete holes[1].buffers![0];
      const buffers = holes[2].optimizer.buffers as Record<string, Float32Array[]>;
      delete buffers[Object.keys(buffers)[1]][0];
      for (const st of holes) {
        expect(failure(() => t.load(st))).to.match(/^ERR_SPARTAN_STATE: cannot load trainer state: /);
        expect(v8.serialize(t.state()).equals(before)).to.equal(true);
      }
      // the counters stall at 2^53 (x + 1 === x), and the Trainer's own state() was then refused by load()
      for (const step of [2 ** 53 - 2, 2 ** 52 + 1]) {
        const st = other.state();
        st.sparsifier.step = st.optimizer.step = step;
        expect(failure(() => t.load(st))).to.match(/^ERR_SPARTAN_STATE: cannot load trainer state: its sparsifier step \d+ is past 2\^52/);
      }
      // and no epoch takes it past 2^52: whatever state() gives, load() takes
      const st = other.state();
      st.sparsifier.step = st.optimizer.step = 2 ** 52 - 7; // an epoch is 8 steps
      t.load(st);
      expect(await rejection(t.trainEpoch(data, 2))).to.match(/^ERR_SPARTAN_STATE: trainEpoch: this epoch would take the step counter to 4503599627370497, past 2\^52/);
      st.sparsifier.step = st.optimizer.step = 2 ** 52 - 8;
      t.load(st);
      await t.trainEpoch(data, 2);
      expect(t.sparsifier.stepCount).to.equal(2 ** 52);
      t.load(t.state());
      // fs.mkdirSync(recursive) spun forever at 100 % CPU on a folder procfs will not make
      if (fs.existsSync('/proc/self')) expect(failure(() => t.saveCheckpoint('/proc/nope/ck.bin'))).to.match(/^ERR_SPARTAN_STATE: cannot write the checkpoint \/proc\/nope\/ck\.bin: ENOENT/);
    } finally {
      await Promise.all([t.release(), other.release()]);
    }
  });

  it('metadata v8 cannot serialise is ERR_SPARTAN_OPTION naming its key, and the previous checkpoint stays as it was', async () => {
    const t = await create();
    try {
      const file = path.join(dir, 'ck.bin');
      t.saveCheckpoint(file, { epoch: 0 });
      const good = fs.readFileSync(file);
      for (const [meta, key] of [[{ epoch: 1, onDone: () => 1 }, 'onDone'], [{ epoch: 1, tag: Symbol('run') }, 'tag']] as const) {
        expect(failure(() => t.saveCheckpoint(file, meta))).to.match(new RegExp(`^ERR_SPARTAN_OPTION: checkpoint metadata "${key}" cannot be saved: .*could not be cloned`));
        expect(fs.readFileSync(file).equals(good)).to.equal(true);
        expect(fs.readdirSync(dir)).to.deep.equal(['ck.bin']);
      }
      // metadata that cannot be read (a throwing getter, a Proxy whose trap throws): coded, nothing written
      const getter = Object.defineProperty({ epoch: 1 }, 'tag', { enumerable: true, get: () => { throw new Error('no tag'); } });
      const trap = new Proxy({ epoch: 1 }, { ownKeys: () => { throw new Error('no keys'); } });
      for (const [meta, why] of [[getter, 'no tag'], [trap, 'no keys']] as const) {
        expect(failure(() => t.saveCheckpoint(file, meta))).to.equal(`ERR_SPARTAN_OPTION: checkpoint metadata cannot be read: ${why}`);
        expect(fs.readFileSync(file).equals(good)).to.equal(true);
      }
      // a folder where the file should be, a path that is not a string, an accept that is not a function
      expect(failure(() => t.saveCheckpoint(dir, { epoch: 1 }))).to.match(/^ERR_SPARTAN_STATE: cannot write the checkpoint .*: EISDIR.*; the previous file, if any, is unchanged$/);
      expect(fs.readdirSync(path.dirname(dir)).filter((f) => f.startsWith(`.${path.basename(dir)}.`)), 'its temporary file, beside the path, is gone').to.deep.equal([]);
      expect(failure(() => t.saveCheckpoint(5 as never))).to.match(/^ERR_SPARTAN_TYPE: the checkpoint path must be a non-empty string/);
      expect(failure(() => t.resume(file, 'x' as never))).to.match(/^ERR_SPARTAN_TYPE: accept must be a function/);
      expect(fs.readdirSync(dir)).to.deep.equal(['ck.bin']);
    } finally {
      await t.release();
    }
  });
});
