// CPU kernel microbenchmarks: `npm run bench` (or `npm run bench -- --quick`).
// Prints a table (median time, effective GB/s, ratio to the time memcpy needs for
// the same bytes on this machine, Newton passes) and writes JSON to benchmarks/results/.
import * as os from 'node:os';
import * as spartan from '../lib/index';
import { softTopKNewtonTs, softTopKReferenceTs } from './baseline';
import { writeResult } from './cli';

const quick = process.argv.includes('--quick');
const maxLog2 = quick ? 22 : 25;
const sizes = Array.from({ length: maxLog2 - 16 + 1 }, (_, i) => 2 ** (16 + i));

function halfNormal(n: number, seed = 1): Float32Array {
  let a = seed >>> 0;
  const rand = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const v = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const r = Math.sqrt(-2 * Math.log(1 - rand())), th = 2 * Math.PI * rand();
    v[i] = Math.abs(r * Math.cos(th));
    if (i + 1 < n) v[i + 1] = Math.abs(r * Math.sin(th));
  }
  return v;
}

/** Median wall time (ms) of fn after one warm-up, over at least `min` runs and about `budgetMs`. */
function time(fn: () => void, min = 5, budgetMs = 1500, max = 51): number {
  fn();
  const ts: number[] = [];
  const start = performance.now();
  while (ts.length < min || (ts.length < max && performance.now() - start < budgetMs)) {
    const t0 = performance.now();
    fn();
    ts.push(performance.now() - t0);
  }
  ts.sort((a, b) => a - b);
  return ts[ts.length >> 1];
}

// This machine's copy bandwidth: bytes read + written per second by a large memcpy.
function memcpyGBs(): number {
  const n = 2 ** 25;
  const src = halfNormal(n), dst = new Float32Array(n);
  const ms = time(() => dst.set(src), 5, 2000);
  return (2 * n * 4) / (ms * 1e6);
}

interface Row {
  op: string;
  n: number;
  beta?: number;
  ms: number;
  bytes: number;
  gbs: number;
  memcpyRatio: number;
  passes?: number;
  iterations?: number;
  speedupVsTs?: number;
}

const bw = memcpyGBs();
const rows: Row[] = [];
function record(op: string, n: number, ms: number, bytes: number, extra: Partial<Row> = {}) {
  const row: Row = { op, n, ms, bytes, gbs: bytes / (ms * 1e6), memcpyRatio: ms / (bytes / (bw * 1e6)), ...extra };
  rows.push(row);
  const f = (x: number | undefined, d = 2) => (x === undefined ? '' : x.toFixed(d));
  console.log(
    [op.padEnd(26), String(n).padStart(9), String(extra.beta ?? '').padStart(6), f(ms, 3).padStart(10), f(row.gbs).padStart(7),
     f(row.memcpyRatio).padStart(7), String(extra.passes ?? '').padStart(6), f(extra.speedupVsTs, 1).padStart(8)].join(' '),
  );
}

console.log(`spartan-sparsity CPU benchmarks: ${os.cpus()[0]?.model ?? 'unknown CPU'}, ${spartan.backend().threads} threads, memcpy ${bw.toFixed(2)} GB/s`);
console.log(['op'.padEnd(26), 'n'.padStart(9), 'beta'.padStart(6), 'ms'.padStart(10), 'GB/s'.padStart(7), 'xcopy'.padStart(7), 'passes'.padStart(6), 'vs TS'.padStart(8)].join(' '));

