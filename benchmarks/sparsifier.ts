// The whole sparsifier step (weights, backward/VJP, optimizer, mask update) at
// LeNet-300-100 and ResNet-50 size, on the CPU and, where CUDA is usable, on CUDA Tensors:
// `node --import tsx benchmarks/sparsifier.ts [--quick]`.
import * as os from 'node:os';
import * as spartan from '../lib/index';
import { native, type DeviceBuffer } from '../lib/native';
import { writeResult } from './cli';
import { lenet300100, resnet50Weights } from './models';

const quick = process.argv.includes('--quick');
const models: Record<string, [string, number[]][]> = quick ? { 'LeNet-300-100': lenet300100() } : { 'LeNet-300-100': lenet300100(), 'ResNet-50': resnet50Weights() };

function memcpyGBs(): number {
  const src = new Float32Array(2 ** 25).fill(1), dst = new Float32Array(2 ** 25);
  const ts: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t = performance.now();
    dst.set(src);
    ts.push(performance.now() - t);
  }
  ts.sort((a, b) => a - b);
  return (2 * 4 * 2 ** 25) / (ts[3] * 1e6);
}

// Bytes a fused step must move per sparsified parameter, at the least: weights (read theta,
// write W: 8), backward (read G and theta, write dtheta: 12), SGD with momentum (read theta,
// dtheta, buffer; write theta, buffer: 20), mask update (read theta, write the soft mask and
// the hard mask: 9). Dense parameters: the optimizer's 20 (+ reading G: the copy is avoidable).
const SPARSE_BYTES = 49, DENSE_BYTES = 20;

// The device's copy bandwidth: bytes read + written per second by a large device-to-device copy.
function deviceCopyGBs(): number {
  const n = 2 ** 26; // 256 MB each: well past L2
  const src = spartan.empty([n], { device: 'cuda' }), dst = spartan.empty([n], { device: 'cuda' });
  const ts: number[] = [];
  for (let i = 0; i < 9; i++) {
    spartan.synchronize();
    const t = performance.now();
    native.cudaCopy(dst.handle as DeviceBuffer, src.handle as DeviceBuffer);
    spartan.synchronize();
    ts.push(performance.now() - t);
  }
  src.dispose();
  dst.dispose();
  ts.sort((a, b) => a - b);
  return (2 * 4 * n) / (ts[4] * 1e6);
}

const devices: spartan.Device[] = spartan.backend().cuda ? ['cpu', 'cuda'] : ['cpu'];
if (devices.length === 1) console.log(`(no CUDA rows: ${spartan.backend().reason})`);
const rows: object[] = [];
const bandwidth: Record<string, number> = {};
for (const device of devices) {
  const bw = (bandwidth[device] = device === 'cuda' ? deviceCopyGBs() : memcpyGBs());
  const sync = device === 'cuda' ? () => spartan.synchronize() : () => {};
  const where = device === 'cuda' ? spartan.backend().devices[0]?.name : `${os.cpus()[0]?.model}, ${spartan.backend().threads} threads`;
  console.log(`sparsifier step on ${device} (${where}; ${device === 'cuda' ? 'device copy' : 'memcpy'} ${bw.toFixed(1)} GB/s)`);
  console.log(['model'.padEnd(14), 'method'.padEnd(8), 'params'.padStart(10), 'ms/step'.padStart(9), 'x floor'.padStart(8), 'mask ms'.padStart(8)].join(' '));
  for (const [model, shapes] of Object.entries(models)) {
    const numel = shapes.reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
    for (const method of ['dense', 'imp', 'topkast', 'spartan'] as const) {
      let seed = 1;
      const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296 - 0.5) * 0.1;
      const hostParams = shapes.map(([name, shape]) => ({ name, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand) }));
      const hostGrads = Object.fromEntries(hostParams.map((p) => [p.name, Float32Array.from(p.data, () => rand())]));
      // the same step on host arrays (cpu) or on CUDA Tensors: parameters, gradients, masks and optimizer state on the device
      const params = device === 'cpu' ? hostParams : hostParams.map((p) => ({ ...p, data: spartan.tensor(p.data, { device }) }));
      const grads = device === 'cpu' ? hostGrads : Object.fromEntries(Object.entries(hostGrads).map(([k, g]) => [k, spartan.tensor(g, { device })]));
      const steps = model === 'ResNet-50' ? (device === 'cuda' ? 30 : 6) : 60;
      const sp = new spartan.Sparsifier<Float32Array | spartan.Tensor>({ params, method, density: 0.1, totalSteps: 10 * steps, budget: 'global' });
      const opt = new spartan.SGD(params, { lr: 1e-3, momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
      const sparse = sp.layers.filter((l) => l.sparsify && method !== 'dense').reduce((a, l) => a + l.numel, 0);
      const floor = sparse * SPARSE_BYTES + (numel - sparse) * DENSE_BYTES;
      const times: number[] = [], maskTimes: number[] = [];
      for (let s = 0; s < steps + 1; s++) {
        sync();
        const t0 = performance.now();
        sp.weights();
        const g = sp.backward(grads as never);
        opt.step(g, sp.checkedSumSquares); // the sums backward() has: no second scan
        sync();
        const t1 = performance.now();
        sp.step();
        sync();
        const t2 = performance.now();
        if (s > 0) { times.push(t2 - t0); maskTimes.push(t2 - t1); } // first step: warm-up
      }
      times.sort((a, b) => a - b);
      maskTimes.sort((a, b) => a - b);
      const ms = times[times.length >> 1], mask = maskTimes[maskTimes.length >> 1];
      const ratio = ms / (floor / (bw * 1e6));
      rows.push({ device, model, method, params: numel, msPerStep: ms, maskMs: mask, floorBytes: floor, xFloor: ratio, iterations: sp.stats().iterations });
      console.log([model.padEnd(14), method.padEnd(8), String(numel).padStart(10), ms.toFixed(2).padStart(9), ratio.toFixed(1).padStart(8), mask.toFixed(2).padStart(8)].join(' '));
      if (device === 'cuda') {
        sp.dispose();
        opt.dispose();
        for (const p of params) (p.data as spartan.Tensor).dispose();
        for (const g of Object.values(grads)) (g as spartan.Tensor).dispose();
      }
    }
  }
}
const result = {
  date: new Date().toISOString(),
  machine: {
    cpu: os.cpus()[0]?.model, cores: os.cpus().length, threads: spartan.backend().threads, simd: spartan.backend().simd, node: process.version,
    gpu: spartan.backend().cuda ? spartan.backend().devices[0]?.name : undefined,
  },
  memcpyGBs: bandwidth.cpu,
  deviceCopyGBs: bandwidth.cuda,
  notes: 'msPerStep: median of weights() + backward() + SGD(Nesterov) step + sparsifier.step() (CUDA rows: synchronized before and after); xFloor: time over the time the copy bandwidth (memcpy on the CPU, device-to-device copy on CUDA) needs for the floor bytes (49 B per sparsified and 20 B per dense parameter); density 0.1, global budget.',
  rows,
};
writeResult(`sparsifier-${devices.join('-')}${quick ? '-quick' : ''}`, result.date, result);
