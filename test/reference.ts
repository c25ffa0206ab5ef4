// Float64 references for the tests: straightforward, slow, obviously correct.
export function sigmoid(x: number): number {
  return x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
}

export interface RefSoftTopK {
  mask: Float64Array;
  lambda: number;
}

/** Solves sum c sigmoid(beta v / c + lambda) = k by bisection to full float64 precision. */
export function softTopKRef(values: ArrayLike<number>, k: number, beta: number, costs?: ArrayLike<number>): RefSoftTopK {
  const n = values.length;
  const c = (i: number) => (costs ? costs[i] : 1);
  let total = 0;
  let umin = Infinity, umax = -Infinity;
  for (let i = 0; i < n; i++) {
    total += c(i);
    umin = Math.min(umin, values[i] / c(i));
    umax = Math.max(umax, values[i] / c(i));
  }
  const mask = new Float64Array(n);
  if (k <= 0) return { mask, lambda: -Infinity };
  if (k >= total) return { mask: mask.fill(1), lambda: Infinity };
  const logit = Math.log(k / total) - Math.log1p(-k / total);
  let lo = logit - beta * umax - 1, hi = logit - beta * umin + 1;
  const F = (lam: number) => {
    let s = -k;
    for (let i = 0; i < n; i++) s += c(i) * sigmoid((beta * values[i]) / c(i) + lam);
    return s;
  };
  for (let it = 0; it < 200 && hi - lo > 1e-13 * Math.max(1, Math.abs(lo)); it++) {
    const mid = 0.5 * (lo + hi);
    if (F(mid) < 0) lo = mid; else hi = mid;
  }
  const lambda = 0.5 * (lo + hi);
  for (let i = 0; i < n; i++) mask[i] = sigmoid((beta * values[i]) / c(i) + lambda);
  return { mask, lambda };
}

/** Closed-form VJP in float64. */
export function softTopKBackwardRef(mask: ArrayLike<number>, grad: ArrayLike<number>, beta: number, costs?: ArrayLike<number>): Float64Array {
  const n = mask.length;
  const c = (i: number) => (costs ? costs[i] : 1);
  let num = 0, den = 0;
  for (let i = 0; i < n; i++) {
    const w = mask[i] * (1 - mask[i]);
    num += grad[i] * w;
    den += c(i) * w;
  }
  const s = den > 0 ? num / den : 0;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = beta * mask[i] * (1 - mask[i]) * (grad[i] / c(i) - s);
  return out;
}

/** Hard top-k by a full sort: shortest prefix (desc v/c, ties to lower index) whose cost reaches k. */
export function topKRef(values: ArrayLike<number>, k: number, costs?: ArrayLike<number>): Uint8Array {
  const n = values.length;
  const c = (i: number) => (costs ? costs[i] : 1);
  const idx = Array.from({ length: n }, (_, i) => i);
  const u = (i: number) => values[i] / c(i);
  idx.sort((a, b) => u(b) - u(a) || a - b);
  const out = new Uint8Array(n);
  let cum = 0;
  for (const i of idx) {
    if (cum >= k) break;
    out[i] = 1;
    cum += c(i);
  }
  return out;
}

/** Mulberry32: a seeded generator, so a failing case can be replayed from its seed. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function normal(r: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());
}

/** A fresh seed per run (printed on failure by the tests that use it). */
export function freshSeed(): number {
  return (Date.now() ^ (process.pid << 16)) >>> 0;
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

export function sum(a: ArrayLike<number>, w?: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * (w ? w[i] : 1);
  return s;
}

/** Central finite differences of L at x, one coordinate at a time. */
export function centralDifferences(L: (x: number[]) => number, x: readonly number[], h: number): number[] {
  return x.map((_, i) => {
    const p = x.slice(), m = x.slice();
    p[i] += h;
    m[i] -= h;
    return (L(p) - L(m)) / (2 * h);
  });
}
