// softTopK against the float64 reference on fresh random inputs, its properties,
// saturation, edges and the segmented and async forms.
import { expect } from 'chai';
import * as spartan from '../lib/index';
import { expectClose } from './helpers';
import { freshSeed, maxAbsDiff, normal, rng, softTopKRef, sum } from './reference';

const seed = freshSeed();
const rand = rng(seed);
const halfNormal = (n: number, scale = 1) => Float32Array.from({ length: n }, () => Math.abs(normal(rand)) * scale);
const costsOf = (n: number) => Float32Array.from({ length: n }, () => 1 + Math.floor(rand() * 3));
// The contract: |sum c m - k| <= 1e-3 + 1e-6 sum c.
const massTol = (total: number) => 1e-3 + 1e-6 * total;

describe(`softTopK properties (seed ${seed})`, () => {
  it('matches the float64 solution within 1e-4 and sum(c m) = k, for sizes, budgets, betas and costs', () => {
    for (const n of [1, 2, 7, 33, 1000, 5000, 70001]) {
      for (const withCosts of [false, true]) {
        const v = Float32Array.from({ length: n }, () => normal(rand));
        const c = withCosts ? costsOf(n) : undefined;
        const total = c ? sum(c) : n;
        for (const frac of [0.01, 0.1, 0.5, 0.93]) {
          for (const beta of [0.1, 1, 10, 100, 1000]) {
            const k = frac * total;
            const r = spartan.softTopK(v, k, beta, { costs: c });
            const ref = softTopKRef(v, k, beta, c);
            const where = `n=${n} costs=${withCosts} k=${k} beta=${beta}`;
            expect(maxAbsDiff(r.mask, ref.mask), where).to.be.at.most(1e-4);
            expect(Math.abs(sum(r.mask, c) - k), where).to.be.at.most(massTol(total));
            expect(r.converged, where).to.equal(true);
          }
        }
      }
    }
  });

  it('is permutation equivariant', () => {
    const n = 4097;
    const v = halfNormal(n), c = costsOf(n);
    const perm = Array.from({ length: n }, (_, i) => i).sort(() => rand() - 0.5);
    const a = spartan.softTopK(v, 300, 20, { costs: c }).mask;
    const b = spartan.softTopK(Float32Array.from(perm, (p) => v[p]), 300, 20, { costs: Float32Array.from(perm, (p) => c[p]) }).mask;
    expect(maxAbsDiff(Float32Array.from(perm, (p) => a[p]), b)).to.be.at.most(2e-6);
  });

  it('is invariant to v -> v + t c (shift), and m(v, beta) = m(s v, beta / s) (scale)', () => {
    const n = 3000;
    const v = Float32Array.from({ length: n }, () => normal(rand));
    const c = costsOf(n);
    const base = spartan.softTopK(v, 900, 3, { costs: c }).mask;
    const shifted = spartan.softTopK(Float32Array.from(v, (x, i) => x + 2.5 * c[i]), 900, 3, { costs: c }).mask;
    expect(maxAbsDiff(base, shifted)).to.be.at.most(1e-5);
    const scaled = spartan.softTopK(Float32Array.from(v, (x) => x * 4), 900, 3 / 4, { costs: c }).mask;
    expect(maxAbsDiff(base, scaled)).to.be.at.most(1e-5);
  });

  it('is monotone in the unit value', () => {
    const n = 10000;
    const v = Float32Array.from({ length: n }, () => normal(rand));
    const m = spartan.softTopK(v, 1234, 7).mask;
    const order = Array.from({ length: n }, (_, i) => i).sort((a, b) => v[a] - v[b]);
    for (let j = 1; j < n; j++) expect(m[order[j]]).to.be.at.least(m[order[j - 1]]);
  });

  it('tends to k / sum(c) as beta -> 0 and to the hard top-k as beta -> inf', () => {
    const n = 5000;
    const v = halfNormal(n);
    const small = spartan.softTopK(v, 500, 1e-6).mask;
    for (const x of small) expect(x).to.be.closeTo(0.1, 1e-5);
    const hard = spartan.topKMask(v, 500);
    const sharp = spartan.softTopK(v, 500, 1e7).mask;
    expect(maxAbsDiff(sharp, hard)).to.be.at.most(1e-3);
  });

  it('stays finite with sum(m) = k at beta = 1e4 and 1e8, with a finite backward', () => {
    for (const beta of [1e4, 1e8]) {
      for (const n of [4, 1000, 100000]) {
        const v = halfNormal(n);
        const k = Math.max(1, Math.floor(n / 10));
        const r = spartan.softTopK(v, k, beta);
        for (const x of r.mask) expect(Number.isFinite(x)).to.equal(true);
        expect(Math.abs(sum(r.mask) - k), `beta=${beta} n=${n}`).to.be.at.most(massTol(n));
        const g = spartan.softTopKBackward(r.mask, Float32Array.from({ length: n }, () => normal(rand)), beta);
        for (const x of g) expect(Number.isFinite(x)).to.equal(true);
      }
    }
  });

  it('warm-starts from a previous lambda to the same answer', () => {
    const v = halfNormal(200000);
    const cold = spartan.softTopK(v, 20000, 50);
    const warm = spartan.softTopK(v, 20000, 50, { lambda: cold.lambda * 1.02 });
    expect(maxAbsDiff(cold.mask, warm.mask)).to.be.at.most(1e-5);
    const exact = spartan.softTopK(v, 20000, 50, { lambda: cold.lambda });
    expect(exact.iterations).to.be.at.most(2);
  });
});

