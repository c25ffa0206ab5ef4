// Built-in demo models as forward ONNX graphs (input "x", output "logits").
import { GraphBuilder, model } from '../graph/builder';
import { DataType } from '../graph/schema';
import type { Model } from '../graph/model';

function uniformInit(n: number, bound: number, seed: number): Float32Array {
  let s = seed >>> 0;
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    out[i] = (((t ^ (t >>> 14)) >>> 0) / 4294967296 * 2 - 1) * bound;
  }
  return out;
}

/** Gemm + bias with PyTorch's default Linear init (uniform, bound 1 / sqrt(fan_in)). */
function linear(b: GraphBuilder, x: string, name: string, inF: number, outF: number, seed: number): string {
  const bound = 1 / Math.sqrt(inF);
  const w = b.initializer(`${name}.weight`, [outF, inF], uniformInit(outF * inF, bound, seed));
  const bias = b.initializer(`${name}.bias`, [outF], uniformInit(outF, bound, seed + 1));
  return b.op('Gemm', [x, w, bias], { transB: { i: 1 } });
}

/**
 * An MLP on MNIST images: 784 - hidden... - 10 with ReLU, layers fc1, fc2, ... (layer i's
 * weights from seed + 10 (i - 1)). Input x [N, 1, 28, 28], flattened.
 */
function mlp(hidden: readonly number[], seed: number, name: string): Model {
  const b = new GraphBuilder();
  const x = b.input('x', DataType.FLOAT, ['N', 1, 28, 28]);
  let h = b.op('Flatten', [x], { axis: { i: 1 } }), width = 784;
  hidden.forEach((w, i) => {
    h = b.op('Relu', [linear(b, h, `fc${i + 1}`, width, w, seed + 10 * i)]);
    width = w;
  });
  const last = hidden.length + 1;
  b.op('Gemm', [h, ...addLinearParams(b, `fc${last}`, width, 10, seed + 10 * hidden.length)], { transB: { i: 1 } }, ['logits']);
  b.output('logits', DataType.FLOAT, ['N', 10]);
  return model(b.graph(name));
}

/** LeNet-300-100: 784-300-100-10 with ReLU. Input x [N, 784] (or [N, 1, 28, 28], flattened). */
export function lenet300100(seed = 1): Model {
  return mlp([300, 100], seed, 'lenet-300-100');
}

/**
 * MLP-256-128: 784-256-128-10 with ReLU, whose first two weights ([256, 784], [128, 256]) cut
 * into whole 16 x 16 tiles (784 = 49 x 16), so `--block 16` masks them by block, which the
 * LeNets' shapes do not allow; `--block 32` masks fc2 by block (784 is no multiple of 32);
 * fc3 [10, 128] keeps element masks.
 */
export function mlp256128(seed = 1): Model {
  return mlp([256, 128], seed, 'mlp-256-128');
}

function addLinearParams(b: GraphBuilder, name: string, inF: number, outF: number, seed: number): [string, string] {
  const bound = 1 / Math.sqrt(inF);
  return [b.initializer(`${name}.weight`, [outF, inF], uniformInit(outF * inF, bound, seed)), b.initializer(`${name}.bias`, [outF], uniformInit(outF, bound, seed + 1))];
}

/** A conv weight [out, in, k, k] with PyTorch's default init, plus its bias. */
function convParams(b: GraphBuilder, name: string, inC: number, outC: number, k: number, seed: number): [string, string] {
  const bound = 1 / Math.sqrt(inC * k * k);
  return [
    b.initializer(`${name}.weight`, [outC, inC, k, k], uniformInit(outC * inC * k * k, bound, seed)),
    b.initializer(`${name}.bias`, [outC], uniformInit(outC, bound, seed + 1)),
  ];
}

/** LeNet-5 (ReLU and max-pooling): conv 6@5x5 (pad 2) - pool - conv 16@5x5 - pool - 120 - 84 - 10. */
export function lenet5(seed = 1): Model {
  const b = new GraphBuilder();
  const x = b.input('x', DataType.FLOAT, ['N', 1, 28, 28]);
  const pool = (t: string) => b.op('MaxPool', [t], { kernel_shape: { ints: [2, 2] }, strides: { ints: [2, 2] } });
  const c1 = pool(b.op('Relu', [b.op('Conv', [x, ...convParams(b, 'conv1', 1, 6, 5, seed)], { pads: { ints: [2, 2, 2, 2] } })]));
  const c2 = pool(b.op('Relu', [b.op('Conv', [c1, ...convParams(b, 'conv2', 6, 16, 5, seed + 10)])]));
  const flat = b.op('Flatten', [c2], { axis: { i: 1 } });
  const f1 = b.op('Relu', [linear(b, flat, 'fc1', 400, 120, seed + 20)]);
  const f2 = b.op('Relu', [linear(b, f1, 'fc2', 120, 84, seed + 30)]);
  b.op('Gemm', [f2, ...addLinearParams(b, 'fc3', 84, 10, seed + 40)], { transB: { i: 1 } }, ['logits']);
  b.output('logits', DataType.FLOAT, ['N', 10]);
  return model(b.graph('lenet-5'));
}

/**
 * The built-in demo models by CLI name, with the settings their accuracy runs train with
 * (README "Accuracy vs sparsity"; the CLI's defaults for them): Nesterov SGD at `lr` with a
 * cosine decay, and Spartan's β_max, chosen on held-out data. LeNet-5 at lr 0.1 collapsed to a
 * dead network in 8 of 36 sparse runs (every method); at 0.05 it trains with all of them.
 */
export const builtInModels = {
  'lenet-300-100': { label: 'LeNet-300-100', build: lenet300100, lr: 0.1, betaMax: 100 },
  'lenet-5': { label: 'LeNet-5', build: lenet5, lr: 0.05, betaMax: 100 },
  // for block sparsity; its settings are LeNet-300-100's, not tuned for it
  'mlp-256-128': { label: 'MLP-256-128', build: mlp256128, lr: 0.1, betaMax: 100 },
} as const;
export type BuiltInModel = keyof typeof builtInModels;
