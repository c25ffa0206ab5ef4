// The fused Spartan gradient for element masks (native spartanElementGrad, which the
// Sparsifier uses when every sparsified tensor is unstructured) against the three
// kernels it fuses, which the other suites check against float64 references and finite
// differences: equal bit for bit, on fresh random inputs.
import { expect } from 'chai';
import * as spartan from '../lib/index';
import { native } from '../lib/native';
import { expectCode } from './helpers';
import { freshSeed, normal, rng } from './reference';

const seed = freshSeed();
const rand = rng(seed);

interface Seg { gradW: Float32Array; theta: Float32Array; mask: Float32Array; hard: Uint8Array }

function randomSeg(n: number): Seg {
  const theta = Float32Array.from({ length: n }, () => (rand() < 0.05 ? 0 : 0.1 * normal(rand)));
  const mask = Float32Array.from({ length: n }, () => {
    const r = rand();
    return r < 0.05 ? 0 : r < 0.1 ? 1 : r < 0.12 ? -0 : Math.fround(rand());
  });
  const hard = Uint8Array.from({ length: n }, () => (rand() < 0.3 ? 1 : 0));
  return { gradW: Float32Array.from({ length: n }, () => normal(rand)), theta, mask, hard };
}

// maskUpstream -> softTopKBackwardSegmented (cost 1) -> spartanParamGrad, as the Sparsifier runs them
function composite(segs: Seg[], beta: number | number[], straightThrough: boolean): Float32Array[] {
  const G = segs.map((s) => (straightThrough ? s.gradW : spartan.applyMask(s.gradW, s.hard)));
  const up = segs.map((s, i) => {
    const out = new Float32Array(s.theta.length);
    native.maskUpstream(G[i], s.theta, 1, s.theta.length, 1, 1, out);
    return out;
  });
  const vjp = spartan.softTopKBackwardSegmented(segs.map((s, i) => ({ mask: s.mask, gradMask: up[i], costs: 1 })), beta);
  return segs.map((s, i) => {
    const out = new Float32Array(s.theta.length);
    native.spartanParamGrad(G[i], s.theta, s.mask, vjp[i], 1, s.theta.length, 1, 1, out);
    return out;
  });
}

function fused(segs: Seg[], beta: number | number[], straightThrough: boolean): Float32Array[] {
  const outs = segs.map((s) => new Float32Array(s.theta.length).fill(NaN));
  const groups = typeof beta === 'number' ? [{ first: 0, count: segs.length, beta }] : beta.map((b, i) => ({ first: i, count: 1, beta: b }));
  native.spartanElementGrad(segs.map((s, i) => ({ ...s, hard: straightThrough ? undefined : s.hard, out: outs[i] })), groups);
  return outs;
}

const mismatches = (a: Float32Array, b: Float32Array) => a.reduce((n, x, i) => n + (x === b[i] ? 0 : 1), 0);

