// Derived gradients of the layer operators beyond the core set (lib/graph/layerGrads.ts,
// convGrads.ts, axisMaps.ts), each checked by central differences through onnxruntime-node:
// float64 where onnxruntime has the kernels, float32 (step 1e-2) where it has not.
import { expect } from 'chai';
import { deriveTrainingGraph } from '../lib/graph/autodiff';
import { GraphBuilder, model } from '../lib/graph/builder';
import type { Attr } from '../lib/graph/model';
import { DataType } from '../lib/graph/schema';
import { checkGradients } from './gradcheck';
import { freshSeed, normal, rng } from './reference';
import { codeOf } from './helpers';

const seed = Number(process.env.TEST_SEED) || freshSeed();
const rand = rng(seed);
const D = DataType.DOUBLE, F = DataType.FLOAT;
const randn = (n: number, s = 0.5) => Float64Array.from({ length: n }, () => normal(rand) * s);
const r32 = (n: number, s = 0.3) => Float32Array.from(randn(n, s));
const labels = (N: number, C: number) => ({ data: BigInt64Array.from({ length: N }, () => BigInt(Math.floor(rand() * C))), dims: [N] });
/** Values at least 0.2 from 0, so a kink at 0 stays outside every finite-difference window. */
const offZero = (n: number) => Float32Array.from({ length: n }, () => (rand() < 0.5 ? -1 : 1) * (0.2 + rand()));
const numel = (dims: number[]) => dims.reduce((a, b) => a * b, 1);

/** A float32 head: Flatten, then a Gemm onto C logits. */
function head(b: GraphBuilder, h: string, width: number, C: number, T: number = F) {
  const w = T === F ? r32(width * C) : randn(width * C, 0.3);
  b.op('Gemm', [b.op('Flatten', [h], { axis: { i: 1 } }), b.initializer('head', [width, C], w, T)], {}, ['logits']);
  b.output('logits', T, ['N', C]);
}

