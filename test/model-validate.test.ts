// Malformed models a fuzzer found passing deriveTrainingGraph (training graphs onnxruntime
// refuses) and the BSR conversion (wrong results, uncoded TypeErrors), decodeModel and
// encodeModel: checkModel refuses each with one ERR_SPARTAN_ONNX naming the node or tensor.
import { expect } from 'chai';
import { deriveTrainingGraph } from '../lib/graph/autodiff';
import { decodeModel, encodeModel, type Attr, type Model, type Node } from '../lib/graph/model';
import { GraphRunner } from '../lib/graph/runner';
import { DataType, ModelProto } from '../lib/graph/schema';
import { checkModel, MAX_IR_VERSION, MAX_OPSET } from '../lib/graph/validate';
import { lenet300100, lenet5 } from '../lib/models/lenet';
import { codeOf } from './helpers';

// LeNet-300-100: Flatten, Gemm fc1, Relu, Gemm fc2, Relu, Gemm fc3 -> logits
type Graph = Model['graph'];
const edit = (f: (g: Graph) => Partial<Graph>, base = lenet300100(1)): Model => ({ ...base, graph: { ...base.graph, ...f(base.graph) } });
const editNode = (i: number, f: (n: Node) => Partial<Node>, base = lenet300100(1)) =>
  edit((g) => ({ nodes: g.nodes.map((n, j) => (j === i ? { ...n, ...f(n) } : n)) }), base);
const withAttr = (i: number, key: string, a: Attr, base = lenet300100(1)) => editNode(i, (n) => ({ attrs: { ...n.attrs, [key]: a } }), base);
const editInit = (name: string, f: (t: Graph['initializers'][0]) => object) =>
  edit((g) => ({ initializers: g.initializers.map((t) => (t.name === name ? { ...t, ...f(t) } : t)) }));
const derive = (m: Model, params?: string[]) => codeOf(() => deriveTrainingGraph(m, { logits: 'logits', params }));

