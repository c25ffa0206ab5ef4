// The worked examples of ../shared/spec/spartan-algorithm.md §9 that apply to the exact operator.
import { expect } from 'chai';
import * as spartan from '../lib/index';
import { expectClose } from './helpers';
import { centralDifferences, softTopKRef, sum } from './reference';

const f32 = (a: number[]) => Float32Array.from(a);

describe('spec worked examples (exact operator)', () => {
  it('A: v = [1,2,3,4], k = 2, beta = 1', () => {
    const r = spartan.softTopK(f32([1, 2, 3, 4]), 2, 1);
    expectClose(r.mask, [0.182426, 0.377541, 0.622459, 0.817574], 1e-6, 'mask');
    expect(r.lambda).to.be.closeTo(-2.5, 1e-6);
    expect(sum(r.mask)).to.be.closeTo(2, 1e-6);
  });

  it('B: VJP at the exact mask of A, and its full Jacobian rows', () => {
    const { mask } = spartan.softTopK(f32([1, 2, 3, 4]), 2, 1);
    expectClose(spartan.softTopKBackward(mask, f32([0, 0, 0, 1]), 1), [-0.028953, -0.04562, -0.04562, 0.120193], 2e-6, 'VJP(e4)');
    expectClose(spartan.softTopKBackward(mask, f32([1, 1, 1, 1]), 1), [0, 0, 0, 0], 1e-7, 'VJP(1)');
    expectClose(spartan.softTopKBackward(mask, f32([1, 2, 3, 4]), 1), [-0.22372, -0.117502, 0.117502, 0.22372], 2e-6, 'VJP(v)');
    expectClose(spartan.softTopKBackward(mask, f32([1, 0, 0, 0]), 1), [0.120193, -0.04562, -0.04562, -0.028953], 2e-6, 'row 1');
    expectClose(spartan.softTopKBackward(mask, f32([0, 1, 0, 0]), 1), [-0.04562, 0.163122, -0.071882, -0.04562], 2e-6, 'row 2');
  });

  it('C: non-unit costs c = [1,1,2,2], k = 3, beta = 2', () => {
    const costs = f32([1, 1, 2, 2]);
    const r = spartan.softTopK(f32([4, 1, 6, 3]), 3, 2, { costs });
    expectClose(r.mask, [0.968718, 0.071289, 0.80736, 0.172637], 1e-6, 'mask');
    expect(r.lambda).to.be.closeTo(-4.567055, 1e-5);
    expect(sum(r.mask, costs)).to.be.closeTo(3, 1e-6);
    const g = spartan.softTopKBackward(r.mask, f32([1, 0, 0, 0]), 2, { costs });
    expectClose(g, [0.057957, -0.005788, -0.013597, -0.012487], 2e-6, 'VJP(e1)');
    expect(sum(g, costs)).to.be.closeTo(0, 1e-7);
  });

  it('D: v = (1..10)/10, k = 3, beta = 5: mask, hard mask, VJP, fractional budget', () => {
    const v = f32([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]);
    const r = spartan.softTopK(v, 3, 5);
    expectClose(r.mask, [0.030184, 0.048809, 0.078003, 0.122411, 0.186973, 0.274921, 0.384664, 0.50755, 0.62953, 0.736955], 1e-6, 'mask');
    expect(r.lambda).to.be.closeTo(-3.969798, 1e-5);
    expect(Array.from(spartan.topKMask(v, 3))).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
    const g = f32(Array.from({ length: 10 }, (_, i) => -1 + (2 * i) / 9));
    expectClose(spartan.softTopKBackward(r.mask, g, 5), [-0.190378, -0.250354, -0.307907, -0.340565, -0.313015, -0.188974, 0.038607, 0.318482, 0.556311, 0.677793], 3e-6, 'VJP');
    // K = 3.5: the shortest prefix reaching the budget keeps 4; at beta = 1000 the 4th largest is 0.5.
    expect(Array.from(spartan.topKMask(v, 3.5))).to.deep.equal([0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
    expectClose(spartan.softTopK(v, 3.5, 1000).mask, [0, 0, 0, 0, 0, 0, 0.5, 1, 1, 1], 1e-5, 'beta=1000 mask');
  });

  it('E: beta sweep on v = [0.1,0.5,0.2,0.9,0.3,0.7], k = 3', () => {
    const v = f32([0.1, 0.5, 0.2, 0.9, 0.3, 0.7]);
    const expected: Record<number, number[]> = {
      1: [0.413533, 0.512652, 0.437976, 0.610786, 0.462724, 0.562329],
      10: [0.039498, 0.691855, 0.100544, 0.991908, 0.233045, 0.94315],
      100: [0, 0.999955, 0, 1, 0.000045, 1],
      1000: [0, 1, 0, 1, 0, 1],
    };
    for (const [beta, m] of Object.entries(expected)) expectClose(spartan.softTopK(v, 3, Number(beta)).mask, m, 1e-6, `beta=${beta}`);
    // §9.5's beta -> 0 limit: m -> k/n. The spec's "0.499-0.501" is rounded; the exact
    // float64 mask spans 0.49888-0.50113 (0.5 + beta/4 * (v - mean v)).
    const small = spartan.softTopK(v, 3, 0.01).mask;
    expectClose(small, softTopKRef(v, 3, 0.01).mask, 1e-6, 'beta=0.01');
    for (const x of small) expect(x).to.be.within(0.4985, 0.5015);
  });

  it('F: the full Spartan gradient for theta = [1,-2,3,-4], L = sum(W), k = 2, beta = 1', () => {
    // dL/dtheta = G * m + sign(theta) * VJP(g), with G = 1 and g = G * theta.
    const theta = [1, -2, 3, -4];
    const { mask } = spartan.softTopK(f32(theta.map(Math.abs)), 2, 1);
    const hard = spartan.topKMask(f32(theta.map(Math.abs)), 2);
    expectClose(mask, [0.182426, 0.377541, 0.622459, 0.817574], 1e-6, 'm');
    expect(Array.from(hard)).to.deep.equal([0, 0, 1, 1]);
    const W = spartan.applyMask(f32(theta), mask, { hard });
    expectClose(W, [0, 0, 1.867378, -3.270298], 1e-6, 'W');
    const vjp = spartan.softTopKBackward(mask, f32(theta), 1);
    const grad = theta.map((t, i) => mask[i] + Math.sign(t) * vjp[i]);
    expectClose(grad, [0.372811, 0.782569, 1.392449, 1.372921], 2e-6, 'dL/dtheta');
    // ...and it is the derivative of sum(theta * m(|theta|)) (float64 reference, central differences)
    const L = (t: number[]) => sum(softTopKRef(t.map(Math.abs), 2, 1).mask, t);
    const fd = centralDifferences(L, theta, 1e-6);
    expectClose(grad, fd, 5e-6, 'finite differences');
  });

  it('G: 2x2 blocks of a 4x4 weight, keep 2 blocks at beta = 40', () => {
    const w = f32([0.9, -0.1, 0, 0.2, 0.3, 0.5, -0.4, 0.1, -0.2, 0.1, 0.8, -0.7, 0, 0.3, 0.6, 0.5]);
    const scores = spartan.blockScores(w, 4, 4, [2, 2]);
    expectClose(scores, [1.8, 0.7, 0.6, 2.6], 1e-6, 'block L1');
    const r = spartan.softTopK(scores, 8, 40, { costs: 4 });
    expectClose(r.mask, [0.995239, 0.003479, 0.001283, 0.999998], 1e-6, 'block mask');
    expect(sum(r.mask) * 4).to.be.closeTo(8, 1e-5);
    const full = spartan.expandBlockMask(r.mask, 4, 4, [2, 2]);
    expect(full[0]).to.equal(r.mask[0]);
    expect(full[3]).to.equal(r.mask[1]);
    expect(full[15]).to.equal(r.mask[3]);
  });

  it('J: saturation at beta = 1e4: finite mask with sum k, finite zero VJP', () => {
    const r = spartan.softTopK(f32([1, 2, 3, 4]), 2, 1e4);
    expectClose(r.mask, [0, 0, 1, 1], 1e-6, 'mask');
    expect(sum(r.mask)).to.be.closeTo(2, 1e-6);
    const g = spartan.softTopKBackward(r.mask, f32([0, 0, 1, 0]), 1e4);
    for (const x of g) {
      expect(Number.isFinite(x)).to.equal(true);
      expect(Math.abs(x)).to.be.below(1e-6);
    }
  });
});
