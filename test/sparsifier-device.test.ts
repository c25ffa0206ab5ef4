// The Sparsifier on Tensors: its masks and buffers live where the parameters do, and every
// op runs there. On cpu Tensors it must equal the Float32Array sparsifier bit for bit (the
// same kernels), which tests all of the Tensor path but the CUDA kernels themselves; on CUDA
// Tensors (where a GPU is present) it must keep exactly k and track the CPU run closely.
import { expect } from 'chai';
import * as spartan from '../lib/index';
import type { SparsifierOptions } from '../lib/index';
import { native, type DeviceBuffer } from '../lib/native';
import { expectCode } from './helpers';
import { makeParams } from './fixtures/model';
import { freshSeed, normal, rng } from './reference';

type Options = Omit<SparsifierOptions, 'params' | 'totalSteps'>;
const T = 30;
const configs: [string, Options, boolean][] = [
  ['spartan, global budget', { method: 'spartan', density: 0.2, betaMax: 20 }, false],
  ['spartan, global budget, 10x10 blocks', { method: 'spartan', density: 0.3, betaMax: 20 }, true],
  ['spartan, erk budget, exact gradient', { method: 'spartan', density: 0.2, budget: 'erk', straightThrough: false }, false],
  ['spartan, uniform budget, blocks, rounded freeze', { method: 'spartan', density: 0.3, budget: 'uniform', roundFrozen: true }, true],
  ['imp, interval 3, rewind at step 5', { method: 'imp', density: 0.2, imp: { interval: 3, rewindStep: 5 } }, false],
  ['topkast, backward set +50 %, exploration penalty', { method: 'topkast', density: 0.2, topkast: { backwardExtra: 0.5, explorationPenalty: 1e-3 } }, false],
  ['topkast, erk budget, blocks', { method: 'topkast', density: 0.3, budget: 'erk' }, true],
  ['dense', { method: 'dense' }, false],
];

