// CPU timings of the BSR products: node --import tsx benchmarks/bsr.ts [--size 2048] [--n 256]
// Median of 7 runs after 2 warm-ups; GFLOP/s counts the stored blocks (2 b^2 N per block).
import * as os from 'node:os';
import { backend, bsr } from '../lib/index';
import { numberArg } from './cli';

const size = numberArg('size', 2048), n = numberArg('n', 256);
let s = 1;
const rand = () => ((s = (s * 1103515245 + 12345) >>> 0) / 2 ** 32) * 2 - 1;

function median(f: () => void): number {
  for (let i = 0; i < 2; i++) f();
  const t: number[] = [];
  for (let i = 0; i < 7; i++) {
    const t0 = process.hrtime.bigint();
    f();
    t.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  return t.sort((a, b) => a - b)[3];
}

console.log(`${os.cpus()[0].model}, ${backend().threads} threads, Node ${process.version}; A ${size}x${size}, N = batch = ${n}`);
console.log('| dtype | b | density | A·X ms | GFLOP/s | X·Aᵀ ms | GFLOP/s |');
console.log('|---|---|---|---|---|---|---|');
for (const dtype of ['float32', 'bfloat16'] as const)
  for (const b of [16, 32] as const)
    for (const density of [0.01, 0.05, 0.1, 0.25, 0.5, 1]) {
      const nb = size / b;
      const mask = Uint8Array.from({ length: nb * nb }, () => (Math.abs(rand()) < density ? 1 : 0));
      const w = Float32Array.from({ length: size * size }, rand);
      const A = bsr.fromDense(w, size, size, [b, b], { mask, dtype });
      const x = Float32Array.from({ length: size * n }, rand);
      const out = new Float32Array(size * n);
      const tm = median(() => bsr.matmul(A, x, { out }));
      const tl = median(() => bsr.linear(x, A, { out }));
      const flop = 2 * A.nnzBlocks * b * b * n;
      console.log(`| ${dtype} | ${b} | ${A.density.toFixed(3)} | ${tm.toFixed(2)} | ${(flop / tm / 1e6).toFixed(1)} | ${tl.toFixed(2)} | ${(flop / tl / 1e6).toFixed(1)} |`);
    }
