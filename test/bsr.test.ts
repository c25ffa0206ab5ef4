// Block-sparse (BSR) products against float64 references on fresh random inputs.
import { expect } from 'chai';
import * as spartan from '../lib/index';
import { bsr, SparseLinear } from '../lib/index';
import { GraphRunner } from '../lib/graph/runner';
import { codeOf, expectCode, expectRejectCode, failure } from './helpers';
import { freshSeed, normal, rng } from './reference';

const seed = freshSeed();
const rand = rng(seed);
const EPS = 2 ** -24;

type Dtype = 'float32' | 'float16' | 'bfloat16';

/** A rows x cols weight with about `density` of its b x b blocks non-zero (ragged edges included). */
function randomWeights(rows: number, cols: number, b: number, density: number): { w: Float32Array; blockMask: Uint8Array } {
  const nbr = Math.ceil(rows / b), nbc = Math.ceil(cols / b);
  const blockMask = Uint8Array.from({ length: nbr * nbc }, () => (rand() < density ? 1 : 0));
  const w = new Float32Array(rows * cols);
  for (let r = 0; r < rows; r++)
    for (let c = 0; c < cols; c++) if (blockMask[Math.floor(r / b) * nbc + Math.floor(c / b)]) w[r * cols + c] = normal(rand);
  return { w, blockMask };
}

const randomVec = (n: number, scale = 1) => Float32Array.from({ length: n }, () => scale * normal(rand));

/**
 * Float64 reference of Y = A X (or X A^T) from a dense A, with the sum of |terms| per
 * output for the float32 error bound: |y - ref| <= (K + 2) eps * sum|a x| (+ bias rounding).
 */
function reference(A: Float32Array, rows: number, cols: number, x: ArrayLike<number>, n: number, linear: boolean, bias?: Float32Array, relu = false) {
  const y = new Float64Array(rows * n), mag = new Float64Array(rows * n);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < n; j++) {
      let s = 0, m = 0;
      for (let k = 0; k < cols; k++) {
        const a = A[i * cols + k];
        if (a === 0) continue;
        const t = a * (linear ? x[j * cols + k] : x[k * n + j]);
        s += t;
        m += Math.abs(t);
      }
      if (bias) {
        s += bias[i];
        m += Math.abs(bias[i]);
      }
      const o = linear ? j * rows + i : i * n + j;
      y[o] = relu && s < 0 ? 0 : s;
      mag[o] = m;
    }
  return { y, mag };
}

function expectParity(got: Float32Array, ref: { y: Float64Array; mag: Float64Array }, K: number, what: string) {
  expect(got.length, `${what} length`).to.equal(ref.y.length);
  const k = (K + 2) * EPS;
  for (let i = 0; i < got.length; i++) {
    const tol = k * ref.mag[i] + 1e-30;
    const d = Math.abs(got[i] - ref.y[i]);
    if (!(d <= tol)) expect.fail(`${what}[${i}] = ${got[i]}, expected ${ref.y[i]} (|diff| ${d} > ${tol})`);
  }
}

