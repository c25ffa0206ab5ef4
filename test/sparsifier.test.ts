// The Sparsifier: schedules, exact budgets, the Spartan update against finite
// differences, its limits, a planted-support problem, checkpoints, bad input.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as spartan from '../lib/index';
import { Sparsifier, type Method } from '../lib/index';
import { makeParams, quadraticGrad } from './fixtures/model';
import { codeOf, expectCode } from './helpers';
import { centralDifferences, freshSeed, normal, rng, softTopKRef } from './reference';

const seed = freshSeed();
const rand = rng(seed);

describe('schedules (spec §3.3 table, §9 H)', () => {
  const p = spartan.phases(1000, 0.2, 0.2);
  it('phase boundaries', () => expect(p).to.deep.equal({ totalSteps: 1000, warmupSteps: 200, finetuneStart: 800 }));
  it('density and beta against the table (T = 1000, betaMax = 10, rho = 0.1; 16x16 target 320)', () => {
    const table: [number, number, number, number][] = [
      [1, 0.9955, 1.01125, 1.39875], [100, 0.55, 2.125, 40.875], [200, 0.1, 3.25, 80.75], [400, 0.1, 5.5, 160.5], [800, 0.1, 10, 320],
    ];
    for (const [s, rho, beta, beta16] of table) {
      expect(spartan.densityAt(s, 0.1, p, 'linear')).to.be.closeTo(rho, 1e-12);
      expect(spartan.betaAt(s, 1, 10, p, 'linear')).to.be.closeTo(beta, 1e-12);
      expect(spartan.betaAt(s, 1, 20 * 16, p, 'linear')).to.be.closeTo(beta16, 1e-12);
    }
  });
  it('cosine, cubic and exponential curves hit their endpoints and stay monotone', () => {
    for (const c of ['linear', 'cosine', 'cubic'] as const) {
      expect(spartan.densityAt(0, 0.1, p, c)).to.be.closeTo(1, 1e-12);
      expect(spartan.densityAt(200, 0.1, p, c)).to.be.closeTo(0.1, 1e-12);
      for (let s = 1; s <= 200; s++) expect(spartan.densityAt(s, 0.1, p, c)).to.be.at.most(spartan.densityAt(s - 1, 0.1, p, c) + 1e-15);
    }
    expect(spartan.densityAt(100, 0.1, p, 'cubic')).to.be.closeTo(0.1 + 0.9 * 0.125, 1e-12); // Zhu & Gupta at r = 1/2
    for (const c of ['linear', 'cosine', 'exponential'] as const) {
      expect(spartan.betaAt(0, 1, 10, p, c)).to.be.closeTo(1, 1e-12);
      expect(spartan.betaAt(800, 1, 10, p, c)).to.be.closeTo(10, 1e-12);
    }
    expect(spartan.betaAt(400, 1, 100, p, 'exponential')).to.be.closeTo(10, 1e-12);
  });
  it('density adjustment: 100 params, 95 masked, target 0.1 -> 0.052632; 80 masked is an error', () => {
    expect(spartan.adjustedDensity(0.1, 100, 95)).to.be.closeTo(0.052632, 1e-6);
    expectCode(() => spartan.adjustedDensity(0.1, 100, 80), RangeError, 'ERR_SPARTAN_OPTION');
  });
  it('ERK gives denser small layers, the target overall density, and caps at 1', () => {
    const shapes = [[100, 100], [10, 100], [3, 3, 3, 16]];
    const d = spartan.erkDensities(shapes, 0.2);
    const n = shapes.map((s) => s.reduce((a, b) => a * b));
    expect(d[1]).to.be.above(d[0]);
    expect(d.reduce((a, x, i) => a + x * n[i], 0) / n.reduce((a, b) => a + b)).to.be.closeTo(0.2, 1e-9);
    expect(Math.max(...spartan.erkDensities(shapes, 0.9))).to.be.at.most(1);
  });
  it('ERK refuses what is not a list of shapes, a zero dimension and a density outside (0, 1]', () => {
    for (const bad of [undefined, 'x', [[]], [7], [[3, '4']]]) expectCode(() => spartan.erkDensities(bad as number[][], 0.5), TypeError, 'ERR_SPARTAN_TYPE');
    for (const bad of [[[3, 0]], [[2.5]], [[-1, 4]]]) expectCode(() => spartan.erkDensities(bad, 0.5), RangeError, 'ERR_SPARTAN_SHAPE');
    for (const d of [0, -0.1, 1.5, NaN]) expectCode(() => spartan.erkDensities([[3, 4]], d), RangeError, 'ERR_SPARTAN_OPTION');
    expectCode(() => spartan.erkDensities([[3, 4]], '0.5' as unknown as number), TypeError, 'ERR_SPARTAN_TYPE');
    expect(spartan.erkDensities([], 0.5)).to.deep.equal([]);
  });
});

function kept(sp: Sparsifier) {
  return sp.layers.map((l) => (l.sparsify ? l.hard.reduce((a, x) => a + x, 0) * l.cost : l.numel));
}

