// The BSR product on CUDA (tensor cores) against the CPU BSR product and a float64
// reference. Skips visibly without a usable GPU; the placement errors run everywhere.
import { expect } from 'chai';
import * as spartan from '../lib/index';
import { bsr } from '../lib/index';
import { expectCode } from './helpers';
import { freshSeed, normal, rng } from './reference';

const info = spartan.backend();
const SpartanError = spartan.SpartanError as unknown as ErrorConstructor;

function weights(rows: number, cols: number, b: number, density: number, r: () => number): Float32Array {
  const nbc = Math.ceil(cols / b);
  const keep = Uint8Array.from({ length: Math.ceil(rows / b) * nbc }, () => (r() < density ? 1 : 0));
  const w = new Float32Array(rows * cols);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < cols; j++) if (keep[Math.floor(i / b) * nbc + Math.floor(j / b)]) w[i * cols + j] = normal(r);
  return w;
}

/** max |y - ref| / (sum |a x| per output) over all outputs: the relative error the bounds speak of. */
function scaledError(y: Float32Array, ref: Float32Array, mag: Float64Array): number {
  let e = 0;
  for (let i = 0; i < y.length; i++) {
    if (!Number.isFinite(y[i])) return Infinity;
    e = Math.max(e, Math.abs(y[i] - ref[i]) / Math.max(mag[i], 1e-30));
  }
  return e;
}

describe('bsr on CUDA: placement errors (everywhere)', () => {
  it('a host matrix with CUDA tensors is ERR_SPARTAN_DEVICE; toDevice without CUDA is ERR_SPARTAN_CUDA', function () {
    const A = bsr.fromDense(new Float32Array(32 * 32).fill(1), 32, 32, [16, 16]);
    expectCode(() => bsr.matmul(A, spartan.tensor(new Float32Array(32))), TypeError, 'ERR_SPARTAN_DEVICE');
    if (info.cuda) this.skip();
    expectCode(() => bsr.toDevice(A), SpartanError, 'ERR_SPARTAN_CUDA');
  });
});

describe('bsr on CUDA: parity with the CPU product', function () {
  this.timeout(120_000);
  before(function () {
    if (!info.cuda) {
      console.log(`      CUDA BSR tests skipped: ${info.reason}`);
      this.skip();
    }
  });

  const shapes: [number, number, number][] = [[16, 16, 1], [100, 70, 3], [256, 512, 64], [1000, 333, 17], [1024, 1024, 128]];
  for (const b of [16, 32] as const)
    for (const dtype of ['float32', 'float16', 'bfloat16'] as const)
      for (const density of [0, 0.01, 0.1, 0.5, 1])
        it(`${b}x${b} ${dtype} at density ${density}: A·X and X·Aᵀ (+bias, ReLU) match the CPU within the ${dtype === 'float32' ? 'TF32' : 'half-input'} bound`, () => {
          const seed = freshSeed();
          const r = rng(seed);
          for (const [rows, cols, n] of shapes) {
            const w = weights(rows, cols, b, density, r);
            const A = bsr.fromDense(w, rows, cols, [b, b], { dtype });
            const D = bsr.toDevice(A);
            const x = Float32Array.from({ length: cols * n }, () => normal(r));
            const bias = Float32Array.from({ length: rows }, () => normal(r));
            // The CPU product on the inputs rounded as the device rounds them (half types: X in A's type).
            const xr = dtype === 'float32' ? x : bsr.decodeHalf(bsr.encodeHalf(x, dtype), dtype);
            for (const lin of [false, true]) {
              const xt = spartan.tensor(lin ? transpose(x, cols, n) : x, { device: 'cuda' });
              const y = (lin ? bsr.linear(xt, D, { batch: n, bias, relu: true }) : bsr.matmul(D, xt, { n, bias, relu: true })).toFloat32Array();
              const xh = lin ? transpose(xr, cols, n) : xr;
              const cpu = lin ? bsr.linear(xh, A, { batch: n, bias, relu: true }) : bsr.matmul(A, xh, { n, bias, relu: true });
              const mag = magnitudes(A.toDense(), rows, cols, xh, n, lin);
              const tol = dtype === 'float32' ? 4 * 2 ** -11 : (cols + 4) * 2 ** -23;
              const err = scaledError(y, cpu, mag);
              expect(err, `${rows}x${cols} n=${n} linear=${lin} seed ${seed}`).to.be.at.most(tol);
              xt.dispose();
            }
            D.dispose();
          }
        });

  it('copy mode (Float32Array x), async, disposed matrix', async () => {
    const r = rng(freshSeed());
    const w = weights(64, 96, 32, 0.5, r), x = Float32Array.from({ length: 96 * 8 }, () => normal(r));
    const A = bsr.fromDense(w, 64, 96, [32, 32]);
    const D = bsr.toDevice(A);
    const y = bsr.matmul(D, x, { n: 8 });
    expect(y).to.be.instanceOf(Float32Array);
    const ya = await bsr.matmulAsync(D, x, { n: 8 });
    expect(Array.from(ya)).to.deep.equal(Array.from(y));
    const sq = bsr.toDevice(bsr.fromDense(weights(64, 64, 32, 1, r), 64, 64, [32, 32]));
    const xt = spartan.tensor(Float32Array.from({ length: 64 * 64 }, () => normal(r)), { device: 'cuda' });
    expectCode(() => bsr.matmul(sq, xt, { out: xt }), RangeError, 'ERR_SPARTAN_ALIAS');
    expectCode(() => bsr.matmul(D, x, { n: 8, out: new Float32Array(3) }), RangeError, 'ERR_SPARTAN_LENGTH');
    sq.dispose();
    D.dispose();
    expectCode(() => bsr.matmul(D, x, { n: 8 }), TypeError, 'ERR_SPARTAN_DISPOSED');
  });
});

function transpose(x: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(x.length);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) t[j * rows + i] = x[i * cols + j];
  return t;
}

function magnitudes(a: Float32Array, rows: number, cols: number, x: Float32Array, n: number, linear: boolean): Float64Array {
  const m = new Float64Array(rows * n);
  for (let i = 0; i < rows; i++)
    for (let k = 0; k < cols; k++) {
      const v = Math.abs(a[i * cols + k]);
      if (v === 0) continue;
      for (let j = 0; j < n; j++) m[linear ? j * rows + i : i * n + j] += v * Math.abs(linear ? x[j * cols + k] : x[k * n + j]);
    }
  return m;
}