describe('softTopK edges', () => {
  it('n = 1: the mask is k / c', () => {
    expectClose(spartan.softTopK(Float32Array.of(3), 0.25, 5).mask, [0.25], 1e-7);
    expectClose(spartan.softTopK(Float32Array.of(-3), 1.5, 5, { costs: 2 }).mask, [0.75], 1e-7);
  });

  it('k = 0 gives all zeros and k = total cost all ones, with infinite lambda', () => {
    const v = halfNormal(100);
    const zero = spartan.softTopK(v, 0, 3);
    expect(Array.from(zero.mask).every((x) => x === 0)).to.equal(true);
    expect(zero.lambda).to.equal(-Infinity);
    const all = spartan.softTopK(v, 100, 3);
    expect(Array.from(all.mask).every((x) => x === 1)).to.equal(true);
    expect(all.lambda).to.equal(Infinity);
    const allCosted = spartan.softTopK(v, 250, 3, { costs: 2.5 });
    expect(Array.from(allCosted.mask).every((x) => x === 1)).to.equal(true);
  });

  it('handles fractional k, ties, all-equal values, +-0 and denormals', () => {
    const frac = spartan.softTopK(halfNormal(1000), 12.34, 30);
    expect(sum(frac.mask)).to.be.closeTo(12.34, 1e-4);
    const ties = Float32Array.of(1, 2, 2, 2, 3);
    const t = spartan.softTopK(ties, 2, 1e6).mask;
    expectClose(t, [0, 1 / 3, 1 / 3, 1 / 3, 1], 1e-5, 'ties share the remaining budget');
    const equal = spartan.softTopK(new Float32Array(999).fill(0.7), 333, 1e8).mask;
    for (const x of equal) expect(x).to.be.closeTo(1 / 3, 1e-6);
    const zeros = spartan.softTopK(Float32Array.of(0, -0, 0, -0), 1, 10).mask;
    expectClose(zeros, [0.25, 0.25, 0.25, 0.25], 1e-7, '+-0');
    const den = Float32Array.of(1e-45, 2e-45, 1e-40, 0, 1.1754942e-38);
    const d = spartan.softTopK(den, 2, 1).mask;
    expectClose(d, [0.4, 0.4, 0.4, 0.4, 0.4], 1e-6, 'denormals');
    const dsharp = spartan.softTopK(den, 2, 1e300).mask;
    expect(sum(dsharp)).to.be.closeTo(2, 1e-4);
    // beta * |u| beyond 1e300: Newton's arguments would overflow (ERR_SPARTAN_BETA, errors.test.ts),
    // but the closed forms do not: all values equal (centred), and k = 0 while beta * |u| is finite
    expectClose(spartan.softTopK(Float32Array.of(2, 2, 2, 2), 2, 1e300).mask, [0.5, 0.5, 0.5, 0.5], 1e-7, 'equal values, beta 1e300');
    expectClose(spartan.softTopK(Float32Array.of(1, 2, 3, 4), 0, 1e305).mask, [0, 0, 0, 0], 0, 'k = 0, beta 1e305');
  });

  it('solves n = 2^24 + 3 against the float64 reference', function () {
    this.timeout(300000);
    const n = 2 ** 24 + 3;
    const v = new Float32Array(n);
    for (let i = 0; i < n; i++) v[i] = Math.abs(normal(rand));
    const k = Math.floor(n / 10);
    const r = spartan.softTopK(v, k, 30);
    expect(Math.abs(sum(r.mask) - k)).to.be.at.most(massTol(n));
    expect(r.passes).to.be.at.most(4);
    // check the lambda against a float64 evaluation of F at lambda +- 1e-4
    const F = (lam: number) => {
      let s = -k;
      for (let i = 0; i < n; i++) s += 1 / (1 + Math.exp(-(30 * v[i] + lam)));
      return s;
    };
    expect(F(r.lambda - 1e-4)).to.be.below(0);
    expect(F(r.lambda + 1e-4)).to.be.above(0);
    for (const i of [0, 1, n >> 1, n - 2, n - 1]) expect(r.mask[i]).to.be.closeTo(1 / (1 + Math.exp(-(30 * v[i] + r.lambda))), 1e-6);
  });
});