describe(`Sparsifier: exact budgets at every step (seed ${seed})`, () => {
  for (const method of ['spartan', 'imp', 'topkast'] as Method[]) {
    for (const budget of ['global', 'uniform', 'erk'] as const) {
      for (const block of [false, true]) {
        it(`${method}, ${budget} budget, ${block ? 'blocks' : 'unstructured'}`, () => {
          const params = makeParams(Math.floor(rand() * 1e9), { block });
          if (!block) params[0].data.fill(0.25, 0, 300); // heavy ties
          const sp = new Sparsifier({ params, method, density: 0.137, totalSteps: 40, budget });
          const sparse = sp.layers.filter((l) => l.sparsify);
          for (let s = 0; s < 40; s++) {
            for (const p of params) for (let i = 0; i < p.data.length; i++) p.data[i] += 0.01 * normal(rand);
            const before = sparse.map((l) => l.hard.slice());
            sp.step();
            const flips = sparse.reduce((a, l, j) => a + l.hard.reduce((f, x, i) => f + (x !== before[j][i] ? 1 : 0), 0), 0);
            expect(sp.stats().flips, `flips at step ${s + 1}`).to.equal(flips);
            const st = sp.stats();
            const maskDensity = st.maskDensity;
            const counts = kept(sp);
            if (budget === 'global') {
              const K = Math.round(maskDensity * sparse.reduce((a, l) => a + l.numel, 0));
              const total = sparse.reduce((a, l) => a + counts[sp.layers.indexOf(l)], 0);
              const maxCost = Math.max(...sparse.map((l) => l.cost));
              expect(total, `step ${s + 1}`).to.be.at.least(K);
              expect(total - K, `step ${s + 1}`).to.be.below(maxCost);
              if (maxCost === 1) expect(total).to.equal(K);
            } else {
              const dens = budget === 'uniform' ? sparse.map(() => maskDensity) : spartan.erkDensities(sparse.map((l) => l.shape), maskDensity);
              sparse.forEach((l, i) => expect(counts[sp.layers.indexOf(l)] / l.cost, `${l.name} step ${s + 1}`).to.equal(Math.round(Math.min(1, dens[i]) * l.entries)));
            }
            // stats reports exact counts, with unsparsified parameters counted dense
            const totalKept = counts.reduce((a, b) => a + b, 0);
            expect(st.density.global).to.equal(totalKept / sp.layers.reduce((a, l) => a + l.numel, 0));
          }
          expect(sp.stats().frozen).to.equal(true);
          if (block) expect(sp.stats().blockFallbacks).to.have.property('conv.weight');
        });
      }
    }
  }

  it('reaches the overall target density, counting biases as dense (adjusted)', () => {
    const params = makeParams(3);
    const sp = new Sparsifier({ params, method: 'imp', density: 0.1, totalSteps: 10 });
    for (let i = 0; i < 10; i++) sp.step();
    expect(sp.stats().density.global).to.be.closeTo(0.1, 2e-3);
    sp.finalize();
    const zeros = params.reduce((a, p) => a + p.data.filter((x) => x === 0).length, 0);
    expect(1 - zeros / params.reduce((a, p) => a + p.data.length, 0)).to.be.closeTo(0.1, 2e-3);
  });
});

// float64 reference of L(theta) = f(h * theta * m(|theta|)) with h held fixed, global budget.
interface RefLoss { a: Record<string, Float32Array>; quadratic: boolean; hard: boolean }
const lossTerm = (f: RefLoss, name: string, i: number, w: number) => f.a[name][i] * w + (f.quadratic ? 0.5 * w * w : 0);

function referenceLoss(sp: Sparsifier, theta: number[][], f: RefLoss, beta: number, perLayerK?: number[]): number {
  const layers = sp.layers.filter((l) => l.sparsify);
  const scores: number[][] = layers.map((l) => {
    const t = theta[sp.layers.indexOf(l)];
    const s = new Array<number>(l.entries).fill(0);
    for (let i = 0; i < l.numel; i++) {
      const r = Math.floor(i / l.cols), c = i % l.cols;
      s[Math.floor(r / l.block[0]) * (l.cols / l.block[1]) + Math.floor(c / l.block[1])] += Math.abs(t[i]);
    }
    return s;
  });
  let masks: number[][];
  if (!perLayerK) {
    const flat = scores.flat(), costs = layers.flatMap((l) => new Array<number>(l.entries).fill(l.cost));
    const K = Math.round(sp.stats().maskDensity * layers.reduce((x, l) => x + l.numel, 0));
    const m = softTopKRef(flat, K, beta, costs).mask;
    let off = 0;
    masks = layers.map((l) => Array.from(m.subarray(off, (off += l.entries))));
  } else {
    masks = layers.map((l, i) => Array.from(softTopKRef(scores[i], perLayerK[i], beta, new Array(l.entries).fill(l.cost)).mask));
  }
  let L = 0;
  sp.layers.forEach((l, li) => {
    const t = theta[li];
    const j = layers.indexOf(l);
    for (let i = 0; i < l.numel; i++) {
      let w = t[i];
      if (j >= 0) {
        const r = Math.floor(i / l.cols), c = i % l.cols;
        const e = Math.floor(r / l.block[0]) * (l.cols / l.block[1]) + Math.floor(c / l.block[1]);
        w *= (f.hard ? l.hard[e] : 1) * masks[j][e];
      }
      L += lossTerm(f, l.name, i, w);
    }
  });
  return L;
}

