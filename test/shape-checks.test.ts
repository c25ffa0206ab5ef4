// Malformed models a fuzzer found: the derivation wrote their training graphs without a word
// and onnxruntime then refused to load (or run) them. Shape inference (lib/graph/shapes.ts)
// now refuses each, naming the node: ERR_SPARTAN_SHAPE for shapes that do not fit together,
// ERR_SPARTAN_ONNX for invalid attributes. Each case also checks that onnxruntime refuses the
// forward model, so no valid model is refused; the last tests derive valid neighbours.
import { expect } from 'chai';
import { deriveTrainingGraph } from '../lib/graph/autodiff';
import { GraphBuilder, model } from '../lib/graph/builder';
import type { Attr, Dim, Model } from '../lib/graph/model';
import { GraphRunner } from '../lib/graph/runner';
import { DataType } from '../lib/graph/schema';
import { codeOf } from './helpers';

const F = DataType.FLOAT, I64 = DataType.INT64;
const ones = (dims: number[]) => Float32Array.from({ length: dims.reduce((a, b) => a * b, 1) }, (_, i) => 0.1 * ((i % 7) - 3));

/**
 * x (float32, `shape`) times a parameter w [1], then `body`, whose node under test it names
 * "bad" with `bad`; its result is the output y. `opset` 17 unless given.
 */
function net(shape: Dim[], body: (b: GraphBuilder, h: string, bad: Bad) => string, opset = 17): Model {
  const b = new GraphBuilder();
  const h = b.op('Mul', [b.input('x', F, shape), b.initializer('w', [1], Float32Array.of(0.5))]);
  const bad: Bad = (opType, inputs, attrs = {}, outputs) => {
    const t = b.op(opType, inputs, attrs, outputs);
    b.nodes[b.nodes.length - 1].name = 'bad';
    return t;
  };
  b.op('Identity', [body(b, h, bad)], {}, ['y']);
  b.output('y', F);
  return model(b.graph('case'), opset);
}
type Bad = (opType: string, inputs: string[], attrs?: Record<string, Attr>, outputs?: string[]) => string;
const param = (b: GraphBuilder, dims: number[]) => b.initializer(b.fresh('p'), dims, ones(dims));
const ints = (v: number[]): Attr => ({ ints: v });
const int = (v: number): Attr => ({ i: v });

/** Whether onnxruntime refuses the model: at load, or when run on x with every symbol 2. */
async function ortRefuses(m: Model): Promise<boolean> {
  const dims = m.graph.inputs[0].shape!.map((d) => (typeof d === 'number' ? d : 2));
  let runner: GraphRunner | undefined;
  try {
    runner = await GraphRunner.create(m);
    await runner.run({ x: { data: ones(dims), dims } });
    return false;
  } catch {
    return true;
  } finally {
    await runner?.release();
  }
}

interface Case { title: string; model: () => Model; error: RegExp }
const SHAPE = 'ERR_SPARTAN_SHAPE: node "bad": ', ONNX = 'ERR_SPARTAN_ONNX: node "bad": ';
const re = (prefix: string, rest: string) => new RegExp(`^${prefix.replace(/[[\]()]/g, '\\$&')}${rest}`);