describe(`training-graph derivation: ConvTranspose, grouped and depthwise Conv, AveragePool in every counting mode (seed ${seed})`, () => {
  it('float32: ConvTranspose (2-D: strides, asymmetric pads, output_padding, dilations, groups; 1-D) and a depthwise Conv with a channel multiplier', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', F, ['N', 2, 4, 5]);
    const c0 = b.op('Conv', [x, b.initializer('k0', [4, 2, 1, 1], r32(8), F)]); // [N, 4, 4, 5]: x's gradient path
    const t = b.op('ConvTranspose', [b.op('Tanh', [c0]), b.initializer('kt', [4, 3, 3, 2], r32(72), F), b.initializer('bt', [6], r32(6), F)], {
      strides: { ints: [2, 3] }, pads: { ints: [1, 0, 2, 1] }, output_padding: { ints: [1, 2] }, dilations: { ints: [1, 2] }, group: { i: 2 },
    }); // H: 2*3 + 1 + 2 + 1 - 3 = 7; W: 3*4 + 2 + 2*1 + 1 - 1 = 16
    const dw = b.op('Conv', [b.op('Tanh', [t]), b.initializer('kd', [12, 1, 3, 3], r32(108), F)], { group: { i: 6 }, strides: { ints: [2, 3] } }); // [N, 12, 3, 5]
    const seq = b.op('Reshape', [dw, b.int64s([0, 12, 15])]);
    const t1 = b.op('ConvTranspose', [b.op('Tanh', [seq]), b.initializer('k1', [12, 2, 3], r32(72), F)], { strides: { ints: [2] }, pads: { ints: [1, 1] } }); // [N, 2, 29]
    head(b, t1, 58, 4);
    const N = 2;
    const feeds = { x: { data: r32(N * 40, 1), dims: [N, 2, 4, 5] }, labels: labels(N, 4) };
    const train = deriveTrainingGraph(model(b.graph('deconv')), { logits: 'logits' });
    expect(train.graph.nodes.filter((n) => n.opType === 'Conv' && n.attrs.group && 'i' in n.attrs.group && n.attrs.group.i === 6).length, 'one Conv for all six groups of dW').to.equal(2);
    expect(await checkGradients(model(b.graph('deconv')), feeds, { logits: 'logits' }, 1e-3, 1e-2)).to.equal(8 + 72 + 6 + 108 + 72 + 58 * 4);
  });

  it('float32: AveragePool with ceil_mode (a last window cut by the edge) and with padding, counted with and without it, in 1-D and 2-D', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', F, ['N', 2, 7, 8]);
    const c = b.op('Tanh', [b.op('Conv', [x, b.initializer('k', [3, 2, 1, 1], r32(6), F), b.initializer('kb', [3], r32(3), F)])]); // [N, 3, 7, 8]
    const pools: Record<string, Attr>[] = [
      // ceil: 7 -> 4 rows, the last window (rows 6..7) cut to 1; 8 -> 4 columns, the last (6..8) cut to 2
      { kernel_shape: { ints: [2, 3] }, strides: { ints: [2, 2] }, ceil_mode: { i: 1 } },
      { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] }, pads: { ints: [1, 1, 1, 0] }, ceil_mode: { i: 1 } },
      { kernel_shape: { ints: [3, 3] }, strides: { ints: [2, 2] }, pads: { ints: [1, 1, 1, 0] }, ceil_mode: { i: 1 }, count_include_pad: { i: 1 } },
      { kernel_shape: { ints: [2, 3] }, strides: { ints: [1, 2] }, pads: { ints: [0, 1, 1, 2] } }, // no ceil, pads not counted
    ];
    const flat = pools.map((attrs) => b.op('Flatten', [b.op('AveragePool', [c], attrs)], { axis: { i: 1 } }));
    const seq = b.op('Reshape', [c, b.int64s([0, 3, 56])]);
    flat.push(b.op('Flatten', [b.op('AveragePool', [seq], { kernel_shape: { ints: [5] }, strides: { ints: [4] }, ceil_mode: { i: 1 } })], { axis: { i: 1 } })); // 56 -> 14, the last window cut to 4
    const widths = [3 * 4 * 4, 3 * 4 * 4, 3 * 4 * 4, 3 * 7 * 5, 3 * 14];
    head(b, b.op('Concat', flat, { axis: { i: 1 } }), widths.reduce((p, q) => p + q), 3);
    const N = 2;
    const feeds = { x: { data: r32(N * 112, 1), dims: [N, 2, 7, 8] }, labels: labels(N, 3) };
    expect(await checkGradients(model(b.graph('avgpools')), feeds, { logits: 'logits' }, 1e-3, 1e-2)).to.equal(6 + 3 + widths.reduce((p, q) => p + q) * 3);
  });
});