describe('Sparsifier: the Spartan update', () => {
  // straightThrough: false -> the exact gradient of L(theta) = f(h * theta * m(|theta|)), h held fixed.
  // straightThrough: true (the paper's update) -> the gradient of the linearisation
  //   L(theta) = <G, theta * m(|theta|)>, G = df/dW at the forward point (spec §2 example F, generalised).
  for (const straightThrough of [false, true])
  for (const block of [false, true]) {
    for (const budget of ['global', 'uniform'] as const) {
      it(`${straightThrough ? 'straight-through: FD of <G, theta m(|theta|)>' : 'exact: FD of f(h theta m(|theta|))'} (${block ? 'blocks' : 'unstructured'}, ${budget})`, () => {
        const params = makeParams(11, { block }).slice(0, 3).map((p) => ({ ...p, data: p.data.slice(0, p.shape.reduce((x, y) => x * y)) }));
        // small tensors so that finite differences are cheap
        params[0] = { ...params[0], data: params[0].data.slice(0, 20 * 10), shape: [20, 10] };
        params[2] = { ...params[2], data: params[2].data.slice(0, 10 * 20), shape: [10, 20] };
        const sp = new Sparsifier({ params, method: 'spartan', density: 0.3, totalSteps: 100, budget, schedule: { warmupFrac: 0 }, betaMax: 4, adjustDensity: false, straightThrough });
        sp.step();
        const r = rng(7);
        const a: Record<string, Float32Array> = {};
        for (const p of params) a[p.name] = Float32Array.from(p.data, () => normal(r));
        const Gfwd = quadraticGrad(sp.weights(), a);
        const g = sp.backward(Gfwd);
        // the linearised loss: f(W) = <G, W> with G fixed and no hard mask (h passed straight through)
        const lin = straightThrough ? { a: Gfwd, quadratic: false, hard: false } : { a, quadratic: true, hard: true };
        const st = sp.stats();
        const sparse = sp.layers.filter((l) => l.sparsify);
        const perLayerK = budget === 'uniform' ? sparse.map((l) => Math.round(st.maskDensity * l.entries) * l.cost) : undefined;
        const betas = sparse.map((l) => sp.betaFor(l));
        const theta = params.map((p) => Array.from(p.data));
        const flatTheta = theta.flat();
        const L = (x: number[]) => {
          let off = 0;
          const t = theta.map((row) => x.slice(off, (off += row.length)));
          return budget === 'global' ? referenceLoss(sp, t, lin, st.beta) : referenceLossPerLayer(sp, t, lin, betas, perLayerK!);
        };
        const fd = centralDifferences(L, flatTheta, 1e-5);
        const got = params.flatMap((p) => Array.from(g[p.name]));
        let worst = 0;
        for (let i = 0; i < fd.length; i++) worst = Math.max(worst, Math.abs(got[i] - fd[i]) / (1 + Math.abs(fd[i])));
        expect(worst).to.be.below(2e-4);
      });
    }
  }

  it('tends to the dense straight-through update scaled by k/d as beta -> 0, and to G * h as beta -> inf', () => {
    for (const [beta, check] of [[1e-6, 'dense'], [1e8, 'hard']] as const) {
      const params = makeParams(13).slice(0, 1);
      const sp = new Sparsifier({ params, method: 'spartan', density: 0.25, totalSteps: 100, schedule: { warmupFrac: 0 }, beta0: beta, betaMax: beta });
      sp.step();
      const G = Float32Array.from(params[0].data, () => normal(rand));
      const g = sp.backward({ 'fc1.weight': G })['fc1.weight'];
      const l = sp.layers[0];
      let worst = 0;
      for (let i = 0; i < G.length; i++) {
        const expected = check === 'dense' ? G[i] * 0.25 : G[i] * l.hard[i];
        worst = Math.max(worst, Math.abs(g[i] - expected));
      }
      expect(worst, check).to.be.below(1e-4);
    }
  });
});

function referenceLossPerLayer(sp: Sparsifier, theta: number[][], f: RefLoss, betas: number[], ks: number[]): number {
  const layers = sp.layers.filter((l) => l.sparsify);
  let L = 0;
  sp.layers.forEach((l, li) => {
    const t = theta[li];
    const j = layers.indexOf(l);
    let m: Float64Array | null = null;
    if (j >= 0) {
      const s = new Array<number>(l.entries).fill(0);
      for (let i = 0; i < l.numel; i++) {
        const r = Math.floor(i / l.cols), c = i % l.cols;
        s[Math.floor(r / l.block[0]) * (l.cols / l.block[1]) + Math.floor(c / l.block[1])] += Math.abs(t[i]);
      }
      m = softTopKRef(s, ks[j], betas[j], new Array(l.entries).fill(l.cost)).mask;
    }
    for (let i = 0; i < l.numel; i++) {
      let w = t[i];
      if (m) {
        const r = Math.floor(i / l.cols), c = i % l.cols;
        const e = Math.floor(r / l.block[0]) * (l.cols / l.block[1]) + Math.floor(c / l.block[1]);
        w *= (f.hard ? l.hard[e] : 1) * m[e];
      }
      L += lossTerm(f, l.name, i, w);
    }
  });
  return L;
}

describe('Sparsifier: sparse linear regression with a planted support', () => {
  // y = X w*, w* with 4 nonzeros among 64, from only 16 samples (underdetermined: the
  // support must be found, not read off a least-squares fit); train w at density 4/64.
  function trial(method: Method, s: number): boolean {
    const r = rng(s);
    const d = 64, n = 16, k = 4;
    const support = new Set<number>();
    while (support.size < k) support.add(Math.floor(r() * d));
    const wStar = new Float64Array(d);
    for (const i of support) wStar[i] = (r() < 0.5 ? -1 : 1) * (0.5 + r());
    const X = Float64Array.from({ length: n * d }, () => normal(r));
    const y = new Float64Array(n);
    for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) y[i] += X[i * d + j] * wStar[j];
    const w = Float32Array.from({ length: d }, () => 0.1 * normal(r));
    const params = [{ name: 'w', data: w, shape: [1, d] }];
    const T = 400;
    const sp = new Sparsifier({ params, method, density: k / d, totalSteps: T, betaMax: 20 });
    const opt = new spartan.SGD(params, { lr: 0.05, momentum: 0.9 });
    for (let t = 0; t < T; t++) {
      const W = sp.weights().w;
      const res = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        let p = 0;
        for (let j = 0; j < d; j++) p += X[i * d + j] * W[j];
        res[i] = p - y[i];
      }
      const G = new Float32Array(d);
      for (let j = 0; j < d; j++) {
        let g = 0;
        for (let i = 0; i < n; i++) g += X[i * d + j] * res[i];
        G[j] = g / n;
      }
      opt.step(sp.backward({ w: G }));
      sp.step();
    }
    const kept = sp.layers[0].hard;
    expect(kept.reduce((a, b) => a + b, 0)).to.equal(k); // exactly k kept
    return [...support].every((i) => kept[i] === 1);
  }

  it('Spartan recovers the support most often, then Top-KAST (dense exploration), then IMP', function () {
    this.timeout(120000);
    // Fixed seeds and deterministic kernels: the rates are reproducible. Measured here:
    // Spartan 22/30, Top-KAST 11/30, IMP 4/30 on seeds 2000-2029.
    const seeds = Array.from({ length: 30 }, (_, i) => 2000 + i);
    const rate = (m: Method) => seeds.filter((s) => trial(m, s)).length / seeds.length;
    const rates = { spartan: rate('spartan'), topkast: rate('topkast'), imp: rate('imp') };
    console.log(`      support recovery over ${seeds.length} seeds: ${JSON.stringify(rates)}`);
    expect(rates.spartan).to.be.at.least(0.6);
    expect(rates.spartan).to.be.at.least(rates.topkast + 0.2);
    expect(rates.topkast).to.be.at.least(rates.imp + 0.1);
  });
});