describe('checkModel: malformed models are ERR_SPARTAN_ONNX before a derivation or conversion', () => {
  const cases: [string, Model, RegExp][] = [
    // graph structure
    ['two nodes writing one tensor', editNode(3, (n) => ({ outputs: [lenet300100(1).graph.nodes[1].outputs[0]] })), /node #3 "gemm_1" \(Gemm\) writes "gemm_1", which node #1 "gemm_1" writes already$/],
    ['a node writing a graph input', editNode(2, () => ({ outputs: ['x'] })), /node #2 "x" \(Relu\) writes "x", which is a graph input$/],
    ['a node writing an initializer', editNode(2, () => ({ outputs: ['fc2.weight'] })), /\(Relu\) writes "fc2\.weight", which is a graph initializer$/],
    ['two initializers of one name', edit((g) => ({ initializers: [...g.initializers, g.initializers[0]] })), /two initializers are named "fc1\.weight"$/],
    ['two graph inputs of one name', edit((g) => ({ inputs: [...g.inputs, g.inputs[0]] })), /two graph inputs are named "x"$/],
    ['two nodes of one name', edit((g) => ({ nodes: g.nodes.map((n, i) => (i === 1 || i === 3 ? { ...n, name: 'fc' } : n)) })), /two nodes are named "fc"$/],
    ['an output nothing defines', edit((g) => ({ outputs: [...g.outputs, { name: 'nope', elemType: 1 }] })), /graph output "nope" is not defined by any node, graph input or initializer$/],
    ['a node missing its inputs', editNode(1, () => ({ inputs: undefined as never })), /node #1 "gemm_1" \(Gemm\): inputs and outputs must be arrays of tensor names$/],
    ['a node without opType', editNode(1, () => ({ opType: '' })), /node #1 "gemm_1" has no operator type$/],
    // initializers
    ['data shorter than the dims', editInit('fc1.weight', (t) => ({ data: (t.data as Float32Array).subarray(5) })), /initializer "fc1\.weight" holds 235195 values; its dims \[300, 784\] need 235200$/],
    ['negative dims', editInit('fc1.weight', () => ({ dims: [-300, -784] })), /initializer "fc1\.weight" has dims \[-300, -784\]; each must be an integer >= 0$/],
    ['non-integer dims', editInit('fc1.bias', () => ({ dims: [150.5, 2] })), /initializer "fc1\.bias" has dims \[150\.5, 2\]/],
    ['an unknown data type', editInit('fc1.bias', () => ({ dataType: 10 })), /initializer "fc1\.bias" has data type 10, which this library does not read/],
    ['data of another type than dataType', editInit('fc1.bias', (t) => ({ data: Float64Array.from(t.data as Float32Array) })), /initializer "fc1\.bias" of data type 1 holds a Float64Array$/],
    // attributes
    ['Gemm transB as a float', withAttr(1, 'transB', { f: 1 }), /node #1 "gemm_1" \(Gemm\): attribute transB of Gemm must be \{ i: \.\.\. \}/],
    ['Gemm alpha as an int', withAttr(1, 'alpha', { i: 3 }), /attribute alpha of Gemm must be \{ f: \.\.\. \}/],
    ['Flatten axis as a string', withAttr(0, 'axis', { s: '1' }), /attribute axis of Flatten must be \{ i: \.\.\. \}/],
    ['an int attribute of 1.5', withAttr(1, 'transB', { i: 1.5 }), /attribute transB is \{"i":1\.5\}, not one of/],
    ['an attribute of no kind', withAttr(1, 'transB', {} as never), /attribute transB is \{\}, not one of/],
    ['Cast to an unknown type', edit((g) => ({ nodes: [...g.nodes, { opType: 'Cast', inputs: ['logits'], outputs: ['c'], attrs: { to: { i: 99 } } }] })), /attribute to of Cast names data type 99/],
    ['MaxPool kernel_shape as a float', withAttr(lenet5(1).graph.nodes.findIndex((n) => n.opType === 'MaxPool'), 'kernel_shape', { f: 2 }, lenet5(1)), /attribute kernel_shape of MaxPool must be \{ ints: \.\.\. \}/],
    // versions
    [`opset ${MAX_OPSET + 1}`, { ...lenet300100(1), opset: MAX_OPSET + 1 }, /imports opset 27; onnxruntime implements ai\.onnx opsets up to 26$/],
    ['IR version 0', { ...lenet300100(1), irVersion: 0 }, /IR version is 0; onnxruntime loads 1 to 13$/],
    ['no IR version', { ...lenet300100(1), irVersion: undefined as never }, /IR version is undefined/],
    [`IR version ${MAX_IR_VERSION + 1}`, { ...lenet300100(1), irVersion: MAX_IR_VERSION + 1 }, /IR version is 14/],
  ];
  for (const [what, m, pattern] of cases)
    it(`${what}: refused by deriveTrainingGraph`, () => {
      const got = derive(m);
      expect(got).to.match(/^ERR_SPARTAN_ONNX: /);
      expect(got).to.match(pattern);
    });

  it('a Cast to float16 beside the loss\'s path, and Constant nodes sharing a name (onnxruntime makes them initializers first), derive and load', async () => {
    const m = edit((g) => ({
      nodes: [...g.nodes, { opType: 'Cast', inputs: ['logits'], outputs: ['half'], attrs: { to: { i: 10 } } },
        ...[0, 1].map((i) => ({ opType: 'Constant', name: 'Constant', inputs: [], outputs: [`k${i}`], attrs: { value: { t: { name: '', dims: [], dataType: DataType.FLOAT, data: Float32Array.of(i) } } } }))],
      outputs: [...g.outputs, { name: 'half', elemType: 10, shape: ['N', 10] }, { name: 'k0', elemType: DataType.FLOAT, shape: [] }, { name: 'k1', elemType: DataType.FLOAT, shape: [] }],
    }));
    await (await GraphRunner.create(m)).release(); // onnxruntime takes the forward model
    await (await GraphRunner.create(deriveTrainingGraph(m, { logits: 'logits' }))).release();
  });

  it('a custom domain\'s attributes are not held to the default domain\'s kinds', () => {
    const m = edit((g) => ({ nodes: [...g.nodes, { opType: 'Mine', domain: 'com.example', inputs: ['logits'], outputs: ['o'], attrs: { alpha: { i: 3 } } }] }));
    expect(() => checkModel(m)).not.to.throw();
  });

  it('an initializer listed as an input too (IR < 4 style) is accepted, unless the derivation trains it', async function () {
    this.timeout(60000);
    const m = edit((g) => ({ inputs: [...g.inputs, { name: 'fc1.weight', elemType: DataType.FLOAT, shape: [300, 784] }] }));
    expect(() => checkModel(m)).not.to.throw();
    expect(derive(m)).to.match(/^ERR_SPARTAN_ONNX: "fc1\.weight" is an initializer listed as a graph input too; .*keep_initializers_as_inputs=False/);
    expect(derive(m, ['fc1.weight'])).to.match(/^ERR_SPARTAN_ONNX: "fc1\.weight" is an initializer listed as a graph input too/);
    const t = deriveTrainingGraph(m, { logits: 'logits', params: ['fc2.weight', 'fc3.weight'] }); // fc1.weight kept fixed
    const runner = await GraphRunner.create(t); // onnxruntime loads it
    await runner.release();
  });

  it(`opset ${MAX_OPSET} and IR version ${MAX_IR_VERSION} pass, and onnxruntime loads them while it refuses one more`, async () => {
    expect(() => checkModel({ ...lenet300100(1), opset: MAX_OPSET, irVersion: MAX_IR_VERSION })).not.to.throw();
    const relu = (opset: number, irVersion: number): Model => ({
      irVersion, opset, producerName: 'test',
      graph: { name: 'g', nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'], attrs: {} }], inputs: [{ name: 'x', elemType: DataType.FLOAT, shape: [2] }], outputs: [{ name: 'y', elemType: DataType.FLOAT, shape: [2] }], initializers: [], valueInfo: [] },
    });
    await (await GraphRunner.create(relu(MAX_OPSET, MAX_IR_VERSION))).release();
    for (const [opset, ir, pattern] of [[MAX_OPSET + 1, MAX_IR_VERSION, /opset 27 is under development/i], [MAX_OPSET, MAX_IR_VERSION + 1, /IR version: 14/]] as const) {
      let refused: unknown;
      await GraphRunner.create(relu(opset, ir)).then((r) => r.release(), (e) => (refused = e?.cause ?? e)); // onnxruntime's own message
      expect(String(refused)).to.match(pattern);
    }
  });
});

describe('decodeModel and encodeModel: malformed files and models', () => {
  /** LeNet-300-100's bytes after `f` edits its wire-format object. */
  const rewritten = (f: (m: Record<string, any>) => void) => { // eslint-disable-line @typescript-eslint/no-explicit-any
    const m = ModelProto.toObject(ModelProto.decode(encodeModel(lenet300100(1))));
    f(m);
    return ModelProto.encode(ModelProto.fromObject(m)).finish();
  };

  it('decodeModel: a TENSOR attribute without its tensor, no ai.onnx opset, no IR version: ERR_SPARTAN_ONNX', () => {
    const cases: [Uint8Array, RegExp][] = [
      [rewritten((m) => m.graph.node[0].attribute.push({ name: 'value', type: 4 })), /^ERR_SPARTAN_ONNX: attribute value is of type TENSOR but holds no tensor$/],
      [rewritten((m) => (m.opsetImport = [])), /^ERR_SPARTAN_ONNX: the model imports no opset of the default domain \(ai\.onnx\)$/],
      [rewritten((m) => (m.opsetImport = [{ domain: 'com.microsoft', version: 1 }])), /^ERR_SPARTAN_ONNX: the model imports no opset of the default domain/],
      [rewritten((m) => delete m.irVersion), /^ERR_SPARTAN_ONNX: the model has no IR version$/],
    ];
    for (const [bytes, pattern] of cases) expect(codeOf(() => decodeModel(bytes))).to.match(pattern);
    expect(decodeModel(rewritten((m) => m.opsetImport.push({ domain: 'com.microsoft', version: 1 }))).opset).to.equal(17);
  });

  it('encodeModel: no opset or IR version, a node without opType, an int attribute that is no integer: ERR_SPARTAN_ONNX, no file', () => {
    const cases: [Model, RegExp][] = [
      [{ ...lenet300100(1), opset: undefined as never }, /opset is undefined, not a positive integer/],
      [{ ...lenet300100(1), irVersion: 0 }, /irVersion is 0, not a positive integer/],
      [editNode(1, () => ({ opType: undefined as never })), /node gemm_1 has no opType/],
      [withAttr(1, 'transB', { i: 1.5 }), /attribute transB of node gemm_1 \(Gemm\) holds 1\.5, not an integer/],
      [withAttr(1, 'transB', { i: NaN }), /attribute transB of node gemm_1 \(Gemm\) holds NaN, not an integer/],
      [withAttr(0, 'axes', { ints: [1, 0.5] }), /attribute axes of node flatten_0 \(Flatten\) holds \[1, 0\.5\], not an integer/],
    ];
    for (const [m, pattern] of cases) {
      const got = codeOf(() => encodeModel(m));
      expect(got).to.match(/^ERR_SPARTAN_ONNX: cannot encode the model: /);
      expect(got).to.match(pattern);
    }
  });
});
