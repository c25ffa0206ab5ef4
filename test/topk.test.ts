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

  // Uniform whole-number costs take the sampled-band path (native/cpu/hard_topk_counted.cpp);
  // a per-entry costs array of the same numbers takes the radix path. Both must equal the sort.
  it('the sampled-band path equals the radix path and the sort on many value distributions', () => {
    const n = 70001;
    const shapes: Record<string, (i: number) => number> = {
      normal: () => normal(rand),
      magnitudes: () => Math.abs(normal(rand)) * 1e-3,
      'five values': () => Math.floor(rand() * 5),
      'all equal': () => 0.25,
      ascending: (i) => i,
      descending: (i) => -i,
      '+-0 and ones': (i) => (i % 3 === 0 ? 1 : i % 3 === 1 ? 0 : -0),
      'periodic at the sampling stride': (i) => (i % 17 === 0 ? 0 : 1 + rand()), // the sample sees only zeros: the band misses
    };
    for (const [name, f] of Object.entries(shapes)) {
      const v = Float32Array.from({ length: n }, (_, i) => f(i));
      for (const k of [1, 7, Math.floor(n / 20), Math.floor(n / 2), n - 3, n - 1]) {
        const fast = spartan.topKMask(v, k);
        const radix = spartan.topKMask(v, k, { costs: new Float32Array(n).fill(1) });
        const ref = topKRef(v, k);
        expect(Buffer.from(fast).equals(Buffer.from(ref)), `${name}: k=${k} (band path)`).to.equal(true);
        expect(Buffer.from(radix).equals(Buffer.from(ref)), `${name}: k=${k} (radix path)`).to.equal(true);
      }
    }
  });

  it('block-sized uniform costs: the fewest entries whose cost reaches k, per segment and global', () => {
    const parts = [5000, 300, 12000].map((n) => Float32Array.from({ length: n }, () => Math.abs(normal(rand))));
    for (const k of [1, 255, 256, 257, 256 * 1000 + 3]) {
      const masks = spartan.topKMaskSegmented(parts.map((values) => ({ values, costs: 256 })), k);
      const cat = Float32Array.from(parts.flatMap((p) => Array.from(p)));
      const ref = topKRef(cat, k, new Float32Array(cat.length).fill(256));
      expect(Buffer.from(Uint8Array.from(masks.flatMap((m) => Array.from(m)))).equals(Buffer.from(ref)), `k=${k}`).to.equal(true);
    }
    const per = spartan.topKMaskSegmented(parts.map((values) => ({ values, costs: 16 })), [16 * 40 + 1, 0, 16 * 12000]);
    expect(per.map((m) => sum(m))).to.deep.equal([41, 0, 12000]);
    per.forEach((m, i) => expect(Buffer.from(m).equals(Buffer.from(topKRef(parts[i], [41, 0, 12000][i]))), `segment ${i}`).to.equal(true));
  });

  it('a NaN the sample does not see is still reported, with out untouched', () => {
    const n = 100000;
    const v = Float32Array.from({ length: n }, () => normal(rand));
    v[n - 2] = NaN; // the strided sample skips it (the last sample is at n - n / s)
    const out = new Uint8Array(n).fill(7);
    let err: unknown;
    try {
      spartan.topKMask(v, 10, { out });
    } catch (e) {
      err = e;
    }
    expect((err as { code?: string })?.code).to.equal('ERR_SPARTAN_NON_FINITE');
    expect(String((err as Error).message)).to.contain(String(n - 2));
    expect(out.every((x) => x === 7)).to.equal(true);
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