describe('Sparsifier: checkpoints', () => {
  it('N steps, save, resume in a fresh process, M more: bit-identical to N + M straight', function () {
    this.timeout(120000);
    const script = path.join(__dirname, 'fixtures', 'resume.ts');
    const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-')), 'ck.bin');
    const run = (...args: string[]) => execFileSync(process.execPath, ['--import', 'tsx', script, ...args], { encoding: 'utf8' }).trim();
    const straight = run('straight', file, '30', '25');
    run('save', file, '30', '25');
    const resumed = run('resume', file, '30', '25');
    expect(resumed).to.equal(straight);
    expect(straight).to.match(/^[0-9a-f]{64}$/);
  });

  it('refuses a state from another model or method, changing nothing', () => {
    const a = new Sparsifier({ params: makeParams(1), method: 'spartan', density: 0.3, totalSteps: 10 });
    a.step();
    const b = new Sparsifier({ params: makeParams(1).slice(0, 2), method: 'spartan', density: 0.3, totalSteps: 10 });
    expectCode(() => b.load(a.state()), RangeError, 'ERR_SPARTAN_STATE');
    const c = new Sparsifier({ params: makeParams(1), method: 'imp', density: 0.3, totalSteps: 10 });
    expectCode(() => c.load(a.state()), RangeError, 'ERR_SPARTAN_STATE');
    expect(c.stats().step).to.equal(0);
  });

  it('refuses a state of a parameter with the same numel in another shape; a state without shapes (older) still loads', () => {
    const w = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    const opts = { method: 'spartan' as Method, density: 0.3, totalSteps: 10 };
    const a = new Sparsifier({ params: [{ name: 'w', data: w(1024), shape: [16, 64], block: [16, 16] }], ...opts });
    a.step();
    const state = a.state();
    expect(state.layers[0].shape).to.deep.equal([16, 64]);
    const b = new Sparsifier({ params: [{ name: 'w', data: w(1024), shape: [32, 32], block: [16, 16] }], ...opts }); // 4 tiles too, elsewhere
    expect(codeOf(() => b.load(state))).to.equal('ERR_SPARTAN_STATE: cannot load sparsifier state: parameter 0 (w) has shape [32,32]; the state\'s has [16,64]');
    expect(b.stepCount).to.equal(0);
    const older = { ...state, layers: state.layers.map(({ shape: _shape, ...rest }) => rest) };
    const c = new Sparsifier({ params: [{ name: 'w', data: w(1024), shape: [16, 64], block: [16, 16] }], ...opts });
    c.load(older);
    expect(c.stepCount).to.equal(1);
    expect(Array.from(c.state().hard[0])).to.deep.equal(Array.from(state.hard[0]));
    expectCode(() => c.load({ ...state, layers: [{ ...state.layers[0], shape: 'x' as never }] }), RangeError, 'ERR_SPARTAN_STATE');
  });
});

