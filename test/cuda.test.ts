// CUDA kernels against the CPU kernels (the oracle) and the spec's worked examples.
// Runs in the normal `npm test`; on a machine without a usable GPU every test here
// skips and prints the reason.
import { expect } from 'chai';
import * as spartan from '../lib/index';
import { native } from '../lib/native';
import { codeOf, expectClose, expectCode, expectRejectCode } from './helpers';
import { freshSeed, normal, rng, sum } from './reference';

const info = spartan.backend();
const SpartanError = spartan.SpartanError as unknown as ErrorConstructor;

function randn(n: number, seed: number): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: n }, () => normal(r));
}
const dev = (a: Float32Array | Uint8Array, shape?: number[]) => spartan.tensor(a, { device: 'cuda', shape });
const f32 = (a: number[]) => Float32Array.from(a);
/** lambda agreement (infinite for k = 0 or k = total: then equal). */
function expectLambda(got: number, want: number, what: string) {
  if (!Number.isFinite(want)) expect(got, what).to.equal(want);
  else expect(got, what).to.be.closeTo(want, 1e-6 * (1 + Math.abs(want)));
}

// Sizes around the kernels' tile (4096) and block (256) edges, and a large one.
const SIZES = [1, 7, 255, 256, 257, 4095, 4096, 4097, 65_537, 1_000_003];