describe('softTopK mask updates (Newton passes near the last written mask)', () => {
  it('a solve that ends in mask updates gives sigma(beta v + lambda) within 1e-6 everywhere, and sum = k', () => {
    const n = 60000;
    for (const [beta, costs] of [[1, undefined], [30, undefined], [300, undefined], [30, 4]] as const) {
      const v = Float32Array.from({ length: n }, () => Math.abs(normal(rand)));
      const k = Math.floor(n / 20) * (costs ?? 1);
      const cold = spartan.softTopK(v, k, beta, costs ? { costs } : undefined);
      // starts 1e-3 and 0.3 away: within the update radius, so the later passes update the mask
      for (const offset of [1e-3, 0.3]) {
        const r = spartan.softTopK(v, k, beta, { lambda: cold.lambda + offset, ...(costs ? { costs } : {}) });
        const where = `beta ${beta}, costs ${costs ?? 1}, offset ${offset}`;
        expect(r.converged, where).to.equal(true);
        expect(r.passes, where).to.be.at.least(3); // validation, a full evaluation, then updates
        expect(Math.abs(sum(r.mask) * (costs ?? 1) - k), where).to.be.at.most(massTol(n * (costs ?? 1)));
        let worst = 0;
        for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(r.mask[i] - 1 / (1 + Math.exp(-((beta * v[i]) / (costs ?? 1) + r.lambda)))));
        expect(worst, where).to.be.at.most(1e-6);
        expect(maxAbsDiff(r.mask, cold.mask), where).to.be.at.most(1e-5);
      }
    }
  });
});

describe('softTopK segmented', () => {
  const sizes = [5000, 17, 130000, 1];
  const segs = () => sizes.map((n) => ({ values: Float32Array.from({ length: n }, () => normal(rand)) }));

  it('a global budget equals one solve over the concatenation', () => {
    const s = segs();
    const costs = [1, 4, 1, 2];
    const concat = new Float32Array(sizes.reduce((a, b) => a + b));
    const ccat = new Float32Array(concat.length);
    let off = 0;
    s.forEach((x, i) => {
      concat.set(x.values, off);
      ccat.fill(costs[i], off, off + x.values.length);
      off += x.values.length;
    });
    const k = 0.2 * sum(ccat);
    const g = spartan.softTopKSegmented(s.map((x, i) => ({ ...x, costs: costs[i] })), k, 15);
    const one = spartan.softTopK(concat, k, 15, { costs: ccat });
    expect(g.lambda).to.be.closeTo(one.lambda, 1e-6 * Math.max(1, Math.abs(one.lambda)));
    off = 0;
    g.masks.forEach((m) => {
      expect(maxAbsDiff(m, one.mask.subarray(off, off + m.length))).to.be.at.most(1e-6);
      off += m.length;
    });
  });

  it('per-segment budgets equal separate solves', () => {
    const s = segs();
    const ks = sizes.map((n) => 0.3 * n);
    const betas = [1, 10, 100, 5];
    const r = spartan.softTopKSegmented(s, ks, betas);
    expect(r.lambda).to.have.length(4);
    s.forEach((x, i) => {
      const one = spartan.softTopK(x.values, ks[i], betas[i]);
      expect(maxAbsDiff(r.masks[i], one.mask)).to.be.at.most(1e-6);
      expect(r.lambda[i]).to.be.closeTo(one.lambda, 1e-6 * Math.max(1, Math.abs(one.lambda)));
    });
  });

  it('the segmented backward couples segments through one s (global) or not (per segment)', () => {
    const s = segs();
    const fwd = spartan.softTopKSegmented(s, 20000, 3);
    const grads = s.map((x) => Float32Array.from(x.values, () => normal(rand)));
    const out = spartan.softTopKBackwardSegmented(fwd.masks.map((m, i) => ({ mask: m, gradMask: grads[i] })), 3);
    const catMask = Float32Array.from(fwd.masks.flatMap((m) => Array.from(m)));
    const catGrad = Float32Array.from(grads.flatMap((g) => Array.from(g)));
    const one = spartan.softTopKBackward(catMask, catGrad, 3);
    expect(maxAbsDiff(Float32Array.from(out.flatMap((g) => Array.from(g))), one)).to.be.at.most(1e-6);
    const per = spartan.softTopKBackwardSegmented(fwd.masks.map((m, i) => ({ mask: m, gradMask: grads[i] })), [3, 3, 3, 3]);
    per.forEach((g, i) => expect(maxAbsDiff(g, spartan.softTopKBackward(fwd.masks[i], grads[i], 3))).to.be.at.most(1e-7));
  });
});

