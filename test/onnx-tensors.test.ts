// decodeModel on tensors whose data does not match their dims, or lives outside the file: one
// ERR_SPARTAN_ONNX naming the tensor, never a bare RangeError or silently empty weights.
import { expect } from 'chai';
import { DataType, ModelProto } from '../lib/graph/schema';
import { decodeModel, encodeModel, type Model } from '../lib/graph/model';
import { lenet300100 } from '../lib/models/lenet';
import { codeOf } from './helpers';

/** LeNet-300-100 with the first initializer replaced by `tensor` (wire-format fields). */
function withTensor(tensor: Record<string, unknown>): Uint8Array {
  const m = ModelProto.decode(encodeModel(lenet300100(1))) as unknown as { graph: { initializer: Record<string, unknown>[] } };
  m.graph.initializer[0] = { name: m.graph.initializer[0].name, ...tensor };
  return ModelProto.encode(m as never).finish();
}

describe('ONNX tensors that do not hold what their dims say', () => {
  it('raw data of the wrong length, typed data of the wrong count, negative dims, external data: ERR_SPARTAN_ONNX naming the tensor', () => {
    const cases: [Record<string, unknown>, RegExp][] = [
      [{ dims: [300, 784], dataType: DataType.FLOAT, rawData: new Uint8Array(4575) }, /tensor "fc1\.weight" holds 4575 bytes of raw data; its dims need 235200 × 4$/],
      [{ dims: [2, 2], dataType: DataType.FLOAT, rawData: new Uint8Array(20) }, /holds 20 bytes of raw data; its dims need 4 × 4$/],
      [{ dims: [3], dataType: DataType.FLOAT, floatData: [1, 2] }, /tensor "fc1\.weight" holds 2 values; its dims \[3\] need 3$/],
      [{ dims: [2], dataType: DataType.INT64, int64Data: [1, 2, 3] }, /holds 3 values; its dims \[2\] need 2$/],
      [{ dims: [-1, 4], dataType: DataType.FLOAT, rawData: new Uint8Array(16) }, /tensor "fc1\.weight" has dims \[-1, 4\]; each must be an integer >= 0$/],
      [{ dims: [300, 784], dataType: DataType.FLOAT, dataLocation: 1 }, /tensor "fc1\.weight" keeps its data in an external file \(ONNX external data\)/],
    ];
    for (const [tensor, pattern] of cases) {
      const got = codeOf(() => decodeModel(withTensor(tensor)));
      expect(got, JSON.stringify(tensor, (_k, v) => (v instanceof Uint8Array ? `${v.length} bytes` : v))).to.match(/^ERR_SPARTAN_ONNX: /);
      expect(got).to.match(pattern);
    }
  });

  it('well-formed tensors still decode: raw, typed, a scalar, an empty one', () => {
    const model: Model = decodeModel(withTensor({ dims: [2, 3], dataType: DataType.FLOAT, floatData: [1, 2, 3, 4, 5, 6] }));
    expect(Array.from(model.graph.initializers[0].data as Float32Array)).to.deep.equal([1, 2, 3, 4, 5, 6]);
    const scalar = decodeModel(withTensor({ dims: [], dataType: DataType.FLOAT, floatData: [7] })).graph.initializers[0];
    expect([scalar.dims, Array.from(scalar.data as Float32Array)]).to.deep.equal([[], [7]]);
    const empty = decodeModel(withTensor({ dims: [0, 4], dataType: DataType.FLOAT })).graph.initializers[0];
    expect(empty.data.length).to.equal(0);
    const raw = decodeModel(encodeModel(lenet300100(1))).graph.initializers[0];
    expect(raw.data.length).to.equal(300 * 784);
  });
});
