// Plain TypeScript soft top-k baselines, for the benchmark only.

/**
 * The reference algorithm as the paper's code runs it (unit costs): sort for the
 * hard threshold tau, then log-domain Sinkhorn sweeps from z = beta (v - tau),
 * stopping at a 1 % relative change of sum(m v).
 */
export function softTopKReferenceTs(v: Float32Array, k: number, beta: number, out: Float32Array): { iterations: number } {
  const n = v.length;
  const sorted = Float32Array.from(v).sort().reverse(); // descending
  const t = Math.min(n - 1, Math.max(0, Math.ceil(k) - 1)); // first index whose cumulative count reaches k
  const tau = sorted[t];
  const logK = Math.log(k);
  let mu = 0;
  const sweep = () => {
    // returns log sum sigma(z + mu) and writes m = sigma(z + mu), objective sum m v
    let s = 0, obj = 0;
    for (let i = 0; i < n; i++) {
      const x = beta * (v[i] - tau) + mu;
      const m = x >= 0 ? 1 / (1 + Math.exp(-x)) : Math.exp(x) / (1 + Math.exp(x));
      out[i] = m;
      s += m;
      obj += m * v[i];
    }
    return { logS: Math.log(s), obj };
  };
  let { logS, obj: prev } = sweep();
  let it = 0;
  for (; it < 100; it++) {
    mu += logK - logS;
    const r = sweep();
    logS = r.logS;
    if (Math.abs(r.obj - prev) <= 0.01 * Math.abs(prev)) break;
    prev = r.obj;
  }
  return { iterations: it };
}

/** The exact operator in plain TypeScript: safeguarded Newton on lambda, no sort. */
export function softTopKNewtonTs(v: Float32Array, k: number, beta: number, out: Float32Array): { iterations: number } {
  const n = v.length;
  let min = Infinity, max = -Infinity;
  for (let i = 0; i < n; i++) {
    if (v[i] < min) min = v[i];
    if (v[i] > max) max = v[i];
  }
  const logit = Math.log(k / n) - Math.log1p(-k / n);
  let lo = logit - beta * max, hi = logit - beta * min, lam = 0.5 * (lo + hi);
  let it = 0;
  for (; it < 100; it++) {
    let f = -k, df = 0;
    for (let i = 0; i < n; i++) {
      const e = Math.exp(-(beta * v[i] + lam));
      const m = 1 / (1 + e);
      out[i] = m;
      f += m;
      df += m * (1 - m);
    }
    if (Math.abs(f) <= 1e-6 || (df > 0 && Math.abs(f) / df < 1e-7)) break;
    if (f < 0) lo = lam; else hi = lam;
    let next = df > 0 ? lam - f / df : 0.5 * (lo + hi);
    if (!(next > lo && next < hi)) next = 0.5 * (lo + hi);
    lam = next;
  }
  return { iterations: it + 1 };
}
