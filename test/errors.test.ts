// Bad input for every op and argument: a TypeError or RangeError with a stable
// code, thrown before any work, with `out` left untouched; async forms reject.
import { expect } from 'chai';
import * as spartan from '../lib/index';
import { codeOf, expectCode, expectRejectCode } from './helpers';

const f = (n: number, x = 1) => new Float32Array(n).fill(x);
const detached = () => {
  const a = new Float32Array(8);
  structuredClone(a.buffer, { transfer: [a.buffer] });
  return a;
};
const sentinel = (n: number) => new Float32Array(n).fill(7);
const untouched = (out: Float32Array | Uint8Array) => expect(Array.from(out).every((x) => x === 7), 'out untouched').to.equal(true);

type Case = [string, () => unknown, TypeErrorConstructor | RangeErrorConstructor, string];

describe('bad input', () => {
  const v = Float32Array.of(1, 2, 3, 4);
  const cases: Case[] = [
    // softTopK: values
    ['values as Float64Array', () => spartan.softTopK(new Float64Array(4) as never, 2, 1), TypeError, 'ERR_SPARTAN_TYPE'],
    ['values as a plain array', () => spartan.softTopK([1, 2, 3] as never, 2, 1), TypeError, 'ERR_SPARTAN_TYPE'],
    ['values undefined', () => spartan.softTopK(undefined as never, 2, 1), TypeError, 'ERR_SPARTAN_TYPE'],
    ['values detached', () => spartan.softTopK(detached(), 2, 1), TypeError, 'ERR_SPARTAN_DETACHED'],
    ['values with NaN', () => spartan.softTopK(Float32Array.of(1, NaN, 3), 1, 1), RangeError, 'ERR_SPARTAN_NON_FINITE'],
    ['values with Infinity', () => spartan.softTopK(Float32Array.of(1, Infinity), 1, 1), RangeError, 'ERR_SPARTAN_NON_FINITE'],
    // k
    ['k negative', () => spartan.softTopK(v, -1, 1), RangeError, 'ERR_SPARTAN_BUDGET'],
    ['k NaN', () => spartan.softTopK(v, NaN, 1), RangeError, 'ERR_SPARTAN_BUDGET'],
    ['k above sum(c)', () => spartan.softTopK(v, 4.5, 1), RangeError, 'ERR_SPARTAN_BUDGET'],
    ['k above sum(c) with costs', () => spartan.softTopK(v, 9, 1, { costs: 2 }), RangeError, 'ERR_SPARTAN_BUDGET'],
    ['k a string', () => spartan.softTopK(v, '2' as never, 1), TypeError, 'ERR_SPARTAN_TYPE'],
    // beta
    ['beta 0', () => spartan.softTopK(v, 2, 0), RangeError, 'ERR_SPARTAN_BETA'],
    ['beta negative', () => spartan.softTopK(v, 2, -1), RangeError, 'ERR_SPARTAN_BETA'],
    ['beta Infinity', () => spartan.softTopK(v, 2, Infinity), RangeError, 'ERR_SPARTAN_BETA'],
    ['beta NaN', () => spartan.softTopK(v, 2, NaN), RangeError, 'ERR_SPARTAN_BETA'],
    ['beta times the largest |value / cost| beyond 1e300 (the solver overflowed: a NaN mask)', () => spartan.softTopK(v, 2, 1e308), RangeError, 'ERR_SPARTAN_BETA'],
    ['a uniform cost below the smallest float32 (u = v / c overflowed: a NaN mask)', () => spartan.softTopK(v, 0, 5, { costs: 5e-324 }), RangeError, 'ERR_SPARTAN_COST'],
    ['topKMask: a uniform cost below the smallest float32', () => spartan.topKMask(v, 2, { costs: 1e-46 }), RangeError, 'ERR_SPARTAN_COST'],
    ['beta missing', () => (spartan.softTopK as (...a: unknown[]) => unknown)(v, 2), TypeError, 'ERR_SPARTAN_TYPE'],
    // costs
    ['costs of the wrong length', () => spartan.softTopK(v, 2, 1, { costs: f(3) }), RangeError, 'ERR_SPARTAN_LENGTH'],
    ['costs as Float64Array', () => spartan.softTopK(v, 2, 1, { costs: new Float64Array(4) as never }), TypeError, 'ERR_SPARTAN_TYPE'],
    ['a zero cost', () => spartan.softTopK(v, 2, 1, { costs: Float32Array.of(1, 0, 1, 1) }), RangeError, 'ERR_SPARTAN_COST'],
    ['a negative cost', () => spartan.softTopK(v, 2, 1, { costs: Float32Array.of(1, 1, -2, 1) }), RangeError, 'ERR_SPARTAN_COST'],
    ['a NaN cost', () => spartan.softTopK(v, 2, 1, { costs: Float32Array.of(1, 1, NaN, 1) }), RangeError, 'ERR_SPARTAN_NON_FINITE'],
    ['an Infinity cost', () => spartan.softTopK(v, 2, 1, { costs: Float32Array.of(Infinity, 1, 1, 1) }), RangeError, 'ERR_SPARTAN_NON_FINITE'],
    ['a uniform cost <= 0', () => spartan.softTopK(v, 2, 1, { costs: 0 }), RangeError, 'ERR_SPARTAN_COST'],
    ['costs detached', () => spartan.softTopK(f(8), 2, 1, { costs: detached() }), TypeError, 'ERR_SPARTAN_DETACHED'],
    // out / options
    ['out too small', () => spartan.softTopK(v, 2, 1, { out: f(3) }), RangeError, 'ERR_SPARTAN_LENGTH'],
    ['out of the wrong type', () => spartan.softTopK(v, 2, 1, { out: new Float64Array(4) as never }), TypeError, 'ERR_SPARTAN_TYPE'],
    ['out detached', () => spartan.softTopK(f(8), 2, 1, { out: detached() }), TypeError, 'ERR_SPARTAN_DETACHED'],
    ['out aliasing values', () => spartan.softTopK(v, 2, 1, { out: v }), RangeError, 'ERR_SPARTAN_ALIAS'],
    ['options not an object', () => spartan.softTopK(v, 2, 1, 5 as never), TypeError, 'ERR_SPARTAN_OPTION'],
    ['warm lambda not a number', () => spartan.softTopK(v, 2, 1, { lambda: 'x' as never }), TypeError, 'ERR_SPARTAN_TYPE'],
    // softTopKBackward
    ['backward: mask as Float64Array', () => spartan.softTopKBackward(new Float64Array(4) as never, f(4), 1), TypeError, 'ERR_SPARTAN_TYPE'],
    ['backward: gradMask of another length', () => spartan.softTopKBackward(f(4, 0.5), f(3), 1), RangeError, 'ERR_SPARTAN_LENGTH'],
    ['backward: mask above 1', () => spartan.softTopKBackward(Float32Array.of(0.5, 1.5), f(2), 1), RangeError, 'ERR_SPARTAN_MASK_RANGE'],
    ['backward: NaN in mask', () => spartan.softTopKBackward(Float32Array.of(0.5, NaN), f(2), 1), RangeError, 'ERR_SPARTAN_NON_FINITE'],
    ['backward: NaN in gradMask', () => spartan.softTopKBackward(f(2, 0.5), Float32Array.of(0, NaN), 1), RangeError, 'ERR_SPARTAN_NON_FINITE'],
    ['backward: beta 0', () => spartan.softTopKBackward(f(2, 0.5), f(2), 0), RangeError, 'ERR_SPARTAN_BETA'],
    ['backward: a zero cost', () => spartan.softTopKBackward(f(2, 0.5), f(2), 1, { costs: Float32Array.of(1, 0) }), RangeError, 'ERR_SPARTAN_COST'],
    ['backward: mask detached', () => spartan.softTopKBackward(detached(), f(8), 1), TypeError, 'ERR_SPARTAN_DETACHED'],
    ['backward: out too small', () => spartan.softTopKBackward(f(4, 0.5), f(4), 1, { out: f(2) }), RangeError, 'ERR_SPARTAN_LENGTH'],
    // topKMask
    ['topKMask: plain array', () => spartan.topKMask([3, 1] as never, 1), TypeError, 'ERR_SPARTAN_TYPE'],
    ['topKMask: NaN value', () => spartan.topKMask(Float32Array.of(NaN, 1), 1), RangeError, 'ERR_SPARTAN_NON_FINITE'],
    ['topKMask: k above n', () => spartan.topKMask(v, 5), RangeError, 'ERR_SPARTAN_BUDGET'],
    ['topKMask: k negative', () => spartan.topKMask(v, -1), RangeError, 'ERR_SPARTAN_BUDGET'],
    ['topKMask: k NaN', () => spartan.topKMask(v, NaN), RangeError, 'ERR_SPARTAN_BUDGET'],
    ['topKMask: a negative cost', () => spartan.topKMask(v, 1, { costs: Float32Array.of(1, -1, 1, 1) }), RangeError, 'ERR_SPARTAN_COST'],
    ['topKMask: out as Float32Array', () => spartan.topKMask(v, 1, { out: f(4) as never }), TypeError, 'ERR_SPARTAN_TYPE'],
    ['topKMask: out too small', () => spartan.topKMask(v, 1, { out: new Uint8Array(3) }), RangeError, 'ERR_SPARTAN_LENGTH'],
    ['topKMask: detached', () => spartan.topKMask(detached(), 1), TypeError, 'ERR_SPARTAN_DETACHED'],
    // block ops
    ['blockScores: dims do not divide', () => spartan.blockScores(f(30), 5, 6, [2, 2]), RangeError, 'ERR_SPARTAN_SHAPE'],
    ['blockScores: theta of the wrong length', () => spartan.blockScores(f(15), 4, 4, [2, 2]), RangeError, 'ERR_SPARTAN_LENGTH'],
    ['blockScores: block not a pair', () => spartan.blockScores(f(16), 4, 4, [2] as never), TypeError, 'ERR_SPARTAN_TYPE'],
    ['blockScores: block of 0', () => spartan.blockScores(f(16), 4, 4, [0, 2]), RangeError, 'ERR_SPARTAN_SHAPE'],
    ['blockScores: fractional rows', () => spartan.blockScores(f(16), 4.5, 4, [1, 1]), RangeError, 'ERR_SPARTAN_SHAPE'],
    ['blockScores: NaN in theta', () => spartan.blockScores(Float32Array.of(1, 2, NaN, 4), 2, 2, [1, 1]), RangeError, 'ERR_SPARTAN_NON_FINITE'],
    ['blockScores: theta as Float64Array', () => spartan.blockScores(new Float64Array(16) as never, 4, 4, [2, 2]), TypeError, 'ERR_SPARTAN_TYPE'],
    ['blockScores: detached', () => spartan.blockScores(detached(), 2, 4, [2, 2]), TypeError, 'ERR_SPARTAN_DETACHED'],
    ['blockScores: out too small', () => spartan.blockScores(f(16), 4, 4, [2, 2], { out: f(3) }), RangeError, 'ERR_SPARTAN_LENGTH'],
    ['expandBlockMask: mask of the wrong length', () => spartan.expandBlockMask(f(3), 4, 4, [2, 2]), RangeError, 'ERR_SPARTAN_LENGTH'],
    ['expandBlockMask: mask as Int32Array', () => spartan.expandBlockMask(new Int32Array(4) as never, 4, 4, [2, 2]), TypeError, 'ERR_SPARTAN_TYPE'],
    ['expandBlockMask: mask above 1', () => spartan.expandBlockMask(Float32Array.of(1, 0, 1.5, 1), 4, 4, [2, 2]), RangeError, 'ERR_SPARTAN_MASK_RANGE'],
    ['expandBlockMask: NaN in the mask', () => spartan.expandBlockMask(Float32Array.of(1, NaN, 0, 1), 4, 4, [2, 2]), RangeError, 'ERR_SPARTAN_NON_FINITE'],
    ['expandBlockMask: out of another type', () => spartan.expandBlockMask(f(4), 4, 4, [2, 2], { out: new Uint8Array(16) as never }), TypeError, 'ERR_SPARTAN_TYPE'],
    ['applyMask: mask of the wrong length', () => spartan.applyMask(f(4), f(3)), RangeError, 'ERR_SPARTAN_LENGTH'],
    ['applyMask: mask above 1', () => spartan.applyMask(f(2), Float32Array.of(1, 2)), RangeError, 'ERR_SPARTAN_MASK_RANGE'],
    ['applyMask: NaN in theta', () => spartan.applyMask(Float32Array.of(NaN, 1), f(2)), RangeError, 'ERR_SPARTAN_NON_FINITE'],
    ['applyMask: NaN in the mask', () => spartan.applyMask(f(2), Float32Array.of(NaN, 1)), RangeError, 'ERR_SPARTAN_NON_FINITE'],
    ['applyMask: block without shape', () => spartan.applyMask(f(16), f(4), { block: [2, 2] }), TypeError, 'ERR_SPARTAN_OPTION'],
    ['applyMask: shape mismatch', () => spartan.applyMask(f(16), f(4), { shape: [4, 2], block: [2, 2] }), RangeError, 'ERR_SPARTAN_LENGTH'],
    ['applyMask: hard of the wrong length', () => spartan.applyMask(f(4), f(4), { hard: new Uint8Array(3) }), RangeError, 'ERR_SPARTAN_LENGTH'],
    ['applyMask: hard as Float32Array', () => spartan.applyMask(f(4), f(4), { hard: f(4) as never }), TypeError, 'ERR_SPARTAN_TYPE'],
    ['applyMask: out overlapping the mask', () => { const m = f(4, 0.5); return spartan.applyMask(f(4), m, { out: m }); }, RangeError, 'ERR_SPARTAN_ALIAS'],
    // segmented
    ['segmented: not an array', () => spartan.softTopKSegmented({} as never, 1, 1), TypeError, 'ERR_SPARTAN_TYPE'],
    ['segmented: empty', () => spartan.softTopKSegmented([], 1, 1), RangeError, 'ERR_SPARTAN_LENGTH'],
    ['segmented: a segment that is not an object', () => spartan.softTopKSegmented([5 as never], 1, 1), TypeError, 'ERR_SPARTAN_TYPE'],
    ['segmented: k per segment of the wrong count', () => spartan.softTopKSegmented([{ values: v }, { values: v }], [1], 1), RangeError, 'ERR_SPARTAN_LENGTH'],
    ['segmented: global k with per-segment beta', () => spartan.softTopKSegmented([{ values: v }], 1, [1] as never), TypeError, 'ERR_SPARTAN_TYPE'],
    ['segmented: NaN in the second segment', () => spartan.softTopKSegmented([{ values: v }, { values: Float32Array.of(1, NaN) }], 1, 1), RangeError, 'ERR_SPARTAN_NON_FINITE'],
    ['segmented: global k above the total', () => spartan.softTopKSegmented([{ values: v }, { values: v }], 9, 1), RangeError, 'ERR_SPARTAN_BUDGET'],
    ['segmented: outputs overlapping', () => { const o = f(4); return spartan.softTopKSegmented([{ values: v, out: o }, { values: f(4), out: o }], 1, 1); }, RangeError, 'ERR_SPARTAN_ALIAS'],
    ['segmented top-k: k count', () => spartan.topKMaskSegmented([{ values: v }], [1, 2]), RangeError, 'ERR_SPARTAN_LENGTH'],
    ['segmented backward: beta count', () => spartan.softTopKBackwardSegmented([{ mask: f(2, 0.5), gradMask: f(2) }], [1, 2]), RangeError, 'ERR_SPARTAN_LENGTH'],
    ['setNumThreads: negative', () => spartan.setNumThreads(-1), RangeError, 'ERR_SPARTAN_OPTION'],
  ];
  for (const [name, fn, type, code] of cases) it(`${name} -> ${type.name} ${code}`, () => expectCode(fn, type, code));

  it('names the offending element in the message', () => {
    try {
      spartan.softTopKSegmented([{ values: v }, { values: Float32Array.of(1, 2, NaN) }], 1, 1);
      expect.fail('did not throw');
    } catch (e) {
      expect((e as Error).message).to.contain('segments[1].values[2]');
    }
  });

  it('backward: a bad entry at any lane of the vectorised blocks is found and named, out untouched', () => {
    // the uniform-cost reduction checks eight entries at a time in two four-lane halves
    const n = 1003; // 125 blocks of eight and a tail of three
    const bad: [string, 'mask' | 'gradMask', number, string][] = [
      ['NaN mask', 'mask', NaN, 'ERR_SPARTAN_NON_FINITE'],
      ['mask above 1', 'mask', 1.0000001, 'ERR_SPARTAN_MASK_RANGE'],
      ['negative mask', 'mask', -1e-30, 'ERR_SPARTAN_MASK_RANGE'],
      ['infinite gradMask', 'gradMask', -Infinity, 'ERR_SPARTAN_NON_FINITE'],
    ];
    for (const [what, arg, value, code] of bad)
      for (const at of [0, 3, 4, 7, 8 * 60 + 5, 8 * 124 + 7, 1000, 1002]) {
        const mask = new Float32Array(n).fill(0.25), gradMask = new Float32Array(n).fill(-2);
        mask[17] = -0; // -0 is in [0, 1]
        (arg === 'mask' ? mask : gradMask)[at] = value;
        const out = sentinel(n);
        try {
          spartan.softTopKBackward(mask, gradMask, 3, { out });
          expect.fail(`${what} at ${at} did not throw`);
        } catch (e) {
          expect((e as { code?: string }).code, `${what} at ${at}`).to.equal(code);
          expect((e as Error).message, `${what} at ${at}`).to.contain(`${arg}[${at}]`);
        }
        untouched(out);
      }
    const ok = spartan.softTopKBackward(new Float32Array(n).fill(0.25).fill(-0, 17, 18), new Float32Array(n).fill(-2), 3);
    expect(ok.every(Number.isFinite)).to.equal(true);
  });

  it('leaves out untouched when a call is rejected after its arrays were read', () => {
    const out = sentinel(3);
    expectCode(() => spartan.softTopK(Float32Array.of(1, 2, NaN), 1, 1, { out }), RangeError, 'ERR_SPARTAN_NON_FINITE');
    untouched(out);
    expectCode(() => spartan.softTopK(Float32Array.of(1, 2, 3), 4, 1, { out }), RangeError, 'ERR_SPARTAN_BUDGET');
    untouched(out);
    expectCode(() => spartan.softTopK(Float32Array.of(1, 2, 3), 1, 1, { out, costs: Float32Array.of(1, 1, 0) }), RangeError, 'ERR_SPARTAN_COST');
    untouched(out);
    const big = new Float32Array(200000).fill(1);
    big[199999] = NaN;
    const bigOut = sentinel(200000);
    expectCode(() => spartan.softTopK(big, 10, 1, { out: bigOut }), RangeError, 'ERR_SPARTAN_NON_FINITE');
    untouched(bigOut);
    const gOut = sentinel(3);
    expectCode(() => spartan.softTopKBackward(Float32Array.of(0.5, 0.5, 2), f(3), 1, { out: gOut }), RangeError, 'ERR_SPARTAN_MASK_RANGE');
    untouched(gOut);
    const hOut = new Uint8Array(3).fill(7);
    expectCode(() => spartan.topKMask(Float32Array.of(1, 2, NaN), 1, { out: hOut }), RangeError, 'ERR_SPARTAN_NON_FINITE');
    untouched(hOut);
    const sOut = sentinel(4);
    expectCode(() => spartan.blockScores(Float32Array.from({ length: 16 }, (_, i) => (i === 15 ? Infinity : 1)), 4, 4, [2, 2], { out: sOut }), RangeError, 'ERR_SPARTAN_NON_FINITE');
    untouched(sOut);
    // finite entries whose tile sum float32 cannot hold: the first such tile, named, nothing written
    // (a NaN or Inf anywhere is reported first, as on the GPU)
    const huge = new Float32Array(16).fill(1);
    huge.fill(3e38, 10, 12); // tile 3 (rows 2-3, columns 2-3): its top row
    huge.fill(2e38, 14, 16);
    expect(codeOf(() => spartan.blockScores(huge, 4, 4, [2, 2], { out: sOut }))).to.equal(
      `ERR_SPARTAN_NON_FINITE: tile 3 of theta (counted row-major): its entries are finite, but the sum of their absolute values, ${(2 * Math.fround(3e38) + 2 * Math.fround(2e38)).toPrecision(17)}, is beyond float32's range`);
    untouched(sOut);
    huge[0] = NaN;
    expect(codeOf(() => spartan.blockScores(huge, 4, 4, [2, 2], { out: sOut }))).to.match(/^ERR_SPARTAN_NON_FINITE: theta\[0\] is nan/);
    untouched(sOut);
    huge[0] = 1;
    expect(Array.from(spartan.blockScores(huge.map((x) => x / 4), 4, 4, [2, 2]))).to.deep.equal([1, 1, 1, Math.fround((2 * Math.fround(3e38) + 2 * Math.fround(2e38)) / 4)]);
    const theta = Float32Array.of(1, 2, 3, 4);
    expectCode(() => spartan.applyMask(theta, Float32Array.of(0.5, 0.5, 0.5, -1), { out: theta }), RangeError, 'ERR_SPARTAN_MASK_RANGE');
    expect(Array.from(theta)).to.deep.equal([1, 2, 3, 4]);
  });

  it('async forms reject with the same codes', async () => {
    await expectRejectCode(spartan.softTopKAsync(Float32Array.of(1, NaN), 1, 1), RangeError, 'ERR_SPARTAN_NON_FINITE');
    await expectRejectCode(spartan.softTopKAsync(new Float64Array(2) as never, 1, 1), TypeError, 'ERR_SPARTAN_TYPE');
    await expectRejectCode(spartan.softTopKAsync(v, 2, -1), RangeError, 'ERR_SPARTAN_BETA');
    await expectRejectCode(spartan.softTopKBackwardAsync(f(2, 2), f(2), 1), RangeError, 'ERR_SPARTAN_MASK_RANGE');
    await expectRejectCode(spartan.topKMaskAsync(v, 9), RangeError, 'ERR_SPARTAN_BUDGET');
    await expectRejectCode(spartan.blockScoresAsync(f(15), 5, 3, [2, 2]), RangeError, 'ERR_SPARTAN_SHAPE');
    await expectRejectCode(spartan.applyMaskAsync(f(2), Float32Array.of(2, 0)), RangeError, 'ERR_SPARTAN_MASK_RANGE');
    await expectRejectCode(spartan.softTopKSegmentedAsync([], 1, 1), RangeError, 'ERR_SPARTAN_LENGTH');
  });

  it('the process and later calls are unaffected by rejected calls', () => {
    const r = spartan.softTopK(Float32Array.of(1, 2, 3, 4), 2, 1);
    expect(r.lambda).to.be.closeTo(-2.5, 1e-6);
  });
});