const bytes = (a: Float32Array | Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** dL/dW of f(W) = sum(a W) + sum(W^2) / 2, from host values of W. */
function quadratic(W: Record<string, Float32Array>, a: Record<string, Float32Array>) {
  return Object.fromEntries(Object.entries(W).map(([k, w]) => [k, Float32Array.from(w, (x, i) => a[k][i] + x)]));
}

/** A Float32Array run and a run on `device` Tensors of one configuration, from the same start. */
function twins(device: spartan.Device, options: Options, block: boolean, seed: number) {
  const hostParams = makeParams(seed, { block });
  const devParams = hostParams.map((p) => ({ ...p, data: spartan.tensor(p.data, { device }) }));
  const r = rng(seed + 1);
  const a = Object.fromEntries(hostParams.map((p) => [p.name, Float32Array.from(p.data, () => normal(r))]));
  const sgd = { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4 };
  const host = new spartan.Sparsifier({ ...options, params: hostParams, totalSteps: T });
  const dev = new spartan.Sparsifier({ ...options, params: devParams, totalSteps: T });
  return {
    host, dev, hostParams, devParams, a,
    hostOpt: new spartan.SGD(hostParams, sgd),
    devOpt: new spartan.SGD(devParams, sgd),
    /** One training step of each run; returns what each fed forward and the gradients they gave the optimizer. */
    step() {
      const wh = host.weights(), wd = dev.weights();
      const gh = host.backward(quadratic(wh, a));
      const gdHost = quadratic(Object.fromEntries(Object.entries(wd).map(([k, t]) => [k, t.toFloat32Array()])), a);
      const gd = dev.backward(Object.fromEntries(Object.entries(gdHost).map(([k, g]) => [k, spartan.tensor(g, { device })])));
      const out = { wh, wd, gh, gd };
      this.hostOpt.step(gh, host.checkedSumSquares);
      this.devOpt.step(gd);
      host.step();
      dev.step();
      return out;
    },
  };
}

describe('Sparsifier on Tensors', () => {
  for (const [name, options, block] of configs) {
    it(`cpu Tensors equal Float32Arrays bit for bit, step by step, through freeze, finalize and a state() round trip: ${name}`, () => {
      const seed = freshSeed();
      const t = twins('cpu', options, block, seed);
      expect(t.dev.device).to.equal('cpu');
      let resumed: { sp: spartan.Sparsifier; opt: spartan.SGD; params: ReturnType<typeof makeParams> } | undefined;
      for (let s = 0; s < T; s++) {
        const { wh, wd, gh, gd } = t.step();
        for (const p of t.hostParams) {
          expect(wd[p.name]).to.be.instanceOf(spartan.Tensor);
          expect(bytes(wd[p.name].toFloat32Array()).equals(bytes(wh[p.name])), `weights of ${p.name}, step ${s} (seed ${seed})`).to.equal(true);
          expect(bytes(gd[p.name].toFloat32Array()).equals(bytes(gh[p.name])), `gradient of ${p.name}, step ${s} (seed ${seed})`).to.equal(true);
        }
        expect(t.dev.stats(), `stats after step ${s}`).to.deep.equal(t.host.stats());
        if (s === 12) {
          // the Tensor run's checkpoint resumes a Float32Array run: the state is host data
          const params = makeParams(seed, { block });
          params.forEach((p, i) => p.data.set(t.devParams[i].data.toFloat32Array()));
          const sp = new spartan.Sparsifier({ ...options, params, totalSteps: T });
          sp.load(t.dev.state());
          const opt = new spartan.SGD(params, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
          opt.load(t.devOpt.state());
          resumed = { sp, opt, params };
        } else if (resumed) {
          const g = resumed.sp.backward(quadratic(resumed.sp.weights(), t.a));
          resumed.opt.step(g, resumed.sp.checkedSumSquares);
          resumed.sp.step();
        }
      }
      if (options.imp?.rewindStep !== undefined) {
        t.host.rewind();
        t.dev.rewind();
        resumed!.sp.rewind();
      }
      for (const sp of [t.host, t.dev, resumed!.sp]) sp.finalize();
      t.hostParams.forEach((p, i) => {
        expect(bytes(t.devParams[i].data.toFloat32Array()).equals(bytes(p.data)), `final theta of ${p.name}`).to.equal(true);
        expect(bytes(resumed!.params[i].data).equals(bytes(p.data)), `final theta of ${p.name}, resumed from the Tensor run's state`).to.equal(true);
      });
      expect(t.dev.stats()).to.deep.equal(t.host.stats());
      expect(t.dev.state()).to.deep.equal(t.host.state());
    });
  }

  it('bad input: mixed devices, the wrong kind of gradient, disposed tensors; nothing changes', () => {
    const host = makeParams(3);
    const devParams = host.map((p) => ({ ...p, data: spartan.tensor(p.data) }));
    expectCode(() => new spartan.Sparsifier({ params: [host[0], devParams[1]] as never, method: 'spartan', density: 0.2, totalSteps: 10 }), TypeError, 'ERR_SPARTAN_DEVICE');
    expectCode(() => new spartan.Sparsifier({ params: [{ ...host[0], data: spartan.tensor(new Uint8Array(host[0].data.length)) }], method: 'imp', density: 0.2, totalSteps: 10 }), TypeError, 'ERR_SPARTAN_TYPE');
    const gone = spartan.tensor(host[0].data);
    gone.dispose();
    expectCode(() => new spartan.Sparsifier({ params: [{ ...host[0], data: gone }], method: 'imp', density: 0.2, totalSteps: 10 }), TypeError, 'ERR_SPARTAN_DISPOSED');
    expectCode(() => new spartan.Sparsifier({ params: devParams, method: 'spartan', density: 2, totalSteps: 10 }), RangeError, 'ERR_SPARTAN_OPTION');

    const sp = new spartan.Sparsifier({ params: devParams, method: 'spartan', density: 0.2, totalSteps: 10 });
    const grads = () => Object.fromEntries(devParams.map((p) => [p.name, spartan.tensor(new Float32Array(p.data.size).fill(0.5))]));
    sp.backward(grads());
    sp.step();
    const before = sp.state();
    const theta = devParams.map((p) => p.data.toFloat32Array());
    const bad: [string, (g: Record<string, spartan.Tensor>) => unknown, ErrorConstructor, string][] = [
      ['a Float32Array', (g) => { g['fc2.weight'] = new Float32Array(800) as never; }, TypeError, 'ERR_SPARTAN_DEVICE'],
      ['a uint8 Tensor', (g) => { g['fc2.weight'] = spartan.tensor(new Uint8Array(800)); }, TypeError, 'ERR_SPARTAN_TYPE'],
      ['a short Tensor', (g) => { g['fc2.weight'] = spartan.tensor(new Float32Array(799)); }, RangeError, 'ERR_SPARTAN_LENGTH'],
      ['a disposed Tensor', (g) => { g['fc2.weight'].dispose(); }, TypeError, 'ERR_SPARTAN_DISPOSED'],
      ['a NaN', (g) => { g['conv.weight'] = spartan.tensor(new Float32Array(162).fill(NaN)); }, RangeError, 'ERR_SPARTAN_NON_FINITE'],
    ];
    for (const [what, spoil, type, code] of bad) {
      const g = grads();
      spoil(g);
      expectCode(() => sp.backward(g), type, code);
      expect(sp.state(), `state after ${what}`).to.deep.equal(before);
      devParams.forEach((p, i) => expect(bytes(p.data.toFloat32Array()).equals(bytes(theta[i]))).to.equal(true));
    }
    // dispose() frees the sparsifier's buffers, never the caller's parameters
    sp.dispose();
    sp.dispose();
    expect(devParams.every((p) => !p.data.disposed)).to.equal(true);
    expectCode(() => sp.weights(), TypeError, 'ERR_SPARTAN_DISPOSED');
    expectCode(() => sp.step(), TypeError, 'ERR_SPARTAN_DISPOSED');
  });

  it('a NaN in theta: step() throws ERR_SPARTAN_NON_FINITE and the step does not happen (host arrays and Tensors)', () => {
    for (const asTensor of [false, true]) {
      const host = makeParams(4);
      const params = asTensor ? host.map((p) => ({ ...p, data: spartan.tensor(p.data) })) : host;
      const sp = new spartan.Sparsifier<Float32Array | spartan.Tensor>({ params, method: 'imp', density: 0.2, totalSteps: 20, imp: { rewindStep: 3 } });
      sp.step();
      sp.step();
      const before = sp.state(), stats = sp.stats();
      const theta = asTensor ? (params[2].data as spartan.Tensor).handle as Float32Array : host[2].data;
      theta[17] = NaN;
      expectCode(() => sp.step(), RangeError, 'ERR_SPARTAN_NON_FINITE');
      expect(sp.state(), `state (${asTensor ? 'Tensors' : 'arrays'})`).to.deep.equal(before);
      expect(sp.stats()).to.deep.equal(stats);
      theta[17] = 0.25; // fixed: the same step now runs (and takes the rewind snapshot at step 3)
      sp.step();
      expect(sp.stats().step).to.equal(3);
      expect(sp.state().rewind).to.not.equal(null);
    }
  });

  const info = spartan.backend();
  it(`CUDA Tensors: each step, from the CPU run's exact state, matches the CPU step; exactly k kept; states move both ways${info.cuda ? '' : ` [skipped: ${info.reason}]`}`, function () {
    if (!info.cuda) {
      console.log(`      CUDA sparsifier test skipped: ${info.reason}`);
      this.skip();
    }
    const relDiff = (a: Float32Array, b: Float32Array) => {
      let d = 0, n = 0;
      for (let i = 0; i < a.length; i++) { d += (a[i] - b[i]) ** 2; n += b[i] ** 2; }
      return Math.sqrt(d) / (Math.sqrt(n) + 1e-30);
    };
    for (const [name, options, block] of configs) {
      const seed = freshSeed();
      const t = twins('cuda', options, block, seed);
      expect(t.dev.device).to.equal('cuda');
      for (let s = 0; s < T; s++) {
        // the device run starts every step exactly where the CPU run is (theta, masks, optimizer),
        // so each comparison sees one step's rounding, never drift built up over many
        t.devParams.forEach((p, i) => native.cudaUpload(p.data.handle as DeviceBuffer, t.hostParams[i].data, false));
        t.dev.load(t.host.state());
        t.devOpt.load(t.hostOpt.state());
        const what = `${name}, step ${s} (seed ${seed})`;
        const { wh, wd, gh, gd } = t.step();
        for (const p of t.hostParams) {
          expect(relDiff(wd[p.name].toFloat32Array(), wh[p.name]), `${what}: weights of ${p.name}`).to.be.at.most(1e-6); // same theta, same masks
          expect(relDiff(gd[p.name].toFloat32Array(), gh[p.name]), `${what}: gradient of ${p.name}`).to.be.at.most(1e-5); // reductions in another order
        }
        const a = t.dev.state(), b = t.host.state();
        let flips = 0;
        a.hard.forEach((h, i) => h.forEach((x, j) => (flips += x === b.hard[i][j] ? 0 : 1)));
        // the device's block sums may round a near-tie the other way; nothing else may differ
        expect(flips, `${what}: hard masks`).to.be.at.most(2);
        if (flips === 0) expect(t.dev.stats().density, `${what}: kept counts`).to.deep.equal(t.host.stats().density);
        a.masks.forEach((m, i) => m.forEach((x, j) => {
          if (a.hard[i][j] === b.hard[i][j] && Math.abs(x - b.masks[i][j]) > 1e-4) expect.fail(`${what}: soft mask ${i}[${j}] ${x} vs ${b.masks[i][j]}`);
        }));
        const la = t.dev.stats().lambda, lb = t.host.stats().lambda;
        if (typeof lb === 'number' && Number.isFinite(lb)) expect(la as number, `${what}: lambda`).to.be.closeTo(lb, 1e-4 * (1 + Math.abs(lb)));
      }
      // finalize from the same state: exactly sparse, the same theta
      t.devParams.forEach((p, i) => native.cudaUpload(p.data.handle as DeviceBuffer, t.hostParams[i].data, false));
      t.dev.load(t.host.state());
      if (options.imp?.rewindStep !== undefined) { t.host.rewind(); t.dev.rewind(); }
      t.host.finalize();
      t.dev.finalize();
      t.hostParams.forEach((p, i) => expect(relDiff(t.devParams[i].data.toFloat32Array(), p.data), `${name}: final theta of ${p.name}`).to.be.at.most(1e-6));
      expect(t.dev.stats().density, `${name}: density after finalize`).to.deep.equal(t.host.stats().density);
      // and the device run's state loads into a Float32Array sparsifier
      const back = new spartan.Sparsifier({ ...options, params: makeParams(seed, { block }), totalSteps: T });
      back.load(t.dev.state());
      expect(back.state()).to.deep.equal(t.dev.state());
      t.dev.dispose();
      t.devOpt.dispose();
      t.devParams.forEach((p) => p.data.dispose());
    }
  });
});