describe('Sparsifier: bad input', () => {
  const base = () => ({ params: makeParams(2), method: 'spartan' as Method, density: 0.2, totalSteps: 10 });
  it('rejects bad options with typed errors', () => {
    expectCode(() => new Sparsifier({ ...base(), method: 'magic' as Method }), RangeError, 'ERR_SPARTAN_OPTION');
    expectCode(() => new Sparsifier({ ...base(), density: 0 }), RangeError, 'ERR_SPARTAN_OPTION');
    expectCode(() => new Sparsifier({ ...base(), density: 1.5 }), RangeError, 'ERR_SPARTAN_OPTION');
    expectCode(() => new Sparsifier({ ...base(), density: NaN }), RangeError, 'ERR_SPARTAN_OPTION');
    expectCode(() => new Sparsifier({ ...base(), density: undefined, sparsity: 1 }), RangeError, 'ERR_SPARTAN_OPTION');
    expectCode(() => new Sparsifier({ ...base(), params: [{ name: 'w', data: new Float32Array(12), shape: [3, 4], block: [0, 4] }] }), RangeError, 'ERR_SPARTAN_SHAPE');
    expectCode(() => new Sparsifier({ ...base(), params: [{ name: 'w', data: new Float32Array(12), shape: [3, 4], block: [2] as never }] }), RangeError, 'ERR_SPARTAN_SHAPE');
    expectCode(() => new Sparsifier({ ...base(), params: [{ name: 'w', data: new Float32Array(11), shape: [3, 4] }] }), RangeError, 'ERR_SPARTAN_SHAPE');
    expectCode(() => new Sparsifier({ ...base(), params: [{ name: 'w', data: new Float64Array(12) as never, shape: [3, 4] }] }), TypeError, 'ERR_SPARTAN_TYPE');
    expectCode(() => new Sparsifier({ ...base(), totalSteps: 0 }), RangeError, 'ERR_SPARTAN_OPTION');
    expectCode(() => new Sparsifier({ ...base(), budget: 'magic' as never }), RangeError, 'ERR_SPARTAN_OPTION');
    expectCode(() => new Sparsifier({ ...base(), betaMax: -1 }), RangeError, 'ERR_SPARTAN_OPTION');
  });

  it('refuses a beta schedule that reaches beta 0 (rounding, underflow), at construction rather than at a step', () => {
    const params = () => [{ name: 'w', data: Float32Array.from({ length: 2048 }, (_, i) => Math.sin(i)), shape: [32, 64] }];
    const opts = { params: params(), method: 'spartan' as Method, density: 0.1, totalSteps: 20 };
    // the fine-tune start: beta0 + 1 * (betaMax - beta0) = 1 + (1e-17 - 1) = 0
    expect(codeOf(() => new Sparsifier({ ...opts, betaMax: 1e-17 }))).to.equal('ERR_SPARTAN_OPTION: beta0 1 and betaMax 1e-17 give beta 0 at step 16 (linear schedule); every beta must be finite and > 0');
    expect(codeOf(() => new Sparsifier({ ...opts, betaMax: 1e-17, schedule: { beta: 'cosine' } }))).to.match(/^ERR_SPARTAN_OPTION: .* give beta 0 at step 16/);
    // (betaMax / beta0) ** r underflows to 0 from step 1 on
    expect(codeOf(() => new Sparsifier({ ...opts, beta0: 1e300, betaMax: 1e-300, schedule: { beta: 'exponential' } }))).to.match(/^ERR_SPARTAN_OPTION: .* give beta 0 at step 1 /);
    // the methods without a soft mask take no beta
    new Sparsifier({ ...opts, params: params(), method: 'imp', betaMax: 1e-17 }).step();
  });

  it('a step the soft top-k refuses (beta x the largest score beyond 1e300) changes no mask, counter or state', () => {
    const big = Float32Array.from({ length: 2048 }, (_, i) => (1 + (i % 7)) * 1e30);
    const sp = new Sparsifier({ params: [{ name: 'w', data: big, shape: [32, 64] }], method: 'spartan', density: 0.1, totalSteps: 20, betaMax: 1e290 });
    const before = sp.state();
    expect(codeOf(() => sp.step())).to.match(/^ERR_SPARTAN_BETA: beta [\d.e+]+ times the largest \|value \/ cost\|/);
    const after = sp.state();
    expect(after.step).to.equal(0);
    for (const key of ['masks', 'hard', 'prevHard', 'backwardSets'] as const) expect(Array.from(after[key][0]), key).to.deep.equal(Array.from(before[key][0]));
    expect(after).to.deep.equal(before);
  });

  it('backward() reads each gradient once (a getter cannot have one array checked and another used)', () => {
    const sp = new Sparsifier(base());
    sp.step();
    const good = Object.fromEntries(Object.entries(sp.weights()).map(([k, w]) => [k, Float32Array.from(w, () => 0.1)]));
    const reads: Record<string, number> = {};
    const gradW = {} as Record<string, Float32Array>;
    for (const [k, g] of Object.entries(good))
      Object.defineProperty(gradW, k, { enumerable: true, get: () => ((reads[k] = (reads[k] ?? 0) + 1) === 1 ? g : new Float32Array(3).fill(NaN)) });
    const out = sp.backward(gradW);
    expect(Object.values(reads)).to.deep.equal(Object.keys(good).map(() => 1));
    expect(Array.from(out['fc1.weight'])).to.deep.equal(Array.from(sp.backward(good)['fc1.weight']));
  });

  it('rejects a gradient of the wrong length, type or name, or with NaN, and leaves state untouched', () => {
    const sp = new Sparsifier(base());
    sp.step();
    const W = sp.weights();
    const good = Object.fromEntries(Object.entries(W).map(([k, w]) => [k, Float32Array.from(w, () => 0.1)]));
    const before = JSON.stringify(sp.stats());
    const gradBefore = sp.backward(good)['fc1.weight'].slice();
    expectCode(() => sp.backward({ ...good, 'fc1.weight': new Float32Array(3) }), RangeError, 'ERR_SPARTAN_LENGTH');
    expectCode(() => sp.backward({ ...good, 'fc1.weight': new Float64Array(1200) as never }), TypeError, 'ERR_SPARTAN_TYPE');
    expectCode(() => sp.backward({ ...good, extra: new Float32Array(1) }), RangeError, 'ERR_SPARTAN_OPTION');
    const nan = good['fc2.weight'].slice();
    nan[5] = NaN;
    expectCode(() => sp.backward({ ...good, 'fc2.weight': nan }), RangeError, 'ERR_SPARTAN_NON_FINITE');
    // The fused Spartan kernel validates the sparsified gradients itself; its error names the layer.
    expect(() => sp.backward({ ...good, 'fc2.weight': nan })).to.throw(/^gradW\["fc2\.weight"\]\[5\] is nan/);
    const nanBias = good['fc1.bias'].slice();
    nanBias[2] = Infinity;
    expect(() => sp.backward({ ...good, 'fc1.bias': nanBias })).to.throw(/^gradW\["fc1\.bias"\]\[2\] is inf/);
    const { 'fc1.bias': _omit, ...missing } = good;
    expectCode(() => sp.backward(missing), TypeError, 'ERR_SPARTAN_TYPE');
    expect(JSON.stringify(sp.stats())).to.equal(before);
    expect(Array.from(sp.backward(good)['fc1.weight'])).to.deep.equal(Array.from(gradBefore));
  });

  it('a parameter array transferred away is ERR_SPARTAN_DETACHED naming it, from every call, with nothing changed', () => {
    const params = makeParams(5);
    const sp = new Sparsifier({ params, method: 'spartan', density: 0.3, totalSteps: 50 });
    const opt = new spartan.SGD(params, { lr: 0.05 });
    const target = Object.fromEntries(params.map((p) => [p.name, p.data.map(() => 0.2)]));
    for (let i = 0; i < 3; i++) {
      opt.step(sp.backward(quadraticGrad(sp.weights(), target)));
      sp.step();
    }
    const state = sp.state();
    const zeros = Object.fromEntries(params.map((p) => [p.name, new Float32Array(p.data.length)]));
    structuredClone(params[2].data.buffer, { transfer: [params[2].data.buffer as ArrayBuffer] });
    for (const call of [() => sp.weights(), () => sp.backward(zeros), () => sp.step(), () => sp.state(), () => sp.finalize(), () => sp.stats()])
      expect(codeOf(call)).to.equal('ERR_SPARTAN_DETACHED: parameter "fc2.weight": its array was detached (transferred); the Sparsifier needs its parameters\' memory where it runs');
    expect(sp.stepCount).to.equal(3);
    const fresh = new Sparsifier({ params: makeParams(5), method: 'spartan', density: 0.3, totalSteps: 50 });
    fresh.load(state); // the state taken before is whole
    expect(fresh.stepCount).to.equal(3);
  });

  it('the W and gradient buffers a Sparsifier hands out may be transferred away (to a worker, say): it makes new ones and goes on, bit for bit', () => {
    const a = makeParams(6), b = makeParams(6);
    const opts = { method: 'spartan' as Method, density: 0.3, totalSteps: 20 };
    const sa = new Sparsifier({ params: a, ...opts }), sb = new Sparsifier({ params: b, ...opts });
    const oa = new spartan.SGD(a, { lr: 0.05 }), ob = new spartan.SGD(b, { lr: 0.05 });
    const target = Object.fromEntries(a.map((p) => [p.name, p.data.map(() => 0.2)]));
    for (let i = 0; i < 8; i++) {
      const Wa = sa.weights(), Wb = sb.weights();
      const ga = quadraticGrad(Wa, target), gb = quadraticGrad(Wb, target);
      structuredClone(Wa['fc1.weight'].buffer, { transfer: [Wa['fc1.weight'].buffer as ArrayBuffer] });
      const Ga = sa.backward(ga), Gb = sb.backward(gb);
      oa.step(Ga);
      ob.step(Gb);
      if (i > 0) structuredClone(Ga['fc2.weight'].buffer, { transfer: [Ga['fc2.weight'].buffer as ArrayBuffer] });
      sa.step();
      sb.step();
    }
    a.forEach((p, i) => expect(Buffer.from(p.data.buffer).equals(Buffer.from(b[i].data.buffer)), p.name).to.equal(true));
    expect(sa.weights()['fc1.weight'].length).to.equal(40 * 30);
  });

  it('optimizers reject NaN gradients before touching any parameter', () => {
    const params = makeParams(4);
    const opt = new spartan.AdamW(params, { lr: 1e-3 });
    const before = params.map((p) => p.data.slice());
    const grads = Object.fromEntries(params.map((p) => [p.name, new Float32Array(p.data.length).fill(0.1)]));
    grads['conv.weight'][3] = Infinity;
    expectCode(() => opt.step(grads), RangeError, 'ERR_SPARTAN_NON_FINITE');
    params.forEach((p, i) => expect(Buffer.from(p.data.buffer).equals(Buffer.from(before[i].buffer))).to.equal(true));
    expect(opt.stepCount).to.equal(0);
    expectCode(() => new spartan.SGD(params, { lr: -1 }), RangeError, 'ERR_SPARTAN_OPTION');
  });

  for (const kind of ['SGD', 'AdamW'] as const)
    it(`${kind}.step reads each gradient once, and ignores a gradient of a parameter it does not hold (a frozen one)`, () => {
      const params = makeParams(4);
      const opt = kind === 'SGD' ? new spartan.SGD(params, { lr: 0.1, momentum: 0.9 }) : new spartan.AdamW(params, { lr: 1e-3 });
      const before = params.map((p) => p.data.slice());
      const grads = Object.fromEntries(params.map((p) => [p.name, new Float32Array(p.data.length).fill(0.1)]));
      // a parameter left out of the optimizer (frozen): its gradient, which Sparsifier.backward
      // returns too, is ignored, and the step is the one without it
      const other = kind === 'SGD' ? new spartan.SGD(params, { lr: 0.1, momentum: 0.9 }) : new spartan.AdamW(params, { lr: 1e-3 });
      other.step({ ...grads, 'frozen.weight': new Float32Array(3).fill(5) });
      expect(other.stepCount).to.equal(1);
      const stepped = params.map((p) => p.data.slice());
      params.forEach((p, i) => p.data.set(before[i]));
      (kind === 'SGD' ? new spartan.SGD(params, { lr: 0.1, momentum: 0.9 }) : new spartan.AdamW(params, { lr: 1e-3 })).step(grads);
      params.forEach((p, i) => expect(Array.from(p.data)).to.deep.equal(Array.from(stepped[i])));
      params.forEach((p, i) => p.data.set(before[i]));
      // a getter handing out a wrong-length (or NaN) array from its second read on: the first is the one used
      const reads: Record<string, number> = {};
      const tricky = {} as Record<string, Float32Array>;
      for (const [k, g] of Object.entries(grads))
        Object.defineProperty(tricky, k, { enumerable: true, get: () => ((reads[k] = (reads[k] ?? 0) + 1) === 1 ? g : new Float32Array(3).fill(NaN)) });
      opt.step(tricky);
      expect(Object.values(reads)).to.deep.equal(params.map(() => 1));
      expect(opt.stepCount).to.equal(1);
      params.forEach((p) => expect(p.data.every(Number.isFinite), p.name).to.equal(true));
    });

  it('an optimizer params array with a hole is ERR_SPARTAN_TYPE naming the entry', () => {
    const params = makeParams(4);
    // eslint-disable-next-line no-sparse-arrays
    expect(codeOf(() => new spartan.SGD([, params[1]] as never, { lr: 0.1 }))).to.equal('ERR_SPARTAN_TYPE: params[0] must be { name: string, data: Float32Array | float32 Tensor }');
    expect(codeOf(() => new spartan.AdamW([params[0], , params[1]] as never, { lr: 0.1 }))).to.match(/^ERR_SPARTAN_TYPE: params\[1\] must be/);
  });
});