const cases: Case[] = [
  // products
  { title: 'Gemm inner dims differ', model: () => net(['N', 4], (b, h, bad) => bad('Gemm', [h, param(b, [5, 3])])), error: re(SHAPE, 'Gemm inner dims differ: A \\[N, 4\\] times B \\[5, 3\\]') },
  { title: 'Gemm inner dims differ with transB', model: () => net(['N', 4], (b, h, bad) => bad('Gemm', [h, param(b, [3, 5])], { transB: int(1) })), error: re(SHAPE, 'Gemm inner dims differ: A \\[N, 4\\] times B \\[3, 5\\] \\(transB\\)') },
  { title: 'Gemm inner dims differ with transA', model: () => net([4, 'N'], (b, h, bad) => bad('Gemm', [h, param(b, [5, 3])], { transA: int(1) })), error: re(SHAPE, 'Gemm inner dims differ: A \\[4, N\\] \\(transA\\)') },
  { title: 'Gemm of a rank-3 input', model: () => net(['N', 2, 4], (b, h, bad) => bad('Gemm', [h, param(b, [4, 3])])), error: re(SHAPE, 'Gemm multiplies matrices \\(rank 2\\), got A \\[N, 2, 4\\]') },
  { title: 'Gemm bias [5] for 3 outputs', model: () => net(['N', 4], (b, h, bad) => bad('Gemm', [h, param(b, [4, 3]), param(b, [5])])), error: re(SHAPE, 'Gemm bias C \\[5\\] does not broadcast to \\[N, 3\\]') },
  { title: 'MatMul inner dims differ', model: () => net(['N', 2, 4], (b, h, bad) => bad('MatMul', [h, param(b, [5, 3])])), error: re(SHAPE, 'MatMul inner dims differ: \\[N, 2, 4\\] times \\[5, 3\\]') },
  { title: 'MatMul batch dims that do not broadcast', model: () => net([2, 3, 4], (b, h, bad) => bad('MatMul', [h, param(b, [3, 4, 2])])), error: re(SHAPE, 'MatMul cannot broadcast \\[2\\] with \\[3\\]') },
  // broadcasting
  { title: 'Add of [N, 4] and [3]', model: () => net(['N', 4], (b, h, bad) => bad('Add', [h, param(b, [3])])), error: re(SHAPE, 'Add cannot broadcast \\[N, 4\\] with \\[3\\]') },
  { title: 'Div of [2, 4] and [3, 1]', model: () => net([2, 4], (b, h, bad) => bad('Div', [h, param(b, [3, 1])])), error: re(SHAPE, 'Div cannot broadcast \\[2, 4\\] with \\[3, 1\\]') },
  { title: 'PRelu slope that does not broadcast', model: () => net(['N', 4], (b, h, bad) => bad('PRelu', [h, param(b, [3])])), error: re(SHAPE, 'PRelu cannot broadcast \\[N, 4\\] with \\[3\\]') },
  { title: 'Where with a branch that does not broadcast', model: () => net(['N', 4], (b, h, bad) => bad('Where', [b.op('Greater', [h, param(b, [1])]), h, param(b, [3])])), error: re(SHAPE, 'Where cannot broadcast \\[N, 4\\] with \\[3\\]') },
  { title: 'Expand to an incompatible shape', model: () => net(['N', 4], (b, h, bad) => bad('Expand', [h, b.int64s([2, 3])])), error: re(SHAPE, 'Expand cannot broadcast \\[N, 4\\] with \\[2, 3\\]') },
  // Concat
  { title: 'Concat of inputs that differ off the axis', model: () => net(['N', 4], (b, h, bad) => bad('Concat', [h, param(b, [1, 3])], { axis: int(0) })), error: re(SHAPE, 'Concat on axis 0 of inputs that differ in rank or off that axis: \\[N, 4\\], \\[1, 3\\]') },
  { title: 'Concat of inputs of other ranks', model: () => net(['N', 4], (b, h, bad) => bad('Concat', [h, param(b, [4])], { axis: int(-1) })), error: re(SHAPE, 'Concat on axis 1 of inputs that differ in rank') },
  // axes out of range
  { title: 'Concat axis 2 of rank 2', model: () => net(['N', 4], (b, h, bad) => bad('Concat', [h, h], { axis: int(2) })), error: re(ONNX, 'Concat axis 2 is out of range for an input of rank 2') },
  { title: 'Flatten axis 3 of rank 2', model: () => net(['N', 4], (b, h, bad) => bad('Flatten', [h], { axis: int(3) })), error: re(ONNX, 'Flatten axis 3 is out of range for an input of rank 2 \\(-2 to 2\\)') },
  { title: 'Softmax axis 2 of rank 2', model: () => net(['N', 4], (b, h, bad) => bad('Softmax', [h], { axis: int(2) })), error: re(ONNX, 'Softmax axis 2 is out of range') },
  { title: 'LogSoftmax axis -3 of rank 2', model: () => net(['N', 4], (b, h, bad) => bad('LogSoftmax', [h], { axis: int(-3) })), error: re(ONNX, 'LogSoftmax axis -3 is out of range') },
  { title: 'Gather axis 2 of rank 2', model: () => net(['N', 4], (b, h, bad) => bad('Gather', [h, b.int64s([0])], { axis: int(2) })), error: re(ONNX, 'Gather axis 2 is out of range') },
  { title: 'Slice axes [2] of rank 2', model: () => net(['N', 4], (b, h, bad) => bad('Slice', [h, b.int64s([0]), b.int64s([1]), b.int64s([2])])), error: re(ONNX, 'Slice axes 2 is out of range') },
  { title: 'Unsqueeze axes [3] of rank 2', model: () => net(['N', 4], (b, h, bad) => bad('Unsqueeze', [h, b.int64s([3])])), error: re(ONNX, 'Unsqueeze axes 3 is out of range for an input of rank 3') },
  { title: 'Squeeze axes [2] of rank 2', model: () => net(['N', 1], (b, h, bad) => bad('Squeeze', [h, b.int64s([2])])), error: re(ONNX, 'Squeeze axes 2 is out of range') },
  { title: 'ReduceSum axes [-3] of rank 2', model: () => net(['N', 4], (b, h, bad) => bad('ReduceSum', [h, b.int64s([-3])])), error: re(ONNX, 'ReduceSum axes -3 is out of range') },
  { title: 'ReduceMean axes [2] of rank 2 (an attribute at opset 17)', model: () => net(['N', 4], (b, h, bad) => bad('ReduceMean', [h], { axes: ints([2]) })), error: re(ONNX, 'ReduceMean axes 2 is out of range') },
  { title: 'Split axis 2 of rank 2', model: () => net(['N', 4], (b, h, bad) => bad('Split', [h], { axis: int(2) }, ['s0', 's1']), 17), error: re(ONNX, 'Split axis 2 is out of range') },
  { title: 'LayerNormalization axis 2 of rank 2', model: () => net(['N', 4], (b, h, bad) => bad('LayerNormalization', [h, param(b, [4])], { axis: int(2) })), error: re(ONNX, 'LayerNormalization axis 2 is out of range') },
  { title: 'CumSum axis 2 of rank 2', model: () => net(['N', 4], (b, h, bad) => bad('CumSum', [h, b.constant(BigInt64Array.of(2n), [], I64)])), error: re(ONNX, 'CumSum axis 2 is out of range') },
  // Transpose
  { title: 'Transpose perm with a repeat', model: () => net(['N', 4], (b, h, bad) => bad('Transpose', [h], { perm: ints([0, 0]) })), error: re(ONNX, 'Transpose perm \\[0, 0\\] is not a permutation of the 2 axes of its input \\[N, 4\\]') },
  { title: 'Transpose perm out of range', model: () => net(['N', 4], (b, h, bad) => bad('Transpose', [h], { perm: ints([0, 2]) })), error: re(ONNX, 'Transpose perm \\[0, 2\\] is not a permutation') },
  { title: 'Transpose perm of the wrong length', model: () => net(['N', 4], (b, h, bad) => bad('Transpose', [h], { perm: ints([1, 0, 2]) })), error: re(ONNX, 'Transpose perm \\[1, 0, 2\\] is not a permutation') },
  { title: 'Transpose with an empty perm on rank 2', model: () => net(['N', 4], (b, h, bad) => bad('Transpose', [h], { perm: ints([]) })), error: re(ONNX, 'Transpose perm \\[\\] is not a permutation') },
  // Reshape
  { title: 'Reshape with two -1s', model: () => net(['N', 4], (b, h, bad) => bad('Reshape', [h, b.int64s([-1, -1])])), error: re(ONNX, 'Reshape shape \\[-1, -1\\] has more than one -1') },
  { title: 'Reshape with a -2', model: () => net(['N', 4], (b, h, bad) => bad('Reshape', [h, b.int64s([-2, 4])])), error: re(ONNX, 'Reshape shape \\[-2, 4\\] holds -2') },
  { title: 'Reshape copying a dim past the input rank', model: () => net(['N', 4], (b, h, bad) => bad('Reshape', [h, b.int64s([0, 0, 0])])), error: re(ONNX, 'Reshape shape \\[0, 0, 0\\] copies dim 2 \\(a 0\\) of an input of rank 2') },
  { title: 'Reshape to another element count', model: () => net(['N', 4], (b, h, bad) => bad('Reshape', [h, b.int64s([0, 3])])), error: re(SHAPE, 'Reshape cannot reshape \\[N, 4\\] to \\[0, 3\\]: the element counts differ') },
  { title: 'Reshape whose -1 is no whole number', model: () => net([2, 6], (b, h, bad) => bad('Reshape', [h, b.int64s([5, -1])])), error: re(SHAPE, 'Reshape cannot reshape \\[2, 6\\] to \\[5, -1\\]') },
  // Slice, Unsqueeze, Squeeze, Split
  { title: 'Slice with repeated axes', model: () => net(['N', 4], (b, h, bad) => bad('Slice', [h, b.int64s([0, 1]), b.int64s([2, 3]), b.int64s([1, -1])])), error: re(ONNX, 'Slice axes \\[1, -1\\] name an axis twice') },
  { title: 'Slice with more ends than starts', model: () => net(['N', 4], (b, h, bad) => bad('Slice', [h, b.int64s([0]), b.int64s([2, 3]), b.int64s([1])])), error: re(ONNX, 'Slice has 1 starts, 2 ends, 1 axes and 1 steps') },
  { title: 'Unsqueeze with repeated axes', model: () => net(['N', 4], (b, h, bad) => bad('Unsqueeze', [h, b.int64s([1, -3])])), error: re(ONNX, 'Unsqueeze axes \\[1, -3\\] name an axis twice') },
  { title: 'Squeeze of a dim that is not 1', model: () => net(['N', 4], (b, h, bad) => bad('Squeeze', [h, b.int64s([1])])), error: re(SHAPE, 'Squeeze of axis 1 of \\[N, 4\\], whose size is not 1') },
  { title: 'Split sizes that do not sum to the dim', model: () => net(['N', 4], (b, h, bad) => bad('Split', [h, b.int64s([1, 2])], { axis: int(1) }, ['s0', 's1'])), error: re(SHAPE, 'Split sizes \\[1, 2\\] do not sum to 4, axis 1 of its input \\[N, 4\\]') },
  { title: 'Split with more sizes than outputs', model: () => net(['N', 4], (b, h, bad) => bad('Split', [h, b.int64s([1, 1, 2])], { axis: int(1) }, ['s0', 's1'])), error: re(ONNX, 'Split has 3 sizes \\[1, 1, 2\\] for 2 outputs') },
  // Conv and pools
  { title: 'Conv weight of another rank', model: () => net(['N', 2, 5, 5], (b, h, bad) => bad('Conv', [h, param(b, [3, 2, 3])])), error: re(SHAPE, 'Conv weight \\[3, 2, 3\\] is not of the rank of its input \\[N, 2, 5, 5\\]') },
  { title: 'Conv input channels other than weight channels × group', model: () => net(['N', 3, 5, 5], (b, h, bad) => bad('Conv', [h, param(b, [4, 2, 3, 3])])), error: re(SHAPE, 'Conv input \\[N, 3, 5, 5\\] has 3 channels, but its weight \\[4, 2, 3, 3\\] takes 2') },
  { title: 'grouped Conv input channels other than weight channels × group', model: () => net(['N', 4, 5, 5], (b, h, bad) => bad('Conv', [h, param(b, [4, 1, 3, 3])], { group: int(2) })), error: re(SHAPE, 'Conv input \\[N, 4, 5, 5\\] has 4 channels, but its weight \\[4, 1, 3, 3\\] takes 2 \\(1 per group × 2 groups\\)') },
  { title: 'ConvTranspose input channels other than the weight\'s first dim', model: () => net(['N', 2, 3, 3], (b, h, bad) => bad('ConvTranspose', [h, param(b, [3, 1, 2, 2])])), error: re(SHAPE, 'ConvTranspose input \\[N, 2, 3, 3\\] has 2 channels, but its weight \\[3, 1, 2, 2\\] takes 3') },
  { title: 'Conv stride 0', model: () => net(['N', 2, 5, 5], (b, h, bad) => bad('Conv', [h, param(b, [3, 2, 3, 3])], { strides: ints([0, 1]) })), error: re(ONNX, 'Conv strides \\[0, 1\\] must be 2 integers >= 1') },
  { title: 'Conv dilation -1', model: () => net(['N', 2, 5, 5], (b, h, bad) => bad('Conv', [h, param(b, [3, 2, 3, 3])], { dilations: ints([1, -1]) })), error: re(ONNX, 'Conv dilations \\[1, -1\\] must be 2 integers >= 1') },
  { title: 'Conv pads of the wrong length', model: () => net(['N', 2, 5, 5], (b, h, bad) => bad('Conv', [h, param(b, [3, 2, 3, 3])], { pads: ints([1, 1]) })), error: re(ONNX, 'Conv pads \\[1, 1\\] must be 4 integers >= 0') },
  { title: 'Conv kernel larger than the padded input', model: () => net(['N', 2, 3, 3], (b, h, bad) => bad('Conv', [h, param(b, [3, 2, 5, 5])])), error: re(SHAPE, 'Conv kernel spans 5 on spatial axis 0, more than the 3 of the padded input \\[N, 2, 3, 3\\]') },
  { title: 'MaxPool kernel_shape of the wrong length', model: () => net(['N', 2, 5, 5], (b, h, bad) => bad('MaxPool', [h], { kernel_shape: ints([2]) })), error: re(ONNX, 'MaxPool kernel_shape \\[2\\] must be 2 sizes >= 1') },
  { title: 'MaxPool pads as large as the kernel', model: () => net(['N', 2, 5, 5], (b, h, bad) => bad('MaxPool', [h], { kernel_shape: ints([2, 2]), pads: ints([2, 0, 0, 0]) })), error: re(ONNX, 'MaxPool pads \\[2, 0, 0, 0\\] must be smaller than the kernel \\[2, 2\\]') },
  { title: 'MaxPool kernel larger than the padded input', model: () => net(['N', 1, 3, 3], (b, h, bad) => bad('MaxPool', [h], { kernel_shape: ints([5, 5]) })), error: re(SHAPE, 'MaxPool kernel spans 5 on spatial axis 0, more than the 3 of the padded input') },
  { title: 'AveragePool kernel larger than the padded input', model: () => net(['N', 1, 3, 3], (b, h, bad) => bad('AveragePool', [h], { kernel_shape: ints([2, 7]), pads: ints([0, 1, 0, 1]) })), error: re(SHAPE, 'AveragePool kernel spans 7 on spatial axis 1, more than the 5 of the padded input') },
  // negative dims
  { title: 'Pad cropping more than the input holds', model: () => net(['N', 4], (b, h, bad) => bad('Pad', [h, b.int64s([0, -3, 0, -3])])), error: re(SHAPE, 'Pad of \\[N, 4\\] gives \\[N, -2\\]: a negative dim') },
  { title: 'Tile with a negative repeat', model: () => net(['N', 4], (b, h, bad) => bad('Tile', [h, b.int64s([1, -1])])), error: re(SHAPE, 'Tile repeats \\[1, -1\\] give a negative dim') },
  { title: 'Tile with repeats of the wrong length', model: () => net(['N', 4], (b, h, bad) => bad('Tile', [h, b.int64s([2])])), error: re(ONNX, 'Tile has 1 repeats \\[2\\] for an input of rank 2') },
  // per-channel parameters, indices, Einsum
  { title: 'BatchNormalization scale of a length other than C', model: () => net(['N', 3, 2, 2], (b, h, bad) => bad('BatchNormalization', [h, param(b, [4]), param(b, [3]), param(b, [3]), b.initializer('var', [3], Float32Array.of(1, 1, 1))])), error: re(SHAPE, 'BatchNormalization scale \\[4\\] must be \\[3\\], one value per channel of the input \\[N, 3, 2, 2\\]') },
  { title: 'BatchNormalization var of a length other than C', model: () => net(['N', 3], (b, h, bad) => bad('BatchNormalization', [h, param(b, [3]), param(b, [3]), param(b, [3]), b.initializer('var', [2], Float32Array.of(1, 1))])), error: re(SHAPE, 'BatchNormalization var \\[2\\] must be \\[3\\]') },
  { title: 'Gather of an input (no gradient) with a constant index out of range', model: () => net(['N', 4], (b, h, bad) => b.op('Mul', [bad('Gather', ['x', b.int64s([0, 4])], { axis: int(1) }), 'w'])), error: re(ONNX, 'Gather index 4 is out of range for axis 1 of size 4') },
  { title: 'Gather of an input with a constant index below -size', model: () => net([3, 4], (b, h, bad) => b.op('Mul', [bad('Gather', ['x', b.int64s([-4])]), 'w'])), error: re(ONNX, 'Gather index -4 is out of range for axis 0 of size 3') },
  { title: 'Einsum letter bound to two sizes', model: () => net(['N', 4], (b, h, bad) => bad('Einsum', [h, param(b, [5, 3])], { equation: { s: 'ij,jk->ik' } })), error: re(SHAPE, 'Einsum index "j" is 4 in one operand and 5 in another \\(\\[N, 4\\], \\[5, 3\\]\\)') },
];