describe(`bsr: block-sparse products (seed ${seed})`, () => {
  const shapes: [number, number, number, 16 | 32][] = [
    [64, 96, 40, 16],
    [50, 70, 33, 16], // ragged rows and cols
    [100, 37, 5, 32], // ragged, cols < 2 blocks
    [33, 65, 1, 32], // batch / n = 1
    [17, 200, 3, 16],
    [1, 1, 1, 16],
    [128, 256, 20, 32],
    [31, 15, 130, 16], // cols < b; n above one tile
  ];
  for (const [rows, cols, n, b] of shapes)
    for (const density of [0.01, 0.1, 0.5, 1])
      it(`${rows}x${cols} b=${b}, n=${n}, density ${density}: A·X and X·Aᵀ against float64`, () => {
        const { w, blockMask } = randomWeights(rows, cols, b, density);
        const A = bsr.fromDense(w, rows, cols, [b, b], { mask: blockMask });
        expect(A.nnzBlocks).to.equal(blockMask.reduce((s, v) => s + v, 0));
        expect(A.density).to.be.closeTo(A.nnzBlocks / blockMask.length, 1e-12);
        expect(Array.from(A.toDense())).to.deep.equal(Array.from(w));
        const x = randomVec(cols * n);
        expectParity(bsr.matmul(A, x), reference(w, rows, cols, x, n, false), cols, 'A·X');
        expectParity(bsr.linear(x, A), reference(w, rows, cols, x, n, true), cols, 'X·Aᵀ');
        const bias = randomVec(rows);
        expectParity(bsr.matmul(A, x, { bias, relu: true }), reference(w, rows, cols, x, n, false, bias, true), cols, 'A·X + bias, relu');
        expectParity(bsr.linear(x, A, { bias, relu: true }), reference(w, rows, cols, x, n, true, bias, true), cols, 'X·Aᵀ + bias, relu');
      });

  for (const b of [16, 32] as const) {
    it(`all-empty and all-full matrices (b=${b})`, () => {
      const rows = 3 * b + 5, cols = 2 * b + 7, n = 9;
      const empty = bsr.fromDense(new Float32Array(rows * cols), rows, cols, [b, b]);
      expect(empty.nnzBlocks).to.equal(0);
      expect(empty.density).to.equal(0);
      const x = randomVec(cols * n), bias = randomVec(rows);
      expect(Array.from(bsr.matmul(empty, x))).to.deep.equal(new Array(rows * n).fill(0));
      const yb = bsr.linear(x, empty, { bias, relu: true });
      for (let j = 0; j < n; j++) for (let i = 0; i < rows; i++) expect(yb[j * rows + i]).to.equal(Math.max(bias[i], 0));
      const w = randomVec(rows * cols);
      const full = bsr.fromDense(w, rows, cols, [b, b]);
      expect(full.density).to.equal(1);
      expectParity(bsr.matmul(full, x, { bias }), reference(w, rows, cols, x, n, false, bias), cols, 'full A·X');
      expectParity(bsr.linear(x, full, { bias }), reference(w, rows, cols, x, n, true, bias), cols, 'full X·Aᵀ');
    });
  }

  it('a per-entry mask selects blocks and zeroes the dropped entries', () => {
    const rows = 40, cols = 50, b = 16;
    const w = randomVec(rows * cols);
    const mask = Uint8Array.from({ length: rows * cols }, (_, i) => (Math.floor(i / cols) < 16 && i % cols < 20 && i % 3 === 0 ? 1 : 0));
    const A = bsr.fromDense(w, rows, cols, [b, b], { mask });
    expect(A.nnzBlocks).to.equal(2); // block row 0, block columns 0 and 1
    const dense = A.toDense();
    for (let i = 0; i < w.length; i++) expect(dense[i]).to.equal(mask[i] ? w[i] : 0);
    const soft = bsr.fromDense(w, rows, cols, [b, b], { mask: Float32Array.from(mask, (m) => m * 0.3) });
    expect(Array.from(soft.toDense())).to.deep.equal(Array.from(dense)); // the mask selects, it does not scale
  });

  for (const dtype of ['float16', 'bfloat16'] as const)
    for (const b of [16, 32] as const)
      it(`${dtype} values (b=${b}): against float64 on the rounded inputs, X as Float32Array or ${dtype} bits`, () => {
        const rows = 2 * b + 3, cols = 3 * b - 5, n = 11;
        const { w, blockMask } = randomWeights(rows, cols, b, 0.6);
        const A = bsr.fromDense(w, rows, cols, [b, b], { mask: blockMask, dtype });
        expect(A.values).to.be.instanceOf(Uint16Array);
        expect(A.dtype).to.equal(dtype);
        const wr = A.toDense(); // the rounded weights, exactly
        let rounded = 0;
        for (let i = 0; i < w.length; i++) {
          if (wr[i] !== w[i]) rounded++;
          expect(Math.abs(wr[i] - w[i])).to.be.at.most(Math.abs(w[i]) * (dtype === 'float16' ? 2 ** -11 : 2 ** -8) + 2 ** -25);
        }
        expect(rounded).to.be.greaterThan(0);
        const x = randomVec(cols * n), bias = randomVec(rows);
        expectParity(bsr.matmul(A, x, { bias }), reference(wr, rows, cols, x, n, false, bias), cols, `${dtype} A·X (float32 X)`);
        const xh = bsr.encodeHalf(x, dtype), xr = bsr.decodeHalf(xh, dtype);
        expectParity(bsr.matmul(A, xh, { bias, relu: true }), reference(wr, rows, cols, xr, n, false, bias, true), cols, `${dtype} A·X`);
        const xl = randomVec(n * cols), xlh = bsr.encodeHalf(xl, dtype), xlr = bsr.decodeHalf(xlh, dtype);
        expectParity(bsr.linear(xlh, A, { bias }), reference(wr, rows, cols, xlr, n, true, bias), cols, `${dtype} X·Aᵀ`);
        expectParity(bsr.linear(xl, A), reference(wr, rows, cols, xl, n, true), cols, `${dtype} X·Aᵀ (float32 X)`);
      });

  it('half conversions: round to nearest even, subnormals, overflow, NaN', () => {
    const f16 = bsr.decodeHalf(bsr.encodeHalf(Float32Array.of(1, 1 + 2 ** -11, 1 + 3 * 2 ** -11, 65504, 65520, 2 ** -24, 2 ** -25, 3 * 2 ** -26, -0, NaN), 'float16'), 'float16');
    expect(Array.from(f16.subarray(0, 8))).to.deep.equal([1, 1, 1 + 2 ** -9, 65504, Infinity, 2 ** -24, 0, 2 ** -24]);
    expect(Object.is(f16[8], -0)).to.equal(true);
    expect(f16[9]).to.be.NaN;
    const bf = bsr.decodeHalf(bsr.encodeHalf(Float32Array.of(1 + 2 ** -8, 1 + 3 * 2 ** -8, 3.4e38, NaN), 'bfloat16'), 'bfloat16');
    expect(Array.from(bf.subarray(0, 3))).to.deep.equal([1, 1 + 2 ** -6, Infinity]);
    expect(bf[3]).to.be.NaN;
  });

  it('uneven block rows: one dense block row among empty ones; bit-identical for any thread count', () => {
    const b = 16, rows = 40 * b, cols = 64 * b, n = 64;
    const w = new Float32Array(rows * cols);
    for (let r = 7 * b; r < 8 * b; r++) for (let c = 0; c < cols; c++) w[r * cols + c] = normal(rand);
    for (let c = 0; c < b; c++) w[30 * b * cols + c] = 1; // and one small block elsewhere
    const A = bsr.fromDense(w, rows, cols, [b, b]);
    expect(A.nnzBlocks).to.equal(65);
    const x = randomVec(cols * n);
    const before = spartan.backend().threads;
    try {
      spartan.setNumThreads(1);
      const y1 = bsr.matmul(A, x), l1 = bsr.linear(x, A), d1 = bsr.linear(x.subarray(0, 2 * cols), A);
      spartan.setNumThreads(3);
      const y3 = bsr.matmul(A, x), l3 = bsr.linear(x, A), d3 = bsr.linear(x.subarray(0, 2 * cols), A);
      expect(Array.from(y3)).to.deep.equal(Array.from(y1));
      expect(Array.from(l3)).to.deep.equal(Array.from(l1));
      expect(Array.from(d3)).to.deep.equal(Array.from(d1));
      expectParity(y3, reference(w, rows, cols, x, n, false), cols, 'uneven A·X');
      expectParity(l3, reference(w, rows, cols, x, n, true), cols, 'uneven X·Aᵀ');
    } finally {
      spartan.setNumThreads(before);
    }
  });

  it('async forms agree with the sync forms; out is honoured', async () => {
    const { w } = randomWeights(96, 80, 16, 0.3);
    const A = bsr.fromDense(w, 96, 80, [16, 16]);
    const x = randomVec(80 * 12), bias = randomVec(96);
    const out = new Float32Array(96 * 12);
    expect(await bsr.matmulAsync(A, x, { bias, out })).to.equal(out);
    expect(Array.from(out)).to.deep.equal(Array.from(bsr.matmul(A, x, { bias })));
    const l = await bsr.linearAsync(x, A, { relu: true });
    expect(Array.from(l)).to.deep.equal(Array.from(bsr.linear(x, A, { relu: true })));
  });

  describe('SparseLinear', () => {
    it('fromDense(weight [out, in], bias, relu) matches a float64 linear layer', async () => {
      const out = 70, inF = 90, batch = 13;
      const { w } = randomWeights(out, inF, 32, 0.4);
      const bias = randomVec(out);
      const layer = SparseLinear.fromDense(w, [out, inF], { block: 32, bias, relu: true });
      expect(layer.inFeatures).to.equal(inF);
      expect(layer.outFeatures).to.equal(out);
      const x = randomVec(batch * inF);
      expectParity(layer.forward(x), reference(w, out, inF, x, batch, true, bias, true), inF, 'SparseLinear');
      expect(Array.from(await layer.forwardAsync(x, batch))).to.deep.equal(Array.from(layer.forward(x, batch)));
      expectCode(() => layer.forward(x, batch + 1), RangeError, 'ERR_SPARTAN_LENGTH');
      expectCode(() => layer.forward(x.subarray(1)), RangeError, 'ERR_SPARTAN_LENGTH');
      expectCode(() => new SparseLinear(layer.weight, { bias: new Float32Array(3) }), RangeError, 'ERR_SPARTAN_LENGTH');
    });

    it('runs a finalized LeNet-300-100 (block-pruned) like onnxruntime does', async function () {
      this.timeout(60000);
      const m = spartan.lenet300100(seed % 1000);
      // prune ~85 % of the 16x16 blocks of every weight, as a finalized block-sparse model would be
      const inits = m.graph.initializers.map((t) => {
        if (t.dims.length !== 2) return t;
        const [r, c] = t.dims;
        const keep = Uint8Array.from({ length: Math.ceil(r / 16) * Math.ceil(c / 16) }, () => (rand() < 0.15 ? 1 : 0));
        const data = Float32Array.from(t.data as Float32Array, (v, i) => (keep[Math.floor(Math.floor(i / c) / 16) * Math.ceil(c / 16) + Math.floor((i % c) / 16)] ? v : 0));
        return { ...t, data };
      });
      const model = { ...m, graph: { ...m.graph, initializers: inits } };
      const layers = bsr.sparseLinearsFromModel(model);
      expect(layers.map((l) => l.weight)).to.deep.equal(['fc1.weight', 'fc2.weight', 'fc3.weight']);
      expect(layers[0].layer.outFeatures).to.equal(300);
      expect(layers[0].layer.weight.density).to.be.lessThan(0.3);
      const sm = bsr.SparseModel.fromModel(model);
      expect(sm.layers.map((l) => l.layer.relu)).to.deep.equal([true, true, false]);
      const batch = 7;
      const x = Float32Array.from({ length: batch * 784 }, () => rand());
      const y = sm.forward(x, batch);
      const runner = await GraphRunner.create(model);
      try {
        const ref = (await runner.run({ x: { data: x, dims: [batch, 1, 28, 28] } }))['logits'] as Float32Array;
        expect(y.length).to.equal(ref.length);
        for (let i = 0; i < ref.length; i++) expect(y[i]).to.be.closeTo(ref[i], 1e-4 * (1 + Math.abs(ref[i])));
      } finally {
        await runner.release();
      }
      expectCode(() => bsr.SparseModel.fromModel(spartan.lenet5()), RangeError, 'ERR_SPARTAN_UNSUPPORTED_OP');
    });

    it('a malformed model is one ERR_SPARTAN_ONNX naming what is wrong, not a dropped layer, a wrong scale or an uncoded TypeError', () => {
      const m = spartan.lenet300100(1);
      const init = (name: string, over: object) => ({ ...m, graph: { ...m.graph, initializers: m.graph.initializers.map((t) => (t.name === name ? { ...t, ...over } : t)) } });
      const node = (i: number, over: object) => ({ ...m, graph: { ...m.graph, nodes: m.graph.nodes.map((n, j) => (j === i ? { ...n, ...over } : n)) } });
      const fc1 = m.graph.nodes[1]; // Gemm fc1
      const cases: [typeof m, RegExp][] = [
        [init('fc1.weight', { dims: [-300, -784] }), /initializer "fc1\.weight" has dims \[-300, -784\]; each must be an integer >= 0$/], // its layer was left out
        [init('fc2.weight', { dims: [100, 300.5] }), /initializer "fc2\.weight" has dims \[100, 300\.5\]/],
        [init('fc1.weight', { data: (m.graph.initializers[0].data as Float32Array).subarray(5) }), /initializer "fc1\.weight" holds 235195 values; its dims \[300, 784\] need 235200$/], // was "weights[...] is NaN"
        [node(1, { attrs: { ...fc1.attrs, alpha: { i: 3 } } }), /attribute alpha of Gemm must be \{ f: \.\.\. \}/], // was read as alpha = 1
        [node(1, { attrs: { ...fc1.attrs, transB: { f: 1 } } }), /attribute transB of Gemm must be \{ i: \.\.\. \}/],
        [node(1, { inputs: undefined }), /\(Gemm\): inputs and outputs must be arrays of tensor names$/], // was "Cannot read properties of undefined"
      ];
      for (const [bad, pattern] of cases)
        for (const convert of [() => bsr.sparseLinearsFromModel(bad), () => bsr.SparseModel.fromModel(bad)]) {
          const got = codeOf(convert);
          expect(got).to.match(/^ERR_SPARTAN_ONNX: /);
          expect(got).to.match(pattern);
        }
      // anything else that fails inside without a code is still one ERR_SPARTAN_ONNX
      const throwing = node(3, {});
      Object.defineProperty(throwing.graph.nodes[3], 'inputs', { get: () => { throw new TypeError('a getter failed'); } });
      for (const convert of [() => bsr.sparseLinearsFromModel(throwing), () => bsr.SparseModel.fromModel(throwing)])
        expect(codeOf(convert)).to.match(/^ERR_SPARTAN_ONNX: cannot read the model's layers: a getter failed/);
    });
  });

  describe('errors', () => {
    const w = Float32Array.from({ length: 40 * 50 }, (_, i) => (i % 3) - 1);
    const A = bsr.fromDense(w, 40, 50, [16, 16]);
    const x = new Float32Array(50 * 4);

    it('fromDense: shapes, lengths, types, options, non-finite weights', () => {
      expectCode(() => bsr.fromDense(w, 40, 50, [16, 32]), RangeError, 'ERR_SPARTAN_SHAPE');
      expectCode(() => bsr.fromDense(w, 40, 50, [8, 8]), RangeError, 'ERR_SPARTAN_SHAPE');
      expectCode(() => bsr.fromDense(w, 40, 51, [16, 16]), RangeError, 'ERR_SPARTAN_LENGTH');
      expectCode(() => bsr.fromDense(w, 40.5, 50, [16, 16]), RangeError, 'ERR_SPARTAN_SHAPE');
      expectCode(() => bsr.fromDense(Float64Array.from(w) as unknown as Float32Array, 40, 50, [16, 16]), TypeError, 'ERR_SPARTAN_TYPE');
      expectCode(() => bsr.fromDense(w, 40, 50, [16, 16], { mask: new Uint8Array(7) }), RangeError, 'ERR_SPARTAN_LENGTH');
      expectCode(() => bsr.fromDense(w, 40, 50, [16, 16], { mask: [1, 0] as unknown as Uint8Array }), TypeError, 'ERR_SPARTAN_TYPE');
      expectCode(() => bsr.fromDense(w, 40, 50, [16, 16], { dtype: 'int8' as 'float16' }), TypeError, 'ERR_SPARTAN_OPTION');
      const bad = w.slice();
      bad[77] = NaN;
      expectCode(() => bsr.fromDense(bad, 40, 50, [16, 16]), RangeError, 'ERR_SPARTAN_NON_FINITE');
      const big = w.slice();
      big[3] = 1e6;
      expectCode(() => bsr.fromDense(big, 40, 50, [16, 16], { dtype: 'float16' }), RangeError, 'ERR_SPARTAN_NON_FINITE');
      expect(bsr.fromDense(big, 40, 50, [16, 16], { dtype: 'bfloat16' }).nnzBlocks).to.equal(A.nnzBlocks);
    });

    it('matmul / linear: operand types, lengths, options, aliasing', () => {
      expectCode(() => bsr.matmul(A, x.subarray(1)), RangeError, 'ERR_SPARTAN_LENGTH');
      expectCode(() => bsr.matmul(A, x, { n: 5 }), RangeError, 'ERR_SPARTAN_LENGTH');
      expectCode(() => bsr.matmul(A, x, { n: 2.5 }), RangeError, 'ERR_SPARTAN_SHAPE');
      expectCode(() => bsr.matmul(A, x, { n: '5' as unknown as number }), TypeError, 'ERR_SPARTAN_TYPE');
      expectCode(() => bsr.matmul(A, new Float64Array(200) as unknown as Float32Array), TypeError, 'ERR_SPARTAN_TYPE');
      expectCode(() => bsr.matmul(A, new Uint16Array(200)), TypeError, 'ERR_SPARTAN_TYPE'); // half X with a float32 matrix
      expectCode(() => bsr.matmul({} as bsr.BsrMatrix, x), TypeError, 'ERR_SPARTAN_TYPE');
      expectCode(() => bsr.matmul(A, x, { bias: new Float32Array(3) }), RangeError, 'ERR_SPARTAN_LENGTH');
      expectCode(() => bsr.matmul(A, x, { bias: new Float64Array(40) as unknown as Float32Array }), TypeError, 'ERR_SPARTAN_TYPE');
      expectCode(() => bsr.matmul(A, x, { out: new Float32Array(3) }), RangeError, 'ERR_SPARTAN_LENGTH');
      expectCode(() => bsr.matmul(A, x, { relu: 1 as unknown as boolean }), TypeError, 'ERR_SPARTAN_OPTION');
      expectCode(() => bsr.matmul(A, x, 3 as never), TypeError, 'ERR_SPARTAN_OPTION');
      const shared = new Float32Array(50 * 4 + 40 * 4);
      expectCode(() => bsr.matmul(A, shared.subarray(0, 200), { out: shared.subarray(100, 260) }), RangeError, 'ERR_SPARTAN_ALIAS');
      expectCode(() => bsr.linear(x, A, { batch: 0 }), RangeError, 'ERR_SPARTAN_SHAPE');
      const half = bsr.fromDense(w, 40, 50, [16, 16], { dtype: 'bfloat16' });
      expect(bsr.matmul(half, new Uint16Array(200)).length).to.equal(160);
    });

    it('a huge n or batch: x is checked against it before the output is allocated (a coded error, not V8\'s)', async () => {
      const want = `ERR_SPARTAN_LENGTH: x has length 50; expected ${2 ** 31 * 50}`;
      expect(codeOf(() => bsr.matmul(A, x.subarray(0, 50), { n: 2 ** 31 }))).to.equal(want);
      expect(codeOf(() => bsr.linear(x.subarray(0, 50), A, { batch: 2 ** 31 }))).to.equal(want);
      expect(await failure(bsr.matmulAsync(A, x.subarray(0, 50), { n: 2 ** 31 }))).to.equal(want);
      expect(await failure(bsr.linearAsync(x.subarray(0, 50), A, { batch: 2 ** 31 }))).to.equal(want);
      const layer = new SparseLinear(A);
      expect(codeOf(() => layer.forward(x.subarray(0, 50), 2 ** 31))).to.equal(want);
      expect(await failure(layer.forwardAsync(x.subarray(0, 50), 2 ** 31))).to.equal(want);
      const half = bsr.fromDense(w, 40, 50, [16, 16], { dtype: 'float16' });
      expect(codeOf(() => bsr.matmul(half, new Uint16Array(50), { n: 2 ** 31 }))).to.equal(want);
      // a type error stays the native call's
      expect(codeOf(() => bsr.matmul(A, new Uint16Array(50), { n: 2 }))).to.match(/^ERR_SPARTAN_TYPE: x must be a Float32Array/);
    });

    it('a malformed structure is rejected, at construction and again at call time (sync and async)', async () => {
      const parts = { rows: 40, cols: 50, blockSize: 16 as const, rowPtr: A.rowPtr.slice(), colIdx: A.colIdx.slice(), values: (A.values as Float32Array).slice() };
      expect(new bsr.BsrMatrix(parts).nnzBlocks).to.equal(A.nnzBlocks);
      expectCode(() => new bsr.BsrMatrix({ ...parts, rowPtr: Int32Array.of(0, 5, 3, 12) }), RangeError, 'ERR_SPARTAN_SHAPE');
      expectCode(() => new bsr.BsrMatrix({ ...parts, colIdx: parts.colIdx.map((c, i) => (i === 2 ? 4 : c)) }), RangeError, 'ERR_SPARTAN_SHAPE');
      expectCode(() => new bsr.BsrMatrix({ ...parts, rowPtr: parts.rowPtr.subarray(1) }), RangeError, 'ERR_SPARTAN_LENGTH');
      expectCode(() => new bsr.BsrMatrix({ ...parts, values: parts.values.subarray(1) }), RangeError, 'ERR_SPARTAN_LENGTH');
      expectCode(() => new bsr.BsrMatrix({ ...parts, blockSize: 8 as 16 }), RangeError, 'ERR_SPARTAN_SHAPE');
      expectCode(() => new bsr.BsrMatrix({ ...parts, values: new Uint16Array(parts.values.length) }), TypeError, 'ERR_SPARTAN_TYPE');
      // arrays changed after construction: the native call re-validates before writing
      const M = new bsr.BsrMatrix({ ...parts, rowPtr: parts.rowPtr.slice(), colIdx: parts.colIdx.slice() });
      const out = new Float32Array(160).fill(7);
      M.colIdx[1] = 1 << 30;
      expectCode(() => bsr.matmul(M, x, { out }), RangeError, 'ERR_SPARTAN_SHAPE');
      await expectRejectCode(bsr.linearAsync(x, M), RangeError, 'ERR_SPARTAN_SHAPE');
      M.colIdx[1] = -1;
      expectCode(() => bsr.linear(x, M), RangeError, 'ERR_SPARTAN_SHAPE');
      M.colIdx.set(parts.colIdx);
      M.rowPtr[1] = 1e6;
      expectCode(() => bsr.matmul(M, x, { out }), RangeError, 'ERR_SPARTAN_SHAPE');
      M.rowPtr[1] = -3;
      expectCode(() => bsr.matmul(M, x, { out }), RangeError, 'ERR_SPARTAN_SHAPE');
      expect(out.every((v) => v === 7)).to.equal(true);
    });

    it('a detached operand is a coded TypeError', () => {
      const y = new Float32Array(200);
      structuredClone(y.buffer, { transfer: [y.buffer] });
      expectCode(() => bsr.matmul(A, y, { n: 4 }), TypeError, 'ERR_SPARTAN_DETACHED');
    });
  });
});