describe('Sparsifier: phases and method details', () => {
  const G = (sp: Sparsifier, v = 1) => Object.fromEntries(sp.layers.map((l) => [l.name, new Float32Array(l.numel).fill(v)]));

  it('Spartan freezes at the fine-tune start: soft values kept (or rounded), no flips, gradient G * m', () => {
    for (const roundFrozen of [false, true]) {
      const params = makeParams(21);
      const sp = new Sparsifier({ params, method: 'spartan', density: 0.3, totalSteps: 10, roundFrozen });
      for (let i = 0; i < 8; i++) sp.step(); // finetuneStart = 8
      const st = sp.stats();
      expect(st.frozen).to.equal(true);
      expect(st.phase).to.equal('finetune');
      const l = sp.layers[0];
      const frozen = l.mask.slice();
      for (let i = 0; i < l.entries; i++) {
        if (!l.hard[i]) expect(frozen[i]).to.equal(0);
        else if (roundFrozen) expect(frozen[i]).to.equal(1);
      }
      if (!roundFrozen) expect(Array.from(frozen).some((m, i) => l.hard[i] && m < 1)).to.equal(true);
      for (const p of params) p.data.reverse(); // big changes no longer move the mask
      sp.step();
      expect(sp.stats().flips).to.equal(0);
      expect(Buffer.from(l.mask.buffer).equals(Buffer.from(frozen.buffer))).to.equal(true);
      const g = sp.backward(G(sp, 2))[l.name];
      for (let i = 0; i < l.numel; i++) expect(g[i]).to.equal(Math.fround(2 * frozen[i]));
    }
  });

  it('IMP masks the gradient (G * h), updates every `interval` steps, and rewinds theta', () => {
    const params = makeParams(22);
    const sp = new Sparsifier({ params, method: 'imp', density: 0.2, totalSteps: 100, imp: { interval: 3, rewindStep: 2 } });
    sp.step();
    sp.step(); // snapshot taken here
    const snap = params.map((p) => p.data.slice());
    const hardAt2 = sp.layers[0].hard.slice();
    params[0].data.reverse();
    sp.step(); // step 3: no update (interval 3 updates at steps 1, 4, 7, ...)
    expect(Buffer.from(sp.layers[0].hard.buffer).equals(Buffer.from(hardAt2.buffer))).to.equal(true);
    sp.step(); // step 4: update
    expect(Buffer.from(sp.layers[0].hard.buffer).equals(Buffer.from(hardAt2.buffer))).to.equal(false);
    const g = sp.backward(G(sp))[sp.layers[0].name];
    sp.layers[0].hard.forEach((h, i) => expect(g[i]).to.equal(h));
    sp.rewind();
    params.forEach((p, i) => expect(Buffer.from(p.data.buffer).equals(Buffer.from(snap[i].buffer))).to.equal(true));
  });

  it('Top-KAST: dense straight-through by default; with backward sparsity, G on B only, plus the exploration penalty', () => {
    const dense = new Sparsifier({ params: makeParams(23), method: 'topkast', density: 0.2, totalSteps: 100 });
    dense.step();
    expect(Array.from(dense.backward(G(dense, 3))['fc1.weight']).every((x) => x === 3)).to.equal(true);
    const params = makeParams(23);
    const sp = new Sparsifier({ params, method: 'topkast', density: 0.2, totalSteps: 100, topkast: { backwardExtra: 0.5, explorationPenalty: 0.1 } });
    sp.step();
    const l = sp.layers[0];
    const A = l.hard.reduce((a, x) => a + x, 0), B = l.backwardSet.reduce((a, x) => a + x, 0);
    expect(B).to.be.above(A);
    l.hard.forEach((h, i) => h && expect(l.backwardSet[i]).to.equal(1)); // A within B
    const g = sp.backward(G(sp))[l.name];
    const inv = 1 / sp.stats().maskDensity;
    for (let i = 0; i < l.numel; i++) {
      const expected = l.hard[i] ? 1 + 0.1 * l.theta[i] : l.backwardSet[i] ? 1 + 0.1 * inv * l.theta[i] : 0;
      expect(g[i]).to.be.closeTo(expected, 1e-5);
    }
    // the same with 10x10 tiles: each weight follows its tile's entry of A and B
    const bsp = new Sparsifier({ params: makeParams(23, { block: true }), method: 'topkast', density: 0.2, totalSteps: 100, topkast: { backwardExtra: 0.5, explorationPenalty: 0.1 } });
    bsp.step();
    const bl = bsp.layers[0];
    expect(bl.block).to.deep.equal([10, 10]);
    const bg = bsp.backward(G(bsp))[bl.name];
    const binv = 1 / bsp.stats().maskDensity;
    for (let i = 0; i < bl.numel; i++) {
      const r = Math.floor(i / bl.cols), c = i % bl.cols, e = Math.floor(r / 10) * (bl.cols / 10) + Math.floor(c / 10);
      const expected = bl.hard[e] ? 1 + 0.1 * bl.theta[i] : bl.backwardSet[e] ? 1 + 0.1 * binv * bl.theta[i] : 0;
      expect(bg[i]).to.be.closeTo(expected, 1e-5);
    }
  });

  it('Dense hands theta and G through untouched (no copies)', () => {
    const params = makeParams(24);
    const sp = new Sparsifier({ params, method: 'dense', totalSteps: 10 });
    sp.step();
    const W = sp.weights();
    params.forEach((p) => expect(W[p.name]).to.equal(p.data));
    const grads = G(sp, 0.5);
    const out = sp.backward(grads);
    params.forEach((p) => expect(out[p.name]).to.equal(grads[p.name])); // the caller's own arrays
    expect(sp.stats().density.global).to.equal(1);
  });

  it('with nothing to mask (sparsify: false everywhere) every method hands G through in every phase', () => {
    for (const method of ['spartan', 'imp', 'topkast'] as const) {
      const params = makeParams(26).map((p) => ({ ...p, sparsify: false }));
      const sp = new Sparsifier({ params, method, density: 0.5, totalSteps: 10 });
      for (let i = 0; i < 10; i++) {
        const W = sp.weights();
        params.forEach((p) => expect(Array.from(W[p.name]), `${method} step ${i}`).to.deep.equal(Array.from(p.data)));
        const grads = G(sp, 0.5);
        const out = sp.backward(grads);
        params.forEach((p) => expect(Array.from(out[p.name]), `${method} step ${i}`).to.deep.equal(Array.from(grads[p.name])));
        sp.step();
      }
      expect(sp.stats().density.global, method).to.equal(1);
    }
  });

  it('finalize() folds the masks: theta is exactly sparse and weights() returns it', () => {
    const params = makeParams(25, { block: true });
    const sp = new Sparsifier({ params, method: 'spartan', density: 0.25, totalSteps: 10 });
    for (let i = 0; i < 10; i++) sp.step();
    const W = Object.fromEntries(Object.entries(sp.weights()).map(([k, w]) => [k, w.slice()]));
    sp.finalize();
    params.forEach((p) => expect(Array.from(p.data)).to.deep.equal(Array.from(W[p.name])));
    const st = sp.stats();
    expect(st.finalized).to.equal(true);
    expect(st.density.perLayer['fc1.weight']).to.be.at.most(0.25 + 1e-9);
    expectCode(() => sp.step(), RangeError, 'ERR_SPARTAN_OPTION');
  });

  it('Spartan warm-starts each solve on the line through the last two lambdas: fewer Newton passes, the same exact budget', () => {
    // a smooth run: beta and the density follow their schedules, theta drifts under a fixed pull
    const run = (extrapolate: boolean, budget: 'global' | 'uniform') => {
      const params = makeParams(31);
      const pull = Object.fromEntries(params.map((p) => [p.name, Float32Array.from(p.data, (_, i) => 0.02 * Math.sin(i))]));
      const sp = new Sparsifier({ params, method: 'spartan', density: 0.2, totalSteps: 200, budget, betaMax: 50 });
      const opt = new spartan.SGD(params, { lr: 0.05 });
      let passes = 0;
      for (let s = 0; s < 150; s++) {
        opt.step(sp.backward(quadraticGrad(sp.weights(), pull)));
        if (!extrapolate) (sp as unknown as { lambdaBefore: null }).lambdaBefore = null; // the last lambda alone
        sp.step();
        const st = sp.stats();
        if (s >= 5) passes += st.iterations;
        if (budget === 'global' && !st.frozen) {  // the solve still meets the budget: sum of m = k
          const masked = sp.layers.filter((l) => l.sparsify);
          const k = Math.round(st.maskDensity * masked.reduce((a, l) => a + l.numel, 0));
          const mass = masked.reduce((a, l) => a + l.mask.reduce((x, m) => x + m, 0), 0);
          expect(mass).to.be.closeTo(k, 1e-3);
        }
      }
      return passes;
    };
    for (const budget of ['global', 'uniform'] as const) {
      const plain = run(false, budget), extrapolated = run(true, budget);
      expect(extrapolated, `${budget}: ${extrapolated} vs ${plain} Newton passes`).to.be.below(0.85 * plain);
    }
  });
});