for (const n of sizes) {
  const v = halfNormal(n);
  const k = Math.round(0.1 * n);
  const out = new Float32Array(n), grad = halfNormal(n, 7), gout = new Float32Array(n), hard = new Uint8Array(n);
  const betas = n === 2 ** 24 ? [1, 10, 100, 1000] : [10];
  for (const beta of betas) {
    let res = spartan.softTopK(v, k, beta, { out });
    const ms = time(() => { res = spartan.softTopK(v, k, beta, { out }); });
    const bytes = res.passes * n * 4 + res.iterations * n * 4;
    const extra: Partial<Row> = { beta, passes: res.passes, iterations: res.iterations };
    if (n <= 2 ** 24) {
      const tsMs = time(() => softTopKReferenceTs(v, k, beta, gout), 1, 1, n >= 2 ** 22 ? 2 : 5);
      const tsNewtonMs = time(() => softTopKNewtonTs(v, k, beta, gout), 1, 1, n >= 2 ** 22 ? 2 : 5);
      extra.speedupVsTs = tsMs / ms;
      record('softTopK', n, ms, bytes, extra);
      record('  TS reference (sort+Sinkhorn)', n, tsMs, bytes, { beta });
      record('  TS exact Newton', n, tsNewtonMs, bytes, { beta, speedupVsTs: tsNewtonMs / ms });
    } else {
      record('softTopK', n, ms, bytes, extra);
    }
    if (beta === 10) {
      // warm starts: from this solve's own λ (the answer already: a re-solve of unchanged
      // scores), and from it at a β 1 % higher (a schedule's next step); every timed call
      // starts from the same λ
      const own = res.lambda;
      const ownMs = time(() => { res = spartan.softTopK(v, k, beta, { out, lambda: own }); });
      record('softTopK warm (own λ)', n, ownMs, res.passes * n * 4 + res.iterations * n * 4, { beta, passes: res.passes, iterations: res.iterations });
      const nextMs = time(() => { res = spartan.softTopK(v, k, beta * 1.01, { out, lambda: own }); });
      record('softTopK warm (λ of β −1 %)', n, nextMs, res.passes * n * 4 + res.iterations * n * 4, { beta, passes: res.passes, iterations: res.iterations });
    }
  }
  const mask = spartan.softTopK(v, k, 10).mask;
  record('softTopKBackward', n, time(() => spartan.softTopKBackward(mask, grad, 10, { out: gout })), 2 * 2 * n * 4 + n * 4);
  record('topKMask', n, time(() => spartan.topKMask(v, k, { out: hard })), 3 * n * 4 + n);
  const cols = 1024, rows_ = n / cols;
  for (const b of [16, 32]) {
    const scores = new Float32Array((rows_ / b) * (cols / b));
    record(`blockScores ${b}x${b}`, n, time(() => spartan.blockScores(v, rows_, cols, [b, b], { out: scores })), n * 4);
    const bm = Float32Array.from(scores, (s) => Math.min(1, s / (b * b)));
    record(`applyMask ${b}x${b} block`, n, time(() => spartan.applyMask(v, bm, { shape: [rows_, cols], block: [b, b], out: gout })), 2 * n * 4);
  }
  record('expandBlockMask 16x16', n, time(() => spartan.expandBlockMask(new Float32Array((rows_ / 16) * (cols / 16)), rows_, cols, [16, 16], { out: gout })), n * 4);
  record('applyMask element+hard', n, time(() => spartan.applyMask(v, mask, { hard, out: gout })), 2 * n * 4 + n * 4 + n);
}

// CUDA rows (when a GPU is usable): device Tensors, wall time around each call with
// synchronize(); the kernel-level event timings with rotating inputs are in
// benchmarks/gpu/kernels_bench.cu (scripts/gpu-run.sh).
const cudaRows: Row[] = [];
if (spartan.backend().cuda) {
  const first = rows.length;
  console.log(`CUDA: ${spartan.backend().devices[0]?.name}`);
  for (const log2 of quick ? [20, 22] : [20, 22, 24, 26]) {
    const n = 2 ** log2, k = Math.round(0.1 * n);
    const v = spartan.tensor(halfNormal(n), { device: 'cuda' }), g = spartan.tensor(halfNormal(n, 7), { device: 'cuda' });
    const out = spartan.empty([n], { device: 'cuda' }), gout = spartan.empty([n], { device: 'cuda' }), hard = spartan.empty([n], { device: 'cuda', dtype: 'uint8' });
    const sync = (f: () => void) => () => { f(); spartan.synchronize(); };
    let res = spartan.softTopK(v, k, 10, { out });
    record('cuda softTopK', n, time(sync(() => { res = spartan.softTopK(v, k, 10, { out }); })), 2 * n * 4, { beta: 10, passes: res.passes });
    record('cuda softTopK warm', n, time(sync(() => { spartan.softTopK(v, k, 10, { out, lambda: res.lambda }); })), 2 * n * 4, { beta: 10 });
    record('cuda softTopKBackward', n, time(sync(() => spartan.softTopKBackward(out, g, 10, { out: gout }))), 3 * n * 4);
    record('cuda topKMask', n, time(sync(() => spartan.topKMask(v, k, { out: hard }))), n * 4 + n);
    [v, g, out, gout, hard].forEach((t) => t.dispose());
  }
  cudaRows.push(...rows.splice(first));
}

const result = {
  date: new Date().toISOString(),
  machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, threads: spartan.backend().threads, memGiB: Math.round(os.totalmem() / 2 ** 30), platform: `${os.platform()} ${os.arch()}`, node: process.version },
  backend: spartan.backend(),
  memcpyGBs: bw,
  notes: 'cudaRows: wall time with synchronize() per call; their xcopy is against the host memcpy, so read the GB/s column (device-copy ratios come from benchmarks/gpu/kernels_bench.cu). ms: median wall time; bytes: the model of what the op must move (reads and writes, validation pass included); xcopy: ms / (bytes / memcpy bandwidth); vs TS: plain-TypeScript time / native time on the same input.',
  rows,
  cudaRows,
};
writeResult(quick ? 'cpu-quick' : 'cpu', result.date, result);