describe('shape inference refuses malformed models, naming the node', () => {
  for (const c of cases)
    it(c.title, async () => {
      const m = c.model();
      expect(codeOf(() => deriveTrainingGraph(m, { logits: 'y', loss: 'mse' }))).to.match(c.error);
      expect(await ortRefuses(m), 'onnxruntime refuses the forward model too').to.equal(true);
    });

  it('a constant computation (folded, not in the training graph) is checked too', () => {
    const m = net(['N', 4], (b, h, bad) => b.op('Reshape', [h, b.op('Concat', [b.int64s([-1]), bad('Transpose', [b.int64s([4])], { perm: ints([1]) })], { axis: int(0) })]));
    expect(codeOf(() => deriveTrainingGraph(m, { logits: 'y', loss: 'mse' }))).to.match(re(ONNX, 'Transpose perm \\[1\\] is not a permutation of the 1 axes of its input \\[1\\]'));
  });
});

describe('an input no earlier node defines is named, with what is wrong', () => {
  /** x -> Mul(w) -> a -> Relu -> r -> Tanh -> y, the Relu reading `reluInput`, the nodes in `order`. */
  function chain(reluInput: string, order: number[]): Model {
    const b = new GraphBuilder();
    b.op('Mul', [b.input('x', F, ['N', 4]), b.initializer('w', [1], Float32Array.of(0.5))], {}, ['a']);
    b.op('Relu', [reluInput], {}, ['r']);
    b.op('Tanh', ['r'], {}, ['y']);
    b.nodes.forEach((n, i) => (n.name = ['mul', 'relu', 'tanh'][i]));
    const nodes = order.map((i) => b.nodes[i]);
    b.nodes.splice(0, 3, ...nodes);
    b.output('y', F);
    return model(b.graph('chain'));
  }
  const derive = (m: Model) => codeOf(() => deriveTrainingGraph(m, { logits: 'y', loss: 'mse' }));

  it('nodes out of topological order', () => {
    expect(derive(chain('a', [0, 2, 1]))).to.match(/^ERR_SPARTAN_ONNX: node "tanh" reads "r", which node "relu" computes only after it: the graph has a cycle, or its nodes are not in topological order/);
  });
  it('a cycle', async () => {
    const m = chain('y', [0, 1, 2]); // relu reads tanh's output, tanh relu's
    expect(derive(m)).to.match(/^ERR_SPARTAN_ONNX: node "relu" reads "y", which node "tanh" computes only after it: the graph has a cycle/);
    expect(await ortRefuses(m)).to.equal(true);
  });
  it('a node reading its own output', () => {
    const m = chain('a', [0, 1, 2]);
    m.graph.nodes[1].inputs = ['r'];
    expect(derive(m)).to.match(/^ERR_SPARTAN_ONNX: node "relu" reads "r", which it computes itself: the graph has a cycle/);
  });
  it('an undefined tensor', async () => {
    const m = chain('nowhere', [0, 1, 2]);
    expect(derive(m)).to.match(/^ERR_SPARTAN_ONNX: node "relu" reads "nowhere", which no earlier node, graph input or initializer defines/);
    expect(await ortRefuses(m)).to.equal(true);
  });
});