describe(`training-graph derivation: Resize and the reflect / edge / wrap Pad (seed ${seed})`, () => {
  // The forward stays onnxruntime's own Resize: each case checks the interpolation matrix
  // the gradient uses against what onnxruntime computes.
  const cases: { name: string; attrs: Record<string, Attr>; scales?: number[]; sizes?: number[]; out: number[] }[] = [
    { name: 'nearest x2 (PyTorch: asymmetric, floor)', attrs: { mode: { s: 'nearest' }, coordinate_transformation_mode: { s: 'asymmetric' }, nearest_mode: { s: 'floor' } }, scales: [1, 1, 2, 2], out: [8, 10] },
    { name: 'nearest 0.5 (half_pixel, round_prefer_floor)', attrs: { mode: { s: 'nearest' } }, scales: [1, 1, 0.5, 0.5], out: [2, 2] },
    { name: 'nearest to 3x7 (align_corners, round_prefer_ceil)', attrs: { mode: { s: 'nearest' }, coordinate_transformation_mode: { s: 'align_corners' }, nearest_mode: { s: 'round_prefer_ceil' } }, sizes: [-1, 3, 3, 7], out: [3, 7] },
    { name: 'nearest x1.5 (tf_half_pixel_for_nn, ceil)', attrs: { mode: { s: 'nearest' }, coordinate_transformation_mode: { s: 'tf_half_pixel_for_nn' }, nearest_mode: { s: 'ceil' } }, scales: [1, 1, 1.5, 1.5], out: [6, 7] },
    { name: 'linear x2 (half_pixel: the edges clamp)', attrs: { mode: { s: 'linear' } }, scales: [1, 1, 2, 2], out: [8, 10] },
    { name: 'linear to 3x9 (pytorch_half_pixel)', attrs: { mode: { s: 'linear' }, coordinate_transformation_mode: { s: 'pytorch_half_pixel' } }, sizes: [-1, 3, 3, 9], out: [3, 9] },
    { name: 'linear x1.5 (align_corners)', attrs: { mode: { s: 'linear' }, coordinate_transformation_mode: { s: 'align_corners' } }, scales: [1, 1, 1.5, 1.5], out: [6, 7] },
    { name: 'linear 0.6 (asymmetric)', attrs: { mode: { s: 'linear' }, coordinate_transformation_mode: { s: 'asymmetric' } }, scales: [1, 1, 0.6, 0.6], out: [2, 3] },
  ];
  for (const c of cases)
    it(`float32: ${c.name}`, async function () {
      this.timeout(120000);
      const b = new GraphBuilder();
      const x = b.input('x', F, ['N', 3, 4, 5]);
      const h = b.op('Tanh', [b.op('Conv', [x, b.initializer('k', [3, 3, 1, 1], r32(9), F)])]);
      const N = 2;
      // sizes name every axis, the batch too: those cases take a static batch
      const sizes = c.sizes ? b.int64s(c.sizes.map((d, i) => (i === 0 ? N : d))) : '';
      const scales = c.scales ? b.constant(Float32Array.from(c.scales), [4], F) : '';
      const r = b.op('Resize', [h, '', scales, sizes], c.attrs);
      head(b, r, 3 * numel(c.out), 3);
      const fwd = model({ ...b.graph('resize'), inputs: [{ name: 'x', elemType: F, shape: c.sizes ? [N, 3, 4, 5] : ['N', 3, 4, 5] }] });
      const feeds = { x: { data: r32(N * 60, 1), dims: [N, 3, 4, 5] }, labels: labels(N, 3) };
      expect(await checkGradients(fwd, feeds, { logits: 'logits' }, 1e-3, 1e-2)).to.equal(9 + 3 * numel(c.out) * 3);
    });

  it('float32: a 3-D input resized on its last axis (PyTorch\'s 1-D upsampling), and on the channel axis', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', F, ['N', 3, 6]);
    const h = b.op('Mul', [x, b.initializer('s', [1, 3, 6], r32(18, 1), F)]);
    const up = b.op('Resize', [h, '', b.constant(Float32Array.of(1, 1, 2), [3], F)], { mode: { s: 'linear' } }); // [N, 3, 12]
    const ch = b.op('Resize', [b.op('Tanh', [up]), '', b.constant(Float32Array.of(1, 2, 1), [3], F)], { mode: { s: 'nearest' } }); // [N, 6, 12]
    head(b, ch, 72, 3);
    const N = 2;
    const feeds = { x: { data: r32(N * 18, 1), dims: [N, 3, 6] }, labels: labels(N, 3) };
    expect(await checkGradients(model(b.graph('resize1d')), feeds, { logits: 'logits' }, 1e-3, 1e-2)).to.equal(18 + 72 * 3);
  });

  it('float64: Pad in reflect, edge and wrap mode (pads wider than the input for edge, a crop beside a pad)', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 2, 4, 3]);
    const h = b.op('Mul', [x, b.initializer('s', [1, 2, 4, 3], randn(24, 1), D)]);
    const pads = [
      { mode: 'reflect', pads: [0, 0, 2, 1, 0, 0, 3, 2], out: [2, 9, 6] },
      { mode: 'edge', pads: [0, 0, 5, 0, 0, 0, 1, 4], out: [2, 10, 7] },
      { mode: 'wrap', pads: [0, 0, 1, -1, 0, 0, 2, 3], out: [2, 7, 5] },
    ];
    const flat = pads.map((p) => b.op('Flatten', [b.op('Pad', [h, b.int64s(p.pads)], { mode: { s: p.mode } })], { axis: { i: 1 } }));
    const width = pads.reduce((a, p) => a + numel(p.out), 0);
    head(b, b.op('Concat', flat, { axis: { i: 1 } }), width, 3, D);
    const N = 2;
    const feeds = { x: { data: randn(N * 24, 1), dims: [N, 2, 4, 3] }, labels: labels(N, 3) };
    expect(await checkGradients(model(b.graph('pads')), feeds, { logits: 'logits' }, 1e-6, 1e-5)).to.equal(24 + width * 3);
  });
});

