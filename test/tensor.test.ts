// Tensors on the CPU (always), device placement errors, and the CUDA path's
// behaviour on a machine without a usable GPU (a clear ERR_SPARTAN_CUDA, the
// process lives). The GPU parity suite is test/cuda.test.ts.
import { expect } from 'chai';
import * as spartan from '../lib/index';
import { expectCode, expectClose, expectRejectCode } from './helpers';
import { freshSeed, normal, rng } from './reference';

const info = spartan.backend();

function randn(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => normal(r));
}

describe('Tensor (cpu)', () => {
  it('copies its data, keeps shape and dtype, and reads back', () => {
    const data = Float32Array.from([1, 2, 3, 4, 5, 6]);
    const t = spartan.tensor(data, { shape: [2, 3] });
    data[0] = 99;  // a copy: the tensor does not see later writes
    expect(t.device).to.equal('cpu');
    expect(t.dtype).to.equal('float32');
    expect(t.shape).to.deep.equal([2, 3]);
    expect(t.size).to.equal(6);
    expect(Array.from(t.toFloat32Array())).to.deep.equal([1, 2, 3, 4, 5, 6]);
    const u = spartan.tensor(Uint8Array.from([0, 1, 1]));
    expect(u.dtype).to.equal('uint8');
    expect(Array.from(u.toFloat32Array())).to.deep.equal([0, 1, 1]);
    expect(String(t)).to.equal('Tensor(float32, [2, 3], cpu)');
  });

  it('reads back asynchronously', async () => {
    const t = spartan.tensor([0.5, 1.5]);
    expect(Array.from(await t.toFloat32ArrayAsync())).to.deep.equal([0.5, 1.5]);
  });

  it('empty() gives zeros of the shape and dtype asked for', () => {
    const t = spartan.empty([3, 4], { dtype: 'uint8' });
    expect(t.size).to.equal(12);
    expect(t.dtype).to.equal('uint8');
    expect(Array.from(t.toArray())).to.deep.equal(new Array(12).fill(0));
  });

  it('rejects bad shapes, dtypes, devices and data with coded errors', () => {
    expectCode(() => spartan.tensor([1, 2, 3], { shape: [2, 2] }), RangeError, 'ERR_SPARTAN_SHAPE');
    expectCode(() => spartan.tensor([1, 2], { shape: [2.5] as number[] }), RangeError, 'ERR_SPARTAN_SHAPE');
    expectCode(() => spartan.tensor('abc' as unknown as number[]), TypeError, 'ERR_SPARTAN_TYPE');
    expectCode(() => spartan.tensor([1], { device: 'tpu' as spartan.Device }), TypeError, 'ERR_SPARTAN_OPTION');
    expectCode(() => spartan.empty([2], { dtype: 'int32' as spartan.DType }), TypeError, 'ERR_SPARTAN_OPTION');
    expectCode(() => spartan.empty([-1]), RangeError, 'ERR_SPARTAN_SHAPE');
  });

  it('dispose() is idempotent and later use is ERR_SPARTAN_DISPOSED', () => {
    const t = spartan.tensor([1, 2, 3]);
    t.dispose();
    t.dispose();
    expect(t.disposed).to.equal(true);
    expectCode(() => t.toArray(), TypeError, 'ERR_SPARTAN_DISPOSED');
    expectCode(() => spartan.softTopK(t, 1, 1), TypeError, 'ERR_SPARTAN_DISPOSED');
  });

  it('every op takes cpu Tensors and returns cpu Tensors equal to the array results', async () => {
    const seed = freshSeed();
    const n = 1000 + (seed % 97);
    const v = randn(n, seed);
    const tv = spartan.tensor(v, { shape: [n] });
    const ref = spartan.softTopK(v, 100, 5);
    const got = spartan.softTopK(tv, 100, 5);
    expect(got.mask).to.be.instanceOf(spartan.Tensor);
    expect(got.mask.device).to.equal('cpu');
    expect(got.lambda).to.equal(ref.lambda);
    expect(Array.from(got.mask.toFloat32Array())).to.deep.equal(Array.from(ref.mask));
    const asyncGot = await spartan.softTopKAsync(tv, 100, 5);
    expect(asyncGot.lambda).to.equal(ref.lambda);

    const g = randn(n, seed + 1);
    const back = spartan.softTopKBackward(got.mask, spartan.tensor(g), 5);
    expect(Array.from(back.toFloat32Array())).to.deep.equal(Array.from(spartan.softTopKBackward(ref.mask, g, 5)));

    const hard = spartan.topKMask(tv, 37);
    expect(hard.dtype).to.equal('uint8');
    expect(Array.from(hard.toArray())).to.deep.equal(Array.from(spartan.topKMask(v, 37)));

    const seg = spartan.softTopKSegmented([{ values: tv }, { values: spartan.tensor(g) }], 50, 3);
    const segRef = spartan.softTopKSegmented([{ values: v }, { values: g }], 50, 3);
    expect(seg.lambda).to.equal(segRef.lambda);
    expect(Array.from(seg.masks[1].toFloat32Array())).to.deep.equal(Array.from(segRef.masks[1]));

    const theta = randn(64 * 32, seed + 2);
    const tt = spartan.tensor(theta, { shape: [64, 32] });
    const scores = spartan.blockScores(tt, 64, 32, [16, 16]);
    expect(scores.shape).to.deep.equal([4, 2]);
    expect(Array.from(scores.toFloat32Array())).to.deep.equal(Array.from(spartan.blockScores(theta, 64, 32, [16, 16])));
    const bm = spartan.tensor(Uint8Array.from([1, 0, 0, 1, 1, 1, 0, 0]));
    const expanded = spartan.expandBlockMask(bm, 64, 32, [16, 16]);
    expect(expanded.dtype).to.equal('uint8');
    const applied = spartan.applyMask(tt, bm, { shape: [64, 32], block: [16, 16] });
    const appliedRef = spartan.applyMask(theta, Uint8Array.from([1, 0, 0, 1, 1, 1, 0, 0]), { shape: [64, 32], block: [16, 16] });
    expect(Array.from(applied.toFloat32Array())).to.deep.equal(Array.from(appliedRef));
  });

  it('writes into a Tensor out, also in place', () => {
    const v = spartan.tensor([1, 2, 3, 4]);
    const out = spartan.empty([4]);
    const r = spartan.softTopK(v, 2, 1, { out });
    expect(r.mask).to.equal(out);
    expectClose(out.toFloat32Array(), [0.182426, 0.377541, 0.622459, 0.817574], 1e-6, 'mask');
    const g = spartan.tensor([0, 0, 0, 1]);
    spartan.softTopKBackward(out, g, 1, { out: g });
    expectClose(g.toFloat32Array(), [-0.028953, -0.04562, -0.04562, 0.120193], 2e-6, 'VJP in place');
    expectCode(() => spartan.softTopK(v, 2, 1, { out: spartan.empty([3]) }), RangeError, 'ERR_SPARTAN_LENGTH');
    expectCode(() => spartan.softTopK(v, 2, 1, { out: spartan.empty([4], { dtype: 'uint8' }) }), TypeError, 'ERR_SPARTAN_TYPE');
  });

  it('mixing Tensors and plain arrays in one call is ERR_SPARTAN_DEVICE, and nothing is written', () => {
    const v = spartan.tensor([1, 2, 3, 4]);
    const out = new Float32Array(4).fill(7);
    expectCode(() => spartan.softTopK(v, 2, 1, { out: out as unknown as spartan.Tensor }), TypeError, 'ERR_SPARTAN_DEVICE');
    expect(Array.from(out)).to.deep.equal([7, 7, 7, 7]);
    expectCode(() => spartan.softTopKBackward(v, new Float32Array(4) as unknown as spartan.Tensor, 1), TypeError, 'ERR_SPARTAN_DEVICE');
    expectCode(() => spartan.softTopK(v, 2, 1, { device: 'cuda' }), TypeError, 'ERR_SPARTAN_DEVICE');
  });

  it('data errors on Tensors keep their codes (NaN, k out of range, beta <= 0)', () => {
    const bad = spartan.tensor([1, NaN, 3]);
    expectCode(() => spartan.softTopK(bad, 1, 1), RangeError, 'ERR_SPARTAN_NON_FINITE');
    const v = spartan.tensor([1, 2, 3]);
    expectCode(() => spartan.softTopK(v, 4, 1), RangeError, 'ERR_SPARTAN_BUDGET');
    expectCode(() => spartan.softTopK(v, 1, 0), RangeError, 'ERR_SPARTAN_BETA');
  });
});