describe('CUDA kernels (parity with the CPU kernels)', function () {
  this.timeout(120_000);
  before(function () {
    if (!info.cuda) {
      console.log(`      CUDA parity tests skipped: ${info.reason}`);
      this.skip();
    }
  });

  it('lists the device, copies round-trip exactly, synchronize() works', () => {
    expect(info.devices.length).to.be.at.least(1);
    const x = randn(10_001, freshSeed());
    const t = dev(x);
    expect(t.device).to.equal('cuda');
    expect(Buffer.from(t.toFloat32Array().buffer).equals(Buffer.from(x.buffer))).to.equal(true);
    spartan.synchronize();
    t.dispose();
    expectCode(() => t.toArray(), TypeError, 'ERR_SPARTAN_DISPOSED');
  });

  it('spec examples A-D on the device', () => {
    const a = spartan.softTopK(dev(f32([1, 2, 3, 4])), 2, 1);
    expectClose(a.mask.toFloat32Array(), [0.182426, 0.377541, 0.622459, 0.817574], 1e-6, 'A mask');
    expect(a.lambda).to.be.closeTo(-2.5, 1e-6);
    expectClose(spartan.softTopKBackward(a.mask, dev(f32([0, 0, 0, 1])), 1).toFloat32Array(), [-0.028953, -0.04562, -0.04562, 0.120193], 2e-6, 'B VJP');
    const costs = dev(f32([1, 1, 2, 2]));
    const c = spartan.softTopK(dev(f32([4, 1, 6, 3])), 3, 2, { costs });
    expectClose(c.mask.toFloat32Array(), [0.968718, 0.071289, 0.80736, 0.172637], 1e-6, 'C mask');
    expect(c.lambda).to.be.closeTo(-4.567055, 1e-5);
    const v = f32([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]);
    const d = spartan.softTopK(dev(v), 3, 5);
    expect(d.lambda).to.be.closeTo(-3.969798, 1e-5);
    expect(Array.from(spartan.topKMask(dev(v), 3).toArray())).to.deep.equal([0, 0, 0, 0, 0, 0, 0, 1, 1, 1]);
    expect(Array.from(spartan.topKMask(dev(v), 3.5).toArray())).to.deep.equal([0, 0, 0, 0, 0, 0, 1, 1, 1, 1]);
    expectClose(spartan.softTopK(dev(v), 3.5, 1000).mask.toFloat32Array(), [0, 0, 0, 0, 0, 0, 0.5, 1, 1, 1], 1e-5, 'beta=1000');
  });

  for (const n of SIZES) {
    it(`soft top-k forward and backward, n = ${n}: lambda, mass and mask agree with the CPU`, () => {
      const seed = freshSeed();
      const v = randn(n, seed);
      const k = Math.max(1, Math.floor(n * 0.1));
      for (const beta of [1, 30]) {
        const cpu = spartan.softTopK(v, k, beta);
        const gpu = spartan.softTopK(dev(v), k, beta);
        expect(gpu.converged, `seed ${seed}`).to.equal(true);
        expectLambda(gpu.lambda, cpu.lambda, `lambda, seed ${seed}`);
        expect(gpu.mass, `mass, seed ${seed}`).to.be.closeTo(k, 1e-5 * k + 1e-6);
        const m = gpu.mask.toFloat32Array();
        expectClose(m, cpu.mask, 2e-6, `mask (seed ${seed})`);
        expect(sum(m)).to.be.closeTo(k, 1e-4 * k + 1e-5);
        const g = randn(n, seed + 1);
        const gb = spartan.softTopKBackward(gpu.mask, dev(g), beta).toFloat32Array();
        // the CPU VJP of the same (device) mask: only the arithmetic differs
        expectClose(gb, spartan.softTopKBackward(m, g, beta), 1e-5 * beta, `VJP (seed ${seed})`);
        // warm start from the converged lambda: at most 2 passes
        const warm = spartan.softTopK(dev(v), k, beta, { lambda: gpu.lambda });
        expect(warm.passes).to.be.at.most(2);
        expectLambda(warm.lambda, gpu.lambda, 'warm lambda');
      }
    });
  }

  it('segmented soft top-k (global and per-segment budgets, per-entry costs) agrees with the CPU', () => {
    const seed = freshSeed();
    const sizes = [4097, 1, 300, 65_536, 2049];
    const vs = sizes.map((n, i) => randn(n, seed + i));
    const cs = sizes.map((n, i) => Float32Array.from({ length: n }, (_, j) => 1 + ((i * 7 + j) % 3)));
    const total = sizes.reduce((a, b) => a + b, 0);
    const cpuG = spartan.softTopKSegmented(vs.map((values) => ({ values })), total * 0.05, 10);
    const gpuG = spartan.softTopKSegmented(vs.map((v) => ({ values: dev(v) })), total * 0.05, 10);
    expectLambda(gpuG.lambda, cpuG.lambda, 'global lambda');
    gpuG.masks.forEach((m, i) => expectClose(m.toFloat32Array(), cpuG.masks[i], 2e-6, `global mask ${i}`));
    const ks = sizes.map((n) => n * 0.3);
    const cpuP = spartan.softTopKSegmented(vs.map((values, i) => ({ values, costs: cs[i] })), ks.map((k, i) => k * 2 + (i === 1 ? 0 : 0)), 4);
    const gpuP = spartan.softTopKSegmented(vs.map((v, i) => ({ values: dev(v), costs: dev(cs[i]) })), ks.map((k) => k * 2), 4);
    gpuP.lambda.forEach((l, i) => expectLambda(l, cpuP.lambda[i], `lambda ${i}`));
    gpuP.masks.forEach((m, i) => expectClose(m.toFloat32Array(), cpuP.masks[i], 2e-6, `per-segment mask ${i}`));
    const gs = sizes.map((n, i) => randn(n, seed + 100 + i));
    const cpuB = spartan.softTopKBackwardSegmented(gpuG.masks.map((mask, i) => ({ mask: mask.toFloat32Array(), gradMask: gs[i] })), 10);
    const gpuB = spartan.softTopKBackwardSegmented(gpuG.masks.map((mask, i) => ({ mask, gradMask: dev(gs[i]) })), 10);
    gpuB.forEach((g, i) => expectClose(g.toFloat32Array(), cpuB[i], 1e-4, `segmented VJP ${i}`));
  });

  for (const n of SIZES) {
    it(`hard top-k mask, n = ${n}: exactly the CPU's mask (ties to the lower index)`, () => {
      const seed = freshSeed();
      const r = rng(seed);
      // quantised values make many ties
      const v = Float32Array.from({ length: n }, () => Math.round(normal(r) * 8) / 8);
      for (const k of [0, 1, Math.floor(n / 3), n - 1, n].filter((x) => x >= 0 && x <= n)) {
        const g = spartan.topKMask(dev(v), k).toArray();
        const c = spartan.topKMask(v, k);
        expect(Buffer.from(g).equals(Buffer.from(c)), `k = ${k}, seed ${seed}`).to.equal(true);
      }
    });
  }

  it('hard top-k with per-entry costs (host fallback) and per-segment budgets agrees with the CPU', () => {
    const seed = freshSeed();
    const v = randn(5000, seed), c = Float32Array.from({ length: 5000 }, (_, i) => 1 + (i % 4));
    expect(Array.from(spartan.topKMask(dev(v), 1234.5, { costs: dev(c) }).toArray())).to.deep.equal(Array.from(spartan.topKMask(v, 1234.5, { costs: c })));
    const vs = [randn(4100, seed + 1), randn(10, seed + 2)];
    const gpu = spartan.topKMaskSegmented(vs.map((x) => ({ values: dev(x) })), [100, 3]);
    const cpu = spartan.topKMaskSegmented(vs.map((values) => ({ values })), [100, 3]);
    gpu.forEach((m, i) => expect(Array.from(m.toArray())).to.deep.equal(Array.from(cpu[i])));
  });

  for (const b of [16, 32]) {
    for (const [rows, cols] of [[b, b], [4 * b, 9 * b], [64 * b, 3 * b]]) {
      it(`block ops ${b}x${b} on ${rows}x${cols}: scores, expansion and apply match the CPU`, () => {
        const seed = freshSeed();
        const theta = randn(rows * cols, seed);
        const t = dev(theta, [rows, cols]);
        const s = spartan.blockScores(t, rows, cols, [b, b]).toFloat32Array();
        expectClose(s, spartan.blockScores(theta, rows, cols, [b, b]), 1e-4, 'scores');
        const nb = (rows / b) * (cols / b);
        const soft = Float32Array.from({ length: nb }, (_, i) => (i * 0.37) % 1);
        const hard = Uint8Array.from({ length: nb }, (_, i) => (i * 7) % 3 ? 1 : 0);
        expect(Array.from(spartan.expandBlockMask(dev(hard), rows, cols, [b, b]).toArray())).to.deep.equal(Array.from(spartan.expandBlockMask(hard, rows, cols, [b, b])));
        expect(Array.from(spartan.expandBlockMask(dev(soft), rows, cols, [b, b]).toFloat32Array())).to.deep.equal(Array.from(spartan.expandBlockMask(soft, rows, cols, [b, b])));
        const got = spartan.applyMask(t, dev(soft), { shape: [rows, cols], block: [b, b], hard: dev(hard) }).toFloat32Array();
        expect(Array.from(got)).to.deep.equal(Array.from(spartan.applyMask(theta, soft, { shape: [rows, cols], block: [b, b], hard })));
      });
    }
  }

  it('block scores with odd tiles and widths (the scalar path) and wide tiles match the CPU', () => {
    for (const [rows, cols, b0, b1] of [[6, 10, 3, 5], [35, 7, 7, 1], [4, 2048, 2, 1024], [1, 1, 1, 1]]) {
      const theta = randn(rows * cols, freshSeed());
      const s = spartan.blockScores(dev(theta), rows, cols, [b0, b1]).toFloat32Array();
      expectClose(s, spartan.blockScores(theta, rows, cols, [b0, b1]), 1e-4, `${rows}x${cols} in ${b0}x${b1}`);
    }
  });

  it('plain arrays with { device: "cuda" } are copied in and out', async () => {
    const v = randn(9999, freshSeed());
    const out = new Float32Array(9999);
    const r = spartan.softTopK(v, 500, 8, { device: 'cuda', out });
    expect(r.mask).to.equal(out);
    expectClose(out, spartan.softTopK(v, 500, 8).mask, 2e-6, 'copy-mode mask');
    expectCode(() => spartan.softTopK(v, 500, 8, { device: 'cuda', out: new Float32Array(3) }), RangeError, 'ERR_SPARTAN_LENGTH');
    const ra = await spartan.softTopKAsync(v, 500, 8, { device: 'cuda' });
    expectClose(ra.mask, out, 0, 'async copy-mode mask');
  });

  it('bad input on device tensors: coded errors, outputs untouched, the process lives', async () => {
    const v = dev(f32([1, NaN, 3, 4]));
    const out = dev(f32([7, 7, 7, 7]));
    expectCode(() => spartan.softTopK(v, 2, 1, { out }), RangeError, 'ERR_SPARTAN_NON_FINITE');
    expect(Array.from(out.toFloat32Array())).to.deep.equal([7, 7, 7, 7]);
    const good = dev(f32([1, 2, 3, 4]));
    expectCode(() => spartan.softTopK(good, 5, 1, { out }), RangeError, 'ERR_SPARTAN_BUDGET');
    expectCode(() => spartan.softTopK(good, 2, -1, { out }), RangeError, 'ERR_SPARTAN_BETA');
    expect(Array.from(out.toFloat32Array())).to.deep.equal([7, 7, 7, 7]);
    expectCode(() => spartan.softTopKBackward(dev(f32([0.5, 1.5])), dev(f32([1, 1])), 1), RangeError, 'ERR_SPARTAN_MASK_RANGE');
    expectCode(() => spartan.topKMask(v, 1), RangeError, 'ERR_SPARTAN_NON_FINITE');
    expectCode(() => spartan.blockScores(dev(f32([1, 2, NaN, 4])), 2, 2, [1, 1]), RangeError, 'ERR_SPARTAN_NON_FINITE');
    // a float block mask outside [0, 1] (the first bad entry named, as on the CPU), nothing expanded
    const wide = dev(f32([7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7]));
    expect(codeOf(() => spartan.expandBlockMask(dev(f32([1, 0.5, 1.5, NaN])), 4, 4, [2, 2], { out: wide }))).to.equal('ERR_SPARTAN_MASK_RANGE: mask[2] is 1.5; mask entries must lie in [0, 1]');
    expectCode(() => spartan.expandBlockMask(dev(f32([1, NaN, 0, 1])), 4, 4, [2, 2], { out: wide }), RangeError, 'ERR_SPARTAN_NON_FINITE');
    expect(wide.toFloat32Array().every((x) => x === 7)).to.equal(true);
    expectCode(() => spartan.softTopK(good, 2, 1, { out: spartan.empty([3], { device: 'cuda' }) }), RangeError, 'ERR_SPARTAN_LENGTH');
    expectCode(() => spartan.softTopK(good, 2, 1, { out: spartan.empty([4]) }), TypeError, 'ERR_SPARTAN_DEVICE');
    expectCode(() => spartan.softTopKBackward(good, spartan.tensor(f32([1, 1, 1, 1])), 1), TypeError, 'ERR_SPARTAN_DEVICE');
    await expectRejectCode(spartan.softTopKAsync(v, 2, 1), RangeError, 'ERR_SPARTAN_NON_FINITE');
    // A CPU-only native op never receives a device pointer (the host BSR product with a device out).
    const bsrNative = native as unknown as { bsrMatmul: (...a: unknown[]) => unknown };
    expectCode(() => bsrNative.bsrMatmul(false, 4, 1, 16, Int32Array.from([0, 0]), new Int32Array(0), new Float32Array(0), 0,
      new Float32Array(1), 1, null, false, good.handle, false), TypeError, 'ERR_SPARTAN_DEVICE');
    // An allocation far beyond the device: ERR_SPARTAN_CUDA, and the device still works.
    expectCode(() => spartan.empty([2 ** 40], { device: 'cuda' }), SpartanError, 'ERR_SPARTAN_CUDA');
    expectClose(spartan.softTopK(good, 2, 1).mask.toFloat32Array(), [0.182426, 0.377541, 0.622459, 0.817574], 1e-6, 'after errors');
  });

  it('with several bad entries, the error named is the one the CPU names', () => {
    const n = 70_001;
    const theta = Float32Array.from({ length: n }, (_, i) => (i % 7) - 3);
    theta[70_000] = NaN;
    const mask = new Float32Array(n).fill(0.5);
    mask[10] = 2;
    const name = (f: () => unknown) => { try { f(); } catch (e) { return `${(e as { code: string }).code}: ${(e as Error).message}`; } return 'no error'; };
    expect(name(() => spartan.applyMask(dev(theta), dev(mask)))).to.equal(name(() => spartan.applyMask(theta, mask)));
    const t2 = new Float32Array(64 * 64).fill(1);
    t2[1 * 64 + 3] = NaN;   // tile (0,0), row 1
    t2[0 * 64 + 40] = Infinity;  // tile (0,1), row 0: later in the CPU's tile order
    expect(name(() => spartan.blockScores(dev(t2), 64, 64, [32, 32]))).to.equal(name(() => spartan.blockScores(t2, 64, 64, [32, 32])));
    // a tile of finite entries whose sum float32 cannot hold: the same first tile and sum; nothing written
    const t3 = new Float32Array(64 * 64).fill(1);
    t3.fill(3e38, 64 * 33 + 40, 64 * 33 + 44); // tile (1,1)
    t3.fill(3e38, 64 * 40 + 0, 64 * 40 + 4);   // tile (1,0): first in tile order
    const out3 = dev(new Float32Array(4).fill(7));
    expect(name(() => spartan.blockScores(dev(t3), 64, 64, [32, 32], { out: out3 }))).to.equal(name(() => spartan.blockScores(t3, 64, 64, [32, 32])));
    expect(name(() => spartan.blockScores(t3, 64, 64, [32, 32]))).to.match(/^ERR_SPARTAN_NON_FINITE: tile 2 of theta \(counted row-major\)/);
    expect(Array.from(out3.toFloat32Array())).to.deep.equal([7, 7, 7, 7]);
  });

  it('forgotten tensors are freed by the garbage collector (no out-of-memory after 2x the device memory)', async () => {
    const bytes = 256 * 2 ** 20;  // 256 MiB each
    const count = Math.ceil((2 * info.devices[0].totalMemory) / bytes);
    for (let i = 0; i < count; i++) {
      spartan.empty([bytes / 4], { device: 'cuda' });  // never disposed
      if (i % 16 === 15) await new Promise((r) => setImmediate(r));  // let finalizers run
    }
  });

  it('sparse-update kernels and fused optimizer steps match the CPU (native level)', () => {
    const seed = freshSeed();
    const rows = 96, cols = 80, n = rows * cols;
    const gw = randn(n, seed), theta = randn(n, seed + 1);
    const h = (a: Float32Array) => dev(a).handle as unknown as Float32Array;
    const back = (x: unknown, len: number) => { const o = new Float32Array(len); native.cudaDownload(x as never, o, false); return o; };
    for (const [b0, b1] of [[1, 1], [16, 16], [32, 16]]) {
      const nb = (rows / b0) * (cols / b1);
      const up = dev(new Float32Array(nb)), upCpu = new Float32Array(nb);
      native.maskUpstream(h(gw), h(theta), rows, cols, b0, b1, up.handle as unknown as Float32Array);
      native.maskUpstream(gw, theta, rows, cols, b0, b1, upCpu);
      expectClose(up.toFloat32Array(), upCpu, 1e-4, `maskUpstream ${b0}x${b1}`);
      const m = Float32Array.from({ length: nb }, (_, i) => (i % 5) / 4), vjp = randn(nb, seed + 2);
      const out = dev(new Float32Array(n)), outCpu = new Float32Array(n);
      native.spartanParamGrad(h(gw), h(theta), h(m), h(vjp), rows, cols, b0, b1, out.handle as unknown as Float32Array);
      native.spartanParamGrad(gw, theta, m, vjp, rows, cols, b0, b1, outCpu);
      expectClose(out.toFloat32Array(), outCpu, 1e-6, `spartanParamGrad ${b0}x${b1}`);
    }
    expect(native.sumSquares(h(gw))).to.be.closeTo(native.sumSquares(gw), 1e-9 * native.sumSquares(gw));
    const a8 = Uint8Array.from({ length: 5000 }, (_, i) => i % 3 ? 1 : 0), b8 = Uint8Array.from({ length: 5000 }, (_, i) => i % 4 ? 1 : 0);
    expect(native.countChanges(dev(a8).handle as unknown as Uint8Array, dev(b8).handle as unknown as Uint8Array)).to.equal(native.countChanges(a8, b8));
    for (const step of [1, 2, 3]) {
      const cfg = { lr: 0.01, momentum: 0.9, nesterov: true, weightDecay: 1e-4, firstStep: step === 1, gradScale: 0.5 };
      const t1 = theta.slice(), b1 = new Float32Array(n), t2 = dev(theta), b2 = dev(new Float32Array(n));
      native.sgdStep(t1, gw, b1, cfg);
      native.sgdStep(t2.handle as unknown as Float32Array, h(gw), b2.handle as unknown as Float32Array, cfg);
      expectClose(t2.toFloat32Array(), t1, 1e-6, 'sgd theta');
      expectClose(back(b2.handle, n), b1, 1e-6, 'sgd buffer');
      const m1 = new Float32Array(n), v1 = new Float32Array(n), t3 = theta.slice(), t4 = dev(theta), m2 = dev(m1), v2 = dev(v1);
      const acfg = { lr: 1e-3, beta1: 0.9, beta2: 0.999, eps: 1e-8, weightDecay: 0.01, gradScale: 1, step };
      native.adamwStep(t3, gw, m1, v1, acfg);
      native.adamwStep(t4.handle as unknown as Float32Array, h(gw), m2.handle as unknown as Float32Array, v2.handle as unknown as Float32Array, acfg);
      expectClose(t4.toFloat32Array(), t3, 1e-6, 'adamw theta');
    }
    const bad = gw.slice();
    bad[1234] = NaN;
    expectCode(() => native.sumSquares(h(bad)), RangeError, 'ERR_SPARTAN_NON_FINITE');
  });

  it('dispose() while an async call is queued defers the free until it settles', async () => {
    const v = randn(3_000_001, freshSeed());
    const t = dev(v), out = spartan.empty([v.length], { device: 'cuda' });
    const p = spartan.softTopKAsync(t, 1000, 5, { out });
    t.dispose();
    out.dispose();
    expect(t.disposed).to.equal(true);
    const r = await p;  // the kernels still had their memory
    expect(r.converged).to.equal(true);
    expectCode(() => spartan.softTopK(t, 1000, 5), TypeError, 'ERR_SPARTAN_DISPOSED');
  });

  it('results are the same on every run (deterministic reductions)', () => {
    const v = randn(2_000_003, freshSeed());
    const t = dev(v);
    const a = spartan.softTopK(t, 100_000, 20), b = spartan.softTopK(t, 100_000, 20);
    expect(b.lambda).to.equal(a.lambda);
    expect(Buffer.from(b.mask.toFloat32Array().buffer).equals(Buffer.from(a.mask.toFloat32Array().buffer))).to.equal(true);
  });
});