describe(`training-graph derivation: PRelu, InstanceNormalization, Tile, CumSum, norm reductions, Einsum (seed ${seed})`, () => {
  it('float32: PRelu (one slope, a slope per channel), InstanceNormalization on [N, C, H, W] and [N, C, L]', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', F, ['N', 3, 3, 4]);
    // PRelu's input is x times a positive scale: its sign is x's, away from the kink at 0
    const scale = b.initializer('scale', [1, 3, 1, 1], Float32Array.from({ length: 3 }, () => 0.5 + rand()), F);
    const p1 = b.op('PRelu', [b.op('Mul', [x, scale]), b.initializer('slope1', [1], Float32Array.of(0.2), F)]);
    const p2 = b.op('PRelu', [b.op('Mul', [x, scale]), b.initializer('slope3', [3, 1, 1], r32(3), F)]);
    const sum = b.op('Add', [p1, p2]);
    // scales near 1 and eps 1e-2 keep the curvature low enough for float32 differences (steps 1e-2, 5e-3)
    const nearOne = (n: number) => Float32Array.from(randn(n, 0.2), (v) => 1 + v);
    const in4 = b.op('InstanceNormalization', [sum, b.initializer('g4', [3], nearOne(3), F), b.initializer('b4', [3], r32(3), F)], { epsilon: { f: 1e-2 } });
    const seq = b.op('Reshape', [b.op('Tanh', [in4]), b.int64s([0, 6, 6])]);
    const in3 = b.op('InstanceNormalization', [seq, b.initializer('g3', [6], nearOne(6), F), b.initializer('b3', [6], r32(6), F)], { epsilon: { f: 1e-2 } });
    head(b, b.op('Tanh', [in3]), 36, 3);
    const N = 3;
    const feeds = { x: { data: offZero(N * 36), dims: [N, 3, 3, 4] }, labels: labels(N, 3) };
    expect(await checkGradients(model(b.graph('prelu-in')), feeds, { logits: 'logits' }, 2e-3, 1e-2)).to.equal(3 + 1 + 3 + 3 + 3 + 6 + 6 + 36 * 3);
  });

  it('float64: Tile (the batch axis kept, the others repeated), CumSum in all four forms, ReduceL1 / L2 / SumSquare / LogSumExp', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 2, 3]);
    const h = b.op('Mul', [x, b.initializer('s', [2, 3], randn(6, 1), D)]); // [N, 2, 3]
    const tiled = b.op('Tile', [h, b.int64s([1, 2, 3])]); // [N, 4, 9]
    const axis = b.constant(BigInt64Array.of(2n), [], DataType.INT64);
    const sums = [[0, 0], [1, 0], [0, 1], [1, 1]].map(([exclusive, reverse]) => b.op('CumSum', [tiled, axis], { exclusive: { i: exclusive }, reverse: { i: reverse } }));
    const feat = b.op('Concat', sums, { axis: { i: 1 } }); // [N, 16, 9]
    const ax = (a: number[]) => ({ axes: { ints: a } });
    const reductions = [
      b.op('ReduceL1', [b.op('Mul', [x, b.initializer('p', [1, 2, 3], Float64Array.from(offZero(6)).map(Math.abs), D)])], { ...ax([1]), keepdims: { i: 0 } }), // [N, 3]
      b.op('ReduceL2', [feat], { ...ax([1]), keepdims: { i: 0 } }), // [N, 9]
      b.op('ReduceSumSquare', [feat], { ...ax([2]), keepdims: { i: 1 } }), // [N, 16, 1]
      b.op('ReduceLogSumExp', [feat], ax([1, 2])), // [N, 1, 1]
    ].map((r) => b.op('Flatten', [r], { axis: { i: 1 } }));
    const width = 3 + 9 + 16 + 1;
    head(b, b.op('Concat', [b.op('Mul', [b.op('Concat', reductions, { axis: { i: 1 } }), b.initializer('damp', [1], Float64Array.of(0.1), D)])], { axis: { i: 1 } }), width, 3, D);
    const N = 3;
    const feeds = { x: { data: Float64Array.from(offZero(N * 6)), dims: [N, 2, 3] }, labels: labels(N, 3) };
    expect(await checkGradients(model(b.graph('tile-cumsum')), feeds, { logits: 'logits' }, 1e-6, 1e-5)).to.equal(6 + 6 + 1 + width * 3);
  });

  it('float64: Einsum (matrix products, a batched contraction, a dot, a transpose, an outer product, three operands, an index summed in its own operand)', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const x = b.input('x', D, ['N', 4]);
    const e = (eq: string, ...xs: string[]) => b.op('Einsum', xs, { equation: { s: eq } });
    const w = b.initializer('w', [4, 3], randn(12), D), u = b.initializer('u', [3, 2], randn(6), D), v = b.initializer('v', [4], randn(4), D);
    const t = b.initializer('t', [2, 4, 3], randn(24), D);
    const h = e('bi,ij->bj', x, w); // [N, 3]
    const outer = e('bi, j -> bij', h, v); // [N, 3, 4] (spaces allowed)
    const batched = e('bij,kjl->bkil', outer, t); // [N, 2, 3, 3]
    const feats = [
      h,
      e('bi,ij,jk->bk', x, w, u), // [N, 2]
      e('bi,bi->b', h, h), // [N]
      e('ij->ji', w), // [3, 4], no batch: broadcast below
      e('bkil->bk', batched), // [N, 2]
      e('bij', outer), // implicit output: "bij" sorted, the identity
      e('kjl->k', t), // [2]: j and l summed in t alone
    ];
    const flat = [
      feats[0], feats[1], b.op('Unsqueeze', [feats[2], b.int64s([1])]),
      b.op('Mul', [b.op('Reshape', [feats[3], b.int64s([1, 12])]), b.op('ReduceSum', [x, b.int64s([1])], { keepdims: { i: 1 } })]),
      feats[4], b.op('Flatten', [feats[5]], { axis: { i: 1 } }),
      b.op('Mul', [b.op('Reshape', [feats[6], b.int64s([1, 2])]), b.op('ReduceSum', [x, b.int64s([1])], { keepdims: { i: 1 } })]),
    ];
    const width = 3 + 2 + 1 + 12 + 2 + 12 + 2;
    head(b, b.op('Mul', [b.op('Concat', flat, { axis: { i: 1 } }), b.initializer('damp', [1], Float64Array.of(0.2), D)]), width, 3, D);
    const N = 3;
    const feeds = { x: { data: randn(N * 4, 1), dims: [N, 4] }, labels: labels(N, 3) };
    expect(await checkGradients(model(b.graph('einsum')), feeds, { logits: 'logits' }, 1e-6, 1e-5)).to.equal(12 + 6 + 4 + 24 + 1 + width * 3);
  });

  it('names what it cannot do: Resize cubic or antialiased, ConvTranspose with output_shape, an Einsum ellipsis or diagonal, Tile of an unknown size', () => {
    const graph = (build: (b: GraphBuilder, h: string) => string, inShape: (number | string)[] = ['N', 2, 4, 4]) => {
      const b = new GraphBuilder();
      const x = b.input('x', F, inShape);
      const h = b.op('Mul', [x, b.initializer('s', [1], Float32Array.of(2), F)]);
      const out = build(b, h);
      b.op('ReduceSum', [b.op('Flatten', [out], { axis: { i: 1 } }), b.int64s([1])], { keepdims: { i: 1 } }, ['logits']);
      b.output('logits', F, ['N', 1]);
      return () => deriveTrainingGraph(model(b.graph('bad')), { logits: 'logits', loss: 'mse' });
    };
    const scales = (b: GraphBuilder) => b.constant(Float32Array.of(1, 1, 2, 2), [4], F);
    expect(codeOf(graph((b, h) => b.op('Resize', [h, '', scales(b)], { mode: { s: 'cubic' } })))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: node "resize_\d+": Resize mode "cubic" is not supported/);
    expect(codeOf(graph((b, h) => b.op('Resize', [h, '', scales(b)], { mode: { s: 'linear' }, antialias: { i: 1 } })))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: .*antialias/);
    expect(codeOf(graph((b, h) => b.op('Resize', [h, '', scales(b)], { mode: { s: 'linear' }, coordinate_transformation_mode: { s: 'tf_crop_and_resize' } })))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: .*coordinate_transformation_mode "tf_crop_and_resize"/);
    expect(codeOf(graph((b, h) => b.op('ConvTranspose', [h, b.initializer('k', [2, 1, 3, 3], r32(18), F)], { output_shape: { ints: [9, 9] }, strides: { ints: [2, 2] } })))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: .*ConvTranspose with output_shape/);
    expect(codeOf(graph((b, h) => b.op('Einsum', [h], { equation: { s: '...ij->...ji' } })))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: .*ellipsis/);
    expect(codeOf(graph((b, h) => b.op('Einsum', [h], { equation: { s: 'bcii->bci' } })))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: .*Einsum term "bcii" with a repeated index/);
    expect(codeOf(graph((b, h) => b.op('Tile', [h, b.int64s([2, 1, 1, 1])])))).to.match(/^ERR_SPARTAN_ONNX: .*Tile needs known sizes/);
  });
});

