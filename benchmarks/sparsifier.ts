// The whole sparsifier step (weights, backward/VJP, optimizer, mask update) at
// LeNet-300-100 and ResNet-50 size on the CPU: `node --import tsx benchmarks/sparsifier.ts [--quick]`.
import * as os from 'node:os';
import * as spartan from '../lib/index';
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

const bw = memcpyGBs();
const rows: object[] = [];
console.log(`sparsifier step on the CPU (${os.cpus()[0]?.model}, ${spartan.backend().threads} threads, memcpy ${bw.toFixed(1)} GB/s)`);
console.log(['model'.padEnd(14), 'method'.padEnd(8), 'params'.padStart(10), 'ms/step'.padStart(9), 'x floor'.padStart(8), 'mask ms'.padStart(8)].join(' '));
for (const [model, shapes] of Object.entries(models)) {
  const numel = shapes.reduce((a, [, s]) => a + s.reduce((x, y) => x * y, 1), 0);
  for (const method of ['dense', 'imp', 'topkast', 'spartan'] as const) {
    let seed = 1;
    const rand = () => ((seed = (seed * 1664525 + 1013904223) >>> 0) / 4294967296 - 0.5) * 0.1;
    const params = shapes.map(([name, shape]) => ({ name, shape, data: Float32Array.from({ length: shape.reduce((a, b) => a * b, 1) }, rand) }));
    const grads = Object.fromEntries(params.map((p) => [p.name, Float32Array.from(p.data, () => rand())]));
    const steps = model === 'ResNet-50' ? 6 : 60;
    const sp = new spartan.Sparsifier({ params, method, density: 0.1, totalSteps: 10 * steps, budget: 'global' });
    const opt = new spartan.SGD(params, { lr: 1e-3, momentum: 0.9, nesterov: true, weightDecay: 1e-4 });
    const sparse = sp.layers.filter((l) => l.sparsify && method !== 'dense').reduce((a, l) => a + l.numel, 0);
    const floor = sparse * SPARSE_BYTES + (numel - sparse) * DENSE_BYTES;
    const times: number[] = [], maskTimes: number[] = [];
    for (let s = 0; s < steps + 1; s++) {
      const t0 = performance.now();
      sp.weights();
      const g = sp.backward(grads);
      opt.step(g, sp.checkedSumSquares); // the sums backward() has: no second scan
      const t1 = performance.now();
      sp.step();
      const t2 = performance.now();
      if (s > 0) { times.push(t2 - t0); maskTimes.push(t2 - t1); } // first step: warm-up
    }
    times.sort((a, b) => a - b);
    maskTimes.sort((a, b) => a - b);
    const ms = times[times.length >> 1], mask = maskTimes[maskTimes.length >> 1];
    const ratio = ms / (floor / (bw * 1e6));
    rows.push({ model, method, params: numel, msPerStep: ms, maskMs: mask, floorBytes: floor, xFloor: ratio, iterations: sp.stats().iterations });
    console.log([model.padEnd(14), method.padEnd(8), String(numel).padStart(10), ms.toFixed(2).padStart(9), ratio.toFixed(1).padStart(8), mask.toFixed(2).padStart(8)].join(' '));
  }
}
const result = {
  date: new Date().toISOString(),
  machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, threads: spartan.backend().threads, node: process.version },
  memcpyGBs: bw,
  notes: 'msPerStep: median of weights() + backward() + SGD(Nesterov) step + sparsifier.step(); xFloor: time over the time memcpy bandwidth needs for the floor bytes (49 B per sparsified and 20 B per dense parameter); density 0.1, global budget.',
  rows,
};
writeResult(quick ? 'sparsifier-cpu-quick' : 'sparsifier-cpu', result.date, result);