describe('valid neighbours of the refused models still derive and run', () => {
  const valid: [string, () => Model][] = [
    ['broadcasting over 1s and symbols; Gemm with transposes and a bias [1, 3]', () => net(['N', 4], (b, h) => b.op('Add', [b.op('Gemm', [b.op('Transpose', [h]), param(b, [3, 4])], { transA: int(1), transB: int(1) }), b.op('Mul', [param(b, [1, 3]), param(b, [1, 1])])]))],
    ['Flatten on axis = rank gives [N * 4, 1]', () => net([2, 4], (b, h) => b.op('Flatten', [h], { axis: int(2) }))],
    ['Reshape with 0, -1 and a symbol; Squeeze of a 1; Unsqueeze at -1', () => net(['N', 4, 1], (b, h) => b.op('Unsqueeze', [b.op('Squeeze', [b.op('Reshape', [h, b.int64s([0, 2, -1, 1])]), b.int64s([-1])]), b.int64s([-1])]))],
    ['MaxPool with pads one below the kernel; Conv whose kernel just fits', () => net(['N', 2, 3, 3], (b, h) => b.op('MaxPool', [b.op('Conv', [h, param(b, [2, 1, 3, 3])], { group: int(2) })], { kernel_shape: ints([2, 2]), pads: ints([1, 1, 1, 1]) }))],
    ['Pad cropping to 0; Split with sizes; Concat', () => net(['N', 4], (b, h) => {
      b.op('Split', [h, b.int64s([1, 3])], { axis: int(1) }, ['s0', 's1']);
      return b.op('Concat', [b.op('Pad', [h, b.int64s([0, -2, 0, -2])]), 's0', 's1'], { axis: int(1) });
    })],
  ];
  for (const [title, build] of valid)
    it(title, async () => {
      const m = build();
      expect(await ortRefuses(m)).to.equal(false);
      // the training graph runs, fed by its inputs' inferred shapes (the labels' those of y)
      const train = deriveTrainingGraph(m, { logits: 'y', loss: 'mse' });
      const runner = await GraphRunner.create(train);
      const feeds = Object.fromEntries(train.graph.inputs.map((v) => {
        const dims = v.shape!.map((d) => (typeof d === 'number' ? d : 2));
        return [v.name, { data: ones(dims), dims }];
      }));
      const out = await runner.run(feeds);
      await runner.release();
      expect(Number.isFinite(out.loss[0])).to.equal(true);
    });
});