describe(`training-graph derivation: LSTM and GRU, unrolled through time (seed ${seed})`, () => {
  it('float64: an LSTM in layout 1 running backwards from trained initial states, into a bidirectional GRU that resets before its recurrent product', async function () {
    this.timeout(120000);
    const b = new GraphBuilder();
    const T = 4, I = 3, H = 2, N = 2;
    const x = b.input('x', D, ['N', T, I]); // layout 1: [N, T, I]
    const lstm = ['y1', 'yh1', 'yc1'];
    b.op('LSTM', [x, b.initializer('W', [1, 4 * H, I], randn(4 * H * I), D), b.initializer('R', [1, 4 * H, H], randn(4 * H * H), D),
      b.initializer('B', [1, 8 * H], randn(8 * H, 0.3), D), '', b.initializer('h0', [N, 1, H], randn(N * H), D), b.initializer('c0', [N, 1, H], randn(N * H), D)],
    { hidden_size: { i: H }, layout: { i: 1 }, direction: { s: 'reverse' } }, lstm); // y1: [N, T, 1, H]
    const seq = b.op('Transpose', [b.op('Reshape', [lstm[0], b.int64s([0, T, H])])], { perm: { ints: [1, 0, 2] } }); // [T, N, H]
    const gru = ['y2', 'yh2'];
    b.op('GRU', [seq, b.initializer('Wg', [2, 3 * H, H], randn(2 * 3 * H * H), D), b.initializer('Rg', [2, 3 * H, H], randn(2 * 3 * H * H), D),
      b.initializer('Bg', [2, 6 * H], randn(12 * H, 0.3), D)], { hidden_size: { i: H }, direction: { s: 'bidirectional' } }, gru); // y2: [T, 2, N, H]
    const feats = b.op('Concat', [
      b.op('Reshape', [b.op('Transpose', [gru[0]], { perm: { ints: [2, 0, 1, 3] } }), b.int64s([0, -1])]), // [N, T 2 H]
      b.op('Reshape', [b.op('Transpose', [gru[1]], { perm: { ints: [1, 0, 2] } }), b.int64s([0, -1])]), // [N, 2 H]
      b.op('Reshape', [lstm[2], b.int64s([0, -1])]), // the LSTM's last cell state [N, H]
    ], { axis: { i: 1 } });
    const width = T * 2 * H + 2 * H + H;
    head(b, feats, width, 3, D);
    const fwd = model({ ...b.graph('rnn'), inputs: [{ name: 'x', elemType: D, shape: [N, T, I] }] }); // h0 fixes the batch
    const feeds = { x: { data: randn(N * T * I, 1), dims: [N, T, I] }, labels: labels(N, 3) };
    const train = deriveTrainingGraph(fwd, { logits: 'logits' });
    expect(train.graph.nodes.some((n) => n.opType === 'LSTM' || n.opType === 'GRU'), 'unrolled').to.equal(false);
    expect(await checkGradients(fwd, feeds, { logits: 'logits' }, 1e-6, 1e-5)).to.equal(4 * H * I + 4 * H * H + 8 * H + 2 * N * H + 2 * 3 * H * H * 2 + 12 * H + width * 3);
  });

  it('names what it cannot do: other activations, peepholes, clip, sequence lengths, a dynamic sequence length', () => {
    const lstm = (attrs: Record<string, Attr>, extra: string[] = [], shape: (number | string)[] = [3, 'N', 2]) => {
      const b = new GraphBuilder();
      const x = b.input('x', D, shape);
      const inputs = [x, b.initializer('W', [1, 8, 2], randn(16), D), b.initializer('R', [1, 8, 2], randn(16), D), ...extra];
      if (extra.includes('P')) inputs.splice(3, extra.length, '', '', '', '', b.initializer('P', [1, 6], randn(6), D));
      b.op('LSTM', inputs, { hidden_size: { i: 2 }, ...attrs }, ['y', 'yh']);
      b.op('Reshape', [b.op('Transpose', ['yh'], { perm: { ints: [1, 0, 2] } }), b.int64s([0, -1])], {}, ['logits']);
      b.output('logits', D, ['N', 2]);
      return () => deriveTrainingGraph(model({ ...b.graph('lstm'), nodes: b.nodes.map((n) => (n.opType === 'LSTM' ? { ...n, name: 'my_lstm' } : n)) }), { logits: 'logits' });
    };
    expect(codeOf(lstm({ activations: { strings: ['Relu', 'Tanh', 'Tanh'] } }))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: node "my_lstm": LSTM with activations Relu, Tanh, Tanh is not supported/);
    expect(codeOf(lstm({}, ['P']))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: node "my_lstm": LSTM with peepholes/);
    expect(codeOf(lstm({ clip: { f: 3 } }))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: node "my_lstm": LSTM with clip/);
    expect(codeOf(lstm({}, ['', 'lens']))).to.match(/^ERR_SPARTAN_UNSUPPORTED_OP: node "my_lstm": LSTM with sequence_lens/);
    expect(codeOf(lstm({}, [], ['T', 'N', 2]))).to.match(/^ERR_SPARTAN_ONNX: node "my_lstm": LSTM needs a static sequence length to be unrolled \(got "T"\)/);
    // the defaults, spelled out, are fine
    expect(codeOf(lstm({ activations: { strings: ['Sigmoid', 'Tanh', 'Tanh'] } }))).to.equal('no error');
  });
});
