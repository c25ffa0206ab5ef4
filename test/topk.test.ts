// topKMask against a sort-based reference: exactly k, ties to the lower index.
import { expect } from 'chai';
import * as spartan from '../lib/index';
import { native, type NativeTopKResult } from '../lib/native';
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

  it('band hints (the Sparsifier\'s last-step band) change nothing but speed: held, missed, malformed, open, per group', () => {
    // native topKMask directly: the hint is an internal protocol between it and the Sparsifier
    const run = (segs: Float32Array[], k: number | number[], hints: ({ bandLo?: number; bandHi?: number; margin?: number } | undefined)[]) => {
      const outs = segs.map((v) => new Uint8Array(v.length).fill(7));
      const groups = Array.isArray(k) ? k.map((ki, i) => ({ first: i, count: 1, k: ki, ...hints[i] })) : [{ first: 0, count: segs.length, k, ...hints[0] }];
      const res = native.topKMask(segs.map((v, i) => ({ values: v, costs: 1, out: outs[i] })), groups, false, true) as NativeTopKResult[];
      return { outs, res };
    };
    const same = (a: Uint8Array[], b: Uint8Array[]) => a.every((x, i) => Buffer.from(x).equals(Buffer.from(b[i])));
    for (const dist of ['normal', 'ties', 'abs'] as const) {
      const draw = () => (dist === 'ties' ? Math.floor(rand() * 50) : dist === 'abs' ? Math.abs(normal(rand)) * 0.05 : normal(rand));
      const segs = [Float32Array.from({ length: 70001 }, draw), Float32Array.from({ length: 3000 }, draw)];
      const k = Math.floor(0.05 * 73001);
      const plain = run(segs, k, [undefined]);
      const first = run(segs, k, [{ margin: 100 }]);
      expect(same(first.outs, plain.outs), `${dist}: margin only`).to.equal(true);
      const { nextLo, nextHi } = first.res[0];
      expect(nextLo <= nextHi, `${dist}: suggested band ${nextLo}..${nextHi}`).to.equal(true);
      const t = plain.res[0].threshold;
      expect(nextLo <= t && t <= nextHi, `${dist}: band holds T`).to.equal(true);
      const held = run(segs, k, [{ bandLo: nextLo, bandHi: nextHi, margin: 100 }]);
      expect(held.res[0].hintHeld, `${dist}: hint held`).to.equal(true);
      expect(same(held.outs, plain.outs), `${dist}: held`).to.equal(true);
      // a step later: values moved a little, k moved by 50; last band still used or replaced
      const moved = segs.map((v) => v.map((x) => (dist === 'ties' ? x : x * (1 + 0.01 * normal(rand)))));
      const k2 = k + 50;
      expect(same(run(moved, k2, [{ bandLo: nextLo, bandHi: nextHi }]).outs, run(moved, k2, [undefined]).outs), `${dist}: moved`).to.equal(true);
      const misses: [string, number, number][] = [['above T', nextHi * 2 + 10, nextHi * 2 + 20], ['below T', -1e9, -1e8], ['a point', t + 1, t + 1], ['open', -Infinity, Infinity], ['lo > hi (ignored)', 1, 0], ['NaN (ignored)', NaN, 1]];
      for (const [what, lo, hi] of misses) {
        const r = run(segs, k, [{ bandLo: lo, bandHi: hi }]);
        expect(same(r.outs, plain.outs), `${dist}: ${what}`).to.equal(true);
        expect(r.res[0].kept, `${dist}: ${what} kept`).to.equal(plain.res[0].kept);
      }
      // per-segment budgets: one group held, the other missed
      const ks = [3500, 150];
      const perPlain = run(segs, ks, [undefined, undefined]);
      const b = run(segs, ks, [{ margin: 50 }, { margin: 50 }]).res;
      const mixed = run(segs, ks, [{ bandLo: b[0].nextLo, bandHi: b[0].nextHi }, { bandLo: 1e30, bandHi: 2e30 }]);
      expect(mixed.res[0].hintHeld && !mixed.res[1].hintHeld, `${dist}: per group`).to.equal(true);
      expect(same(mixed.outs, perPlain.outs), `${dist}: per group`).to.equal(true);
    }
  });

  it('native results report the threshold as the unit value v / c of the last kept entry, on every path', () => {
    const n = 20000;
    const v = Float32Array.from({ length: n }, () => normal(rand));
    const sorted = Array.from(v).sort((a, b) => b - a);
    for (const [what, cost] of [['band path, cost 1', 1], ['band path, cost 4', 4], ['radix path, cost 2.5', 2.5]] as const) {
      const k = 3001 * cost; // 3001 entries
      const [r] = native.topKMask([{ values: v, costs: cost, out: new Uint8Array(n) }], [{ first: 0, count: 1, k }], false, false) as NativeTopKResult[];
      expect(r.kept, what).to.equal(3001);
      expect(r.threshold, what).to.equal(sorted[3000] / cost);
    }
    const costs = Float32Array.from({ length: n }, (_, i) => 1 + (i % 3)); // per-entry costs: the 64-bit radix keys
    const unit = Array.from(v, (x, i) => x / costs[i]).sort((a, b) => b - a);
    const [r] = native.topKMask([{ values: v, costs, out: new Uint8Array(n) }], [{ first: 0, count: 1, k: 500 }], false, false) as NativeTopKResult[];
    expect(unit.slice(0, r.kept)).to.include(r.threshold);
    expect(r.threshold).to.equal(unit[r.kept - 1]);
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