describe(`Sparsifier hard masks with last-step band hints (seed ${seed})`, () => {
  // The hint only replaces the band path's sample; every step's forward set must equal a fresh,
  // unhinted top-k of the same scores, whether the hint held, missed or was absent.
  for (const [method, budget, block] of [['spartan', 'global', false], ['imp', 'uniform', false], ['topkast', 'global', true], ['spartan', 'erk', true]] as const) {
    it(`${method}, ${budget} budget${block ? ', 16x16 blocks' : ''}: equal to an unhinted top-k at every step`, () => {
      const r = rng(seed + 11);
      const params = [
        { name: 'a', shape: [160, 128], data: Float32Array.from({ length: 160 * 128 }, () => 0.1 * normal(r)), block: block ? ([16, 16] as [number, number]) : undefined },
        { name: 'b', shape: [64, 96], data: Float32Array.from({ length: 64 * 96 }, () => 0.1 * normal(r)), block: block ? ([16, 16] as [number, number]) : undefined },
      ];
      const sp = new Sparsifier({ params, method, budget, density: 0.1, totalSteps: 60, betaMax: 50 });
      const inner = sp as unknown as { sparse: { scores: Float32Array; hard: Uint8Array; cost: number; numel: number }[]; budgets(rho: number): number[]; maskDensity: number; topkBands: unknown[] | null };
      let held = 0;
      for (let step = 0; step < 47; step++) { // up to the freeze at 48
        for (const p of params) for (let i = 0; i < p.data.length; i++) p.data[i] += 0.002 * normal(r); // an optimizer's small steps
        sp.step();
        const ks = inner.budgets(inner.maskDensity);
        const want = spartan.topKMaskSegmented(inner.sparse.map((l) => ({ values: l.scores, costs: l.cost })), budget === 'global' ? ks[0] : ks);
        inner.sparse.forEach((l, i) => expect(Buffer.from(l.hard).equals(Buffer.from(want[i])), `step ${step} layer ${i}`).to.equal(true));
        held += inner.topkBands?.every((b) => b !== null) ? 1 : 0;
      }
      expect(held, 'a band was suggested on most steps').to.be.at.least(40);
    });
  }
});

