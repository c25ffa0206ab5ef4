// topKMask against a sort-based reference: exactly k, ties to the lower index.
import { expect } from 'chai';
import * as spartan from '../lib/index';
import { freshSeed, normal, rng, sum, topKRef } from './reference';

const seed = freshSeed();
const rand = rng(seed);

describe(`topKMask (seed ${seed})`, () => {
  it('keeps exactly the top k on random inputs (sizes, k, negative values)', () => {
    for (const n of [1, 2, 9, 1000, 70000, 300001]) {
      const v = Float32Array.from({ length: n }, () => normal(rand));
      for (const k of [0, 1, Math.floor(n / 3), n - 1, n].filter((x) => x >= 0)) {
        const got = spartan.topKMask(v, k);
        expect(sum(got), `n=${n} k=${k}`).to.equal(k);
        expect(Buffer.from(got).equals(Buffer.from(topKRef(v, k))), `n=${n} k=${k}`).to.equal(true);
      }
    }
  });

  it('breaks ties toward the lower index, including heavy ties and +-0', () => {
    const v = Float32Array.from({ length: 100000 }, () => Math.floor(rand() * 5));
    for (const k of [1, 19999, 20000, 20001, 50000]) {
      expect(Buffer.from(spartan.topKMask(v, k)).equals(Buffer.from(topKRef(v, k))), `k=${k}`).to.equal(true);
    }
    expect(Array.from(spartan.topKMask(Float32Array.of(0, -0, 0, -0, -1), 3))).to.deep.equal([1, 1, 1, 0, 0]);
    expect(Array.from(spartan.topKMask(new Float32Array(6).fill(2), 4))).to.deep.equal([1, 1, 1, 1, 0, 0]);
  });

  it('with costs keeps the shortest prefix (by v / c) whose cost reaches k', () => {
    for (const n of [5, 1000, 65537]) {
      const v = Float32Array.from({ length: n }, () => Math.abs(normal(rand)));
      const c = Float32Array.from({ length: n }, () => 1 + Math.floor(rand() * 4));
      for (const frac of [0.05, 0.5, 0.99]) {
        const k = frac * sum(c);
        expect(Buffer.from(spartan.topKMask(v, k, { costs: c })).equals(Buffer.from(topKRef(v, k, c))), `n=${n} k=${k}`).to.equal(true);
      }
    }
    expect(Array.from(spartan.topKMask(Float32Array.of(4, 1, 3, 2), 2.5))).to.deep.equal([1, 0, 1, 1]); // ceil(2.5) = 3 kept
  });

  it('a global budget over segments equals the top k of the concatenation (mixed uniform costs)', () => {
    const parts = [1000, 5, 40000].map((n) => Float32Array.from({ length: n }, () => Math.abs(normal(rand))));
    const costs = [1, 16, 4];
    const cat = Float32Array.from(parts.flatMap((p) => Array.from(p)));
    const ccat = Float32Array.from(parts.flatMap((p, i) => Array.from(p, () => costs[i])));
    const k = 0.1 * sum(ccat);
    const masks = spartan.topKMaskSegmented(parts.map((values, i) => ({ values, costs: costs[i] })), k);
    const ref = topKRef(cat, k, ccat);
    expect(Buffer.from(Uint8Array.from(masks.flatMap((m) => Array.from(m)))).equals(Buffer.from(ref))).to.equal(true);
    const per = spartan.topKMaskSegmented(parts.map((values) => ({ values })), [10, 2, 400]);
    expect(per.map((m) => sum(m))).to.deep.equal([10, 2, 400]);
  });
});