describe('async variants', () => {
  it('resolve to the same results as the sync calls', async () => {
    const v = halfNormal(50000);
    const sync = spartan.softTopK(v, 5000, 12);
    const asy = await spartan.softTopKAsync(v, 5000, 12);
    expect(Array.from(asy.mask)).to.deep.equal(Array.from(sync.mask));
    expect(asy.lambda).to.equal(sync.lambda);
    const g = halfNormal(50000);
    expect(Array.from(await spartan.softTopKBackwardAsync(sync.mask, g, 12))).to.deep.equal(Array.from(spartan.softTopKBackward(sync.mask, g, 12)));
    expect(Array.from(await spartan.topKMaskAsync(v, 777))).to.deep.equal(Array.from(spartan.topKMask(v, 777)));
    const seg = await spartan.softTopKSegmentedAsync([{ values: v }], 5000, 12);
    expect(seg.lambda).to.equal(sync.lambda);
  });

  it('keep the event loop running while a large solve is in flight', async function () {
    this.timeout(120000);
    const v = halfNormal(1 << 24);
    const gaps: number[] = [];
    let last = performance.now();
    const timer = setInterval(() => {
      const now = performance.now();
      gaps.push(now - last);
      last = now;
    }, 1);
    const t0 = performance.now();
    await spartan.softTopKAsync(v, 1 << 20, 10);
    await spartan.topKMaskAsync(v, 1 << 20);
    const elapsed = performance.now() - t0;
    clearInterval(timer);
    // The timer kept firing throughout: many ticks, and no gap near the whole duration.
    expect(gaps.length, `ticks during ${elapsed.toFixed(0)} ms`).to.be.at.least(10);
    expect(Math.max(...gaps)).to.be.below(Math.max(50, elapsed / 2));
  });
});

describe('views into one buffer', () => {
  it('accepts subarray views (byte offsets) as segments and outputs, and detects overlapping views', () => {
    const flat = Float32Array.from({ length: 3000 }, (_, i) => Math.abs(Math.sin(i * 1.7)));
    const outFlat = new Float32Array(3000);
    const segs = [0, 1000, 2500].map((start, i, a) => ({
      values: flat.subarray(start, a[i + 1] ?? 3000),
      out: outFlat.subarray(start, a[i + 1] ?? 3000),
    }));
    const r = spartan.softTopKSegmented(segs, 300, 8);
    const one = spartan.softTopK(flat.slice(), 300, 8);
    expect(maxAbsDiff(outFlat, one.mask)).to.be.at.most(1e-6);
    expect(r.masks[1]).to.equal(segs[1].out);
    // an output view overlapping a values view of another segment is rejected, nothing written
    const shared = new Float32Array(2000).fill(0.5);
    const before = shared.slice();
    let code: string | undefined;
    try {
      spartan.softTopKSegmented([{ values: shared.subarray(0, 1000) }, { values: new Float32Array(10), out: shared.subarray(990, 1000) }], 5, 1);
    } catch (e) {
      code = (e as { code?: string }).code;
    }
    expect(code).to.equal('ERR_SPARTAN_ALIAS');
    expect(Array.from(shared)).to.deep.equal(Array.from(before));
  });
});