describe(`Sparsifier + optimizer: checkedSumSquares spares a second scan, nothing else (seed ${seed})`, () => {
  for (const method of ['dense', 'imp', 'topkast', 'spartan'] as Method[]) {
    it(`${method}: 30 steps with the sums equal 30 steps without, bit for bit; the sums are the gradients'`, () => {
      const run = (useChecked: boolean) => {
        const params = makeParams(seed % 1000);
        const a = Object.fromEntries(params.map((p) => [p.name, Float32Array.from(p.data, (_, i) => Math.sin(i + 1))]));
        const sp = new Sparsifier({ params, method, density: 0.2, totalSteps: 40, betaMax: 20 });
        const opt = new spartan.SGD(params, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 });
        for (let s = 0; s < 30; s++) {
          const g = sp.backward(quadraticGrad(sp.weights(), a));
          // all handed through at step 0 and for dense; Spartan's fused outputs count too; IMP's
          // and Top-KAST's masked gradients are left to the optimizer's scan
          const masked = s > 0 && (method === 'imp' || method === 'topkast');
          expect(sp.checkedSumSquares.size, `step ${s}`).to.equal(masked ? 1 : 4);
          for (const [name, sq] of sp.checkedSumSquares) {
            const want = g[name].reduce((acc, x) => acc + x * x, 0);
            expect(Math.abs(sq - want), `${name} step ${s}`).to.be.at.most(1e-6 * want + 1e-30);
          }
          opt.step(g, useChecked ? sp.checkedSumSquares : undefined);
          sp.step();
        }
        return params.map((p) => Buffer.from(p.data.buffer).toString('hex')).join();
      };
      expect(run(true)).to.equal(run(false));
    });
  }
});