describe(`fused Spartan gradient for element masks (seed ${seed})`, () => {
  it('equals maskUpstream -> softTopKBackward -> spartanParamGrad bit for bit (global and per-tensor budgets, straight through or not)', () => {
    for (const sizes of [[1], [7, 3], [235200 / 8, 30000, 1000, 13], [70001, 65536]]) {
      const segs = sizes.map(randomSeg);
      for (const straightThrough of [true, false]) {
        const global = 0.5 + 300 * rand();
        const perTensor = sizes.map(() => 0.5 + 300 * rand());
        for (const beta of [global, perTensor]) {
          const want = composite(segs, beta, straightThrough), got = fused(segs, beta, straightThrough);
          got.forEach((g, i) => expect(mismatches(g, want[i]), `sizes ${sizes} segment ${i} ST ${straightThrough} beta ${beta}`).to.equal(0));
        }
      }
    }
  });

  it('out may be gradW itself', () => {
    const segs = [randomSeg(1000), randomSeg(37)];
    const want = composite(segs, 20, true);
    const inPlace = segs.map((s) => ({ ...s, gradW: s.gradW.slice() }));
    native.spartanElementGrad(inPlace.map((s) => ({ ...s, hard: undefined, out: s.gradW })), [{ first: 0, count: 2, beta: 20 }]);
    inPlace.forEach((s, i) => expect(mismatches(s.gradW, want[i])).to.equal(0));
  });

  it('bad input: named, coded, and out untouched', () => {
    const call = (edit: (s: Seg[]) => void, beta = 10, outOf?: (s: Seg[]) => Float32Array) => {
      const segs = [randomSeg(40), randomSeg(1003)];
      edit(segs);
      const outs: Float32Array[] = segs.map((s) => new Float32Array(s.theta.length).fill(7));
      if (outOf) outs[1] = outOf(segs);
      const keep = outs.map((o) => o.slice());
      let err: unknown;
      try {
        native.spartanElementGrad(segs.map((s, i) => ({ ...s, out: outs[i] })), [{ first: 0, count: 2, beta }]);
      } catch (e) {
        err = e;
      }
      if (!outOf) outs.forEach((o, i) => expect(mismatches(o, keep[i]), 'out untouched').to.equal(0));
      return err as Error & { code?: string };
    };
    const cases: [string, (s: Seg[]) => void, string, string][] = [
      ['NaN theta', (s) => (s[1].theta[997] = NaN), 'ERR_SPARTAN_NON_FINITE', 'segments[1].theta[997]'],
      ['Inf gradW', (s) => (s[1].gradW[5] = Infinity), 'ERR_SPARTAN_NON_FINITE', 'segments[1].gradW[5]'],
      ['mask above 1', (s) => (s[0].mask[12] = 1.5), 'ERR_SPARTAN_MASK_RANGE', 'segments[0].mask[12]'],
      ['NaN mask', (s) => (s[1].mask[1002] = NaN), 'ERR_SPARTAN_NON_FINITE', 'segments[1].mask[1002]'],
    ];
    for (const [what, edit, code, where] of cases) {
      const e = call(edit);
      expect(e?.code, what).to.equal(code);
      expect(e.message, what).to.contain(where);
    }
    expect(call(() => {}, 0)?.code, 'beta 0').to.equal('ERR_SPARTAN_BETA');
    expect(call(() => {}, NaN)?.code, 'beta NaN').to.equal('ERR_SPARTAN_BETA');
    expect(call(() => {}, 10, (s) => s[1].theta)?.code, 'out = theta').to.equal('ERR_SPARTAN_ALIAS');
    expect(call(() => {}, 10, (s) => s[1].mask)?.code, 'out = mask').to.equal('ERR_SPARTAN_ALIAS');
    expectCode(() => native.spartanElementGrad([{ ...randomSeg(8), theta: new Float32Array(7), out: new Float32Array(8) }], [{ first: 0, count: 1, beta: 1 }]), RangeError, 'ERR_SPARTAN_LENGTH');
    expectCode(() => native.spartanElementGrad([{ ...randomSeg(8), hard: new Uint8Array(9), out: new Float32Array(8) }], [{ first: 0, count: 1, beta: 1 }]), RangeError, 'ERR_SPARTAN_LENGTH');
    expectCode(() => native.spartanElementGrad([{ ...randomSeg(8), theta: new Float64Array(8) as never, out: new Float32Array(8) }], [{ first: 0, count: 1, beta: 1 }]), TypeError, 'ERR_SPARTAN_TYPE');
  });

  it('returns sum(out^2) per segment (float64 reference) and checks what it wrote: an overflow is named', () => {
    const segs = [randomSeg(70001), randomSeg(13), randomSeg(40000)];
    const outs = segs.map((s) => new Float32Array(s.theta.length));
    const sums = native.spartanElementGrad(segs.map((s, i) => ({ ...s, out: outs[i] })), [{ first: 0, count: 3, beta: 40 }]);
    expect(sums).to.be.instanceOf(Float64Array).with.length(3);
    outs.forEach((o, i) => {
      const want = o.reduce((acc, x) => acc + x * x, 0);
      expect(Math.abs(sums[i] - want), `segment ${i}`).to.be.at.most(1e-6 * want); // squares taken in float
    });
    // finite inputs whose gradient overflows float32 in one entry: g = G' theta = 3e38 is
    // finite, but beta m (1 - m) (g - s) = 40 * 0.25 * ~3e38 is not. The kernel must not hand
    // that on as a gradient, and names the entry.
    const big = [randomSeg(100), randomSeg(5000)];
    big[1].gradW[4321] = 3e38;
    big[1].theta[4321] = 1;
    big[1].mask[4321] = 0.5;
    const out = big.map((s) => new Float32Array(s.theta.length));
    try {
      native.spartanElementGrad(big.map((s, i) => ({ ...s, hard: undefined, out: out[i] })), [{ first: 0, count: 1, beta: 40 }, { first: 1, count: 1, beta: 40 }]);
      expect.fail('did not throw');
    } catch (e) {
      expect((e as { code?: string }).code).to.equal('ERR_SPARTAN_NON_FINITE');
      expect((e as Error).message).to.match(/^segments\[1\]\.out\[4321\] is inf/i);
    }
    expect(out[1].filter((x) => !Number.isFinite(x)).length, 'one entry overflowed').to.equal(1);
    // a huge but finite output (its float square overflows): no error, the sum in double
    const huge = [randomSeg(3000)];
    huge[0].gradW[7] = 1e20;
    huge[0].mask[7] = 1; // m (1 - m) = 0: out = G' m = 1e20
    const hugeOut = new Float32Array(3000);
    const hugeSums = native.spartanElementGrad([{ ...huge[0], hard: undefined, out: hugeOut }], [{ first: 0, count: 1, beta: 40 }]);
    const want = hugeOut.reduce((acc, x) => acc + x * x, 0);
    expect(hugeOut[7]).to.equal(Math.fround(1e20));
    expect(Math.abs(hugeSums[0] - want)).to.be.at.most(1e-12 * want);
  });

  it('maskUpstream (the block layers\' path) names a bad gradW as gradW, element and block tiles', () => {
    for (const [b0, b1] of [[1, 1], [4, 4]]) {
      const gw = new Float32Array(64).fill(1);
      gw[37] = NaN;
      try {
        native.maskUpstream(gw, new Float32Array(64).fill(1), 8, 8, b0, b1, new Float32Array(64 / (b0 * b1)));
        expect.fail('did not throw');
      } catch (e) {
        expect((e as { code?: string }).code).to.equal('ERR_SPARTAN_NON_FINITE');
        expect((e as Error).message, `${b0}x${b1}`).to.contain('gradW[37]');
      }
    }
  });

  it('the Sparsifier takes the fused path for element layers: its gradient equals the composite kernels', () => {
    const shapes = [[30, 20], [10, 30]];
    const params = shapes.map(([r, c], i) => ({ name: `w${i}`, shape: [r, c], data: Float32Array.from({ length: r * c }, () => 0.1 * normal(rand)) }));
    const sp = new spartan.Sparsifier({ params, method: 'spartan', density: 0.2, totalSteps: 100, betaMax: 50 });
    for (let i = 0; i < 30; i++) sp.step(); // into the pruning phase: soft masks in (0, 1)
    const gradW = Object.fromEntries(params.map((p) => [p.name, Float32Array.from(p.data, () => normal(rand))]));
    const got = sp.backward(gradW);
    const st = sp.stats();
    expect(st.phase).to.equal('anneal');
    const layers = (sp as unknown as { sparse: { theta: Float32Array; mask: Float32Array; hard: Uint8Array }[] }).sparse;
    const want = composite(layers.map((l, i) => ({ gradW: gradW[params[i].name], theta: l.theta, mask: l.mask, hard: l.hard })), st.beta, true);
    params.forEach((p, i) => expect(mismatches(got[p.name], want[i]), p.name).to.equal(0));
    // what it checked, for the optimizer: sum(out^2) of each output
    params.forEach((p) => {
      const sq = got[p.name].reduce((acc, x) => acc + x * x, 0);
      expect(Math.abs(sp.checkedSumSquares.get(p.name)! - sq), p.name).to.be.at.most(1e-6 * sq);
    });
    // an overflow in the fused kernel is an error naming the tensor, before any optimizer runs
    const huge = Object.fromEntries(params.map((p) => [p.name, new Float32Array(p.data.length).fill(3e38)]));
    layers[0].theta.fill(10);
    expect(() => sp.backward(huge)).to.throw(/the Spartan gradient of theta\["w0"\]\[\d+\]/);
    expect(sp.checkedSumSquares.size, 'nothing vouched for after an error').to.equal(0);
  });
});