describe('CUDA placement without a usable GPU', () => {
  const why = info.cuda ? ' [skipped: CUDA is usable here; test/cuda.test.ts covers it]' : '';
  it(`asking for 'cuda' is a SpartanError ERR_SPARTAN_CUDA naming the reason${why}`, async function () {
    if (info.cuda) this.skip();
    expectCode(() => spartan.tensor([1, 2], { device: 'cuda' }), spartan.SpartanError as unknown as ErrorConstructor, 'ERR_SPARTAN_CUDA');
    try {
      spartan.empty([4], { device: 'cuda' });
      expect.fail('expected ERR_SPARTAN_CUDA');
    } catch (e) {
      expect((e as Error).message).to.contain(info.reason ?? '');
    }
    const v = Float32Array.from([1, 2, 3, 4]);
    const out = new Float32Array(4).fill(7);
    expectCode(() => spartan.softTopK(v, 2, 1, { device: 'cuda', out }), spartan.SpartanError as unknown as ErrorConstructor, 'ERR_SPARTAN_CUDA');
    expect(Array.from(out)).to.deep.equal([7, 7, 7, 7]);
    await expectRejectCode(spartan.softTopKAsync(v, 2, 1, { device: 'cuda' }), spartan.SpartanError as unknown as ErrorConstructor, 'ERR_SPARTAN_CUDA');
    expectCode(() => spartan.topKMask(v, 2, { device: 'cuda' }), spartan.SpartanError as unknown as ErrorConstructor, 'ERR_SPARTAN_CUDA');
    // synchronize() is a no-op without CUDA; the CPU path still works afterwards.
    spartan.synchronize();
    expectClose(spartan.softTopK(v, 2, 1).mask, [0.182426, 0.377541, 0.622459, 0.817574], 1e-6, 'cpu after cuda errors');
  });
});
