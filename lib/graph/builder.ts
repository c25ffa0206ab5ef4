// A small helper for writing ONNX graphs by hand: fresh names, typed attributes.
import { DataType } from './schema';
import type { Attr, Dim, Graph, Model, Node, TensorValue, ValueInfo } from './model';

export class GraphBuilder {
  readonly nodes: Node[] = [];
  readonly initializers: TensorValue[] = [];
  readonly inputs: ValueInfo[] = [];
  readonly outputs: ValueInfo[] = [];
  private counter = 0;
  constructor(private readonly prefix = 't', private readonly taken: Set<string> = new Set()) {}

  fresh(hint = this.prefix): string {
    let name: string;
    do name = `${hint}_${this.counter++}`;
    while (this.taken.has(name));
    this.taken.add(name);
    return name;
  }

  input(name: string, elemType: number, shape: Dim[]): string {
    this.inputs.push({ name, elemType, shape });
    this.taken.add(name);
    return name;
  }

  output(name: string, elemType: number, shape?: Dim[]): void {
    this.outputs.push({ name, elemType, shape });
  }

  initializer(name: string, dims: number[], data: TensorValue['data'], dataType: number = DataType.FLOAT): string {
    this.initializers.push({ name, dims, dataType, data });
    this.taken.add(name);
    return name;
  }

  /** A constant tensor as an initializer with a fresh name. */
  constant(data: TensorValue['data'], dims: number[], dataType: number): string {
    return this.initializer(this.fresh('const'), dims, data, dataType);
  }

  int64s(values: number[]): string {
    return this.constant(BigInt64Array.from(values.map(BigInt)), [values.length], DataType.INT64);
  }

  /** Adds a node; returns its (first) output name. */
  op(opType: string, inputs: string[], attrs: Record<string, Attr> = {}, outputs?: string[]): string {
    const outs = outputs ?? [this.fresh(opType.toLowerCase())];
    for (const o of outs) this.taken.add(o);
    this.nodes.push({ opType, inputs, outputs: outs, attrs });
    return outs[0];
  }

  graph(name: string): Graph {
    return { name, nodes: this.nodes, inputs: this.inputs, outputs: this.outputs, initializers: this.initializers, valueInfo: [] };
  }
}

/** A model importing `opset` of the default domain, with the IR version that opset needs (8 up to opset 18, 9 for 19-20, 10 from 21). */
export function model(graph: Graph, opset = 17): Model {
  return { irVersion: opset >= 21 ? 10 : opset >= 19 ? 9 : 8, opset, producerName: 'spartan-sparsity', graph };
}

/** ReduceMean over `axes`: an input from opset 18 on, an attribute before. */
export function reduceMean(b: GraphBuilder, opset: number, x: string, axes: number[], keepdims = 0): string {
  const keep = { keepdims: { i: keepdims } };
  return opset >= 18 ? b.op('ReduceMean', [x, b.int64s(axes)], keep) : b.op('ReduceMean', [x], { axes: { ints: axes }, ...keep });
}
