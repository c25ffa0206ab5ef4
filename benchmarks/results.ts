// Accuracy vs sparsity for dense, IMP, Top-KAST and Spartan on LeNet-300-100 and LeNet-5
// (MNIST), several seeds: `node --import tsx benchmarks/results.ts [--epochs 20] [--seeds 3]
// [--only LeNet-5[,LeNet-300-100] [--methods spartan] --keep <earlier accuracy json>]`. --only
// reruns those models (with --methods, only those methods) and takes every other run from the --keep file
// (each run records its learning rate, Spartan's beta_max and where it came from).
// Writes benchmarks/results/accuracy-<host>-<date>.json and .svg, and prints a markdown table.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { loadMnist } from '../lib/data/dataset';
import { Trainer } from '../lib/train/trainer';
import type { Method } from '../lib/sparsity/sparsifier';
import { numberArg, option, writeResult } from './cli';
import { meanAndStd, recipeBatchSize, recipeEpochs, recipeFor, sgd } from './recipe';

const epochs = numberArg('epochs', recipeEpochs), seeds = numberArg('seeds', 3);
const sparsities = [0.9, 0.95, 0.98, 0.99];
const methods: Method[] = ['imp', 'topkast', 'spartan'];
// the table's model labels (LeNet-300-100, LeNet-5: the issue's two), as the runs in the json record them
const models: string[] = (['lenet-300-100', 'lenet-5'] as const).map((m) => recipeFor(m).label);
const learningRates: Record<string, number> = Object.fromEntries(models.map((m) => [m, recipeFor(m).lr]));
const betaMaxes: Record<string, number> = Object.fromEntries(models.map((m) => [m, recipeFor(m).betaMax]));
const only = option('only')?.split(','), keep = option('keep');
for (const m of only ?? []) if (!models.includes(m)) throw new Error(`--only takes models among ${models.join(', ')}`);
if ((only === undefined) !== (keep === undefined)) throw new Error('--only and --keep go together');
const rerun = new Set<Method>((option('methods')?.split(',') ?? ['dense', ...methods]) as Method[]);
for (const m of rerun) if (m !== 'dense' && !methods.includes(m)) throw new Error(`--methods: unknown method ${m}`);
if (rerun.size < methods.length + 1 && only === undefined) throw new Error('--methods needs --only and --keep');
const fresh = (model: string, method: Method) => (only === undefined || only.includes(model)) && rerun.has(method);
const train = loadMnist('train'), test = loadMnist('test');

interface Run { model: string; method: Method; sparsity: number; seed: number; lr?: number; betaMax?: number; testAccuracy: number; density: number; seconds: number; from?: string; trace?: { beta: number; density: number; flips: number }[] }
const runs: Run[] = [];
const kept: Run[] = keep
  ? (JSON.parse(fs.readFileSync(keep, 'utf8')).runs as Run[])
      .filter((r) => !fresh(r.model, r.method))
      .map((r) => ({ ...r, lr: r.lr ?? 0.1, betaMax: r.method === 'spartan' ? (r.betaMax ?? 300) : undefined, from: r.from ?? path.basename(keep) }))
  : [];
const t0 = performance.now();

async function one(model: string, method: Method, sparsity: number, seed: number, trace: boolean): Promise<Run> {
  const start = performance.now();
  const t = await Trainer.create({
    forward: recipeFor(model).build(seed), logits: 'logits', epochs, batchSize: recipeBatchSize, trainCount: train.count, seed,
    sparsity: { method, density: 1 - sparsity, betaMax: betaMaxes[model] },
    optimizer: sgd(learningRates[model]),
  });
  const tr: Run['trace'] = [];
  for (let e = 0; e < epochs; e++)
    await t.trainEpoch(train, e, () => {
      if (!trace) return;
      const st = t.sparsifier.stats();
      tr.push({ beta: st.beta, density: st.targetDensity, flips: st.flips });
    });
  const st = t.sparsifier.stats();
  return { model, method, sparsity, seed, lr: learningRates[model], betaMax: method === 'spartan' ? betaMaxes[model] : undefined, testAccuracy: await t.accuracy(test), density: st.density.global, seconds: (performance.now() - start) / 1000, trace: trace ? tr : undefined };
}

(async () => {
  runs.push(...kept);
  for (const model of models) {
    if (only !== undefined && !only.includes(model)) continue;
    for (let seed = 1; seed <= seeds; seed++) {
      if (fresh(model, 'dense')) {
        const r = await one(model, 'dense', 0, seed, false);
        runs.push(r);
        console.error(`${model} dense seed ${seed}: ${(r.testAccuracy * 100).toFixed(2)} % (${r.seconds.toFixed(0)} s)`);
      }
      for (const sparsity of sparsities)
        for (const method of methods) {
          if (!fresh(model, method)) continue;
          const x = await one(model, method, sparsity, seed, model === 'LeNet-300-100' && sparsity === 0.95 && method === 'spartan' && seed === 1);
          runs.push(x);
          console.error(`${model} ${method} ${sparsity} seed ${seed}: ${(x.testAccuracy * 100).toFixed(2)} % (${x.seconds.toFixed(0)} s)`);
        }
    }
  }
  const wall = (performance.now() - t0) / 1000;
  const date = new Date().toISOString();
  const summary = (model: string, method: Method, sparsity: number) => {
    return meanAndStd(runs.filter((r) => r.model === model && r.method === method && r.sparsity === sparsity).map((r) => r.testAccuracy * 100));
  };
  const lines = [
    `Test accuracy (%) on MNIST, mean ± std over ${seeds} seeds, ${epochs} epochs, SGD (Nesterov, cosine, wd 1e-4; lr ${Object.entries(learningRates).map(([m, lr]) => `${lr} for ${m}`).join(', ')}), batch ${recipeBatchSize}, Spartan β_max ${Object.entries(betaMaxes).map(([m, b]) => `${b} for ${m}`).join(', ')}; ` +
      `measured ${date.slice(0, 10)} on ${os.cpus()[0]?.model} (${os.cpus().length} cores), wall time ${(wall / 60).toFixed(1)} min` +
      (only ? ` for ${only.join(' and ')}${rerun.size < methods.length + 1 ? ` (${[...rerun].join(', ')})` : ''}; the other runs are kept from ${path.basename(keep!)}.` : '.'),
    '',
    '| model | method | ' + sparsities.map((s) => `${s * 100} %`).join(' | ') + ' |',
    '|---|---|' + sparsities.map(() => '---').join('|') + '|',
  ];
  for (const model of models) {
    const d = summary(model, 'dense', 0);
    lines.push(`| ${model} | dense | ${sparsities.map(() => `${d.mean.toFixed(2)} ± ${d.std.toFixed(2)}`).join(' | ')} |`);
    for (const m of methods) lines.push(`| ${model} | ${m} | ${sparsities.map((s) => { const x = summary(model, m, s); return `${x.mean.toFixed(2)} ± ${x.std.toFixed(2)}`; }).join(' | ')} |`);
  }
  const table = lines.join('\n');
  const json = writeResult('accuracy', date, { date, epochs, seeds, machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length }, wallSeconds: wall, runs }, `-${epochs}ep`);
  const traced = runs.find((r) => r.trace);
  fs.writeFileSync(json.replace(/\.json$/, '.svg'), svg(summary, traced?.trace ?? [], traced?.betaMax ?? 300));
  console.log(table);
})();

// accuracy vs sparsity per method and model; beta, density and flips over one Spartan run
function svg(summary: (m: string, k: Method, s: number) => { mean: number }, trace: NonNullable<Run['trace']>, betaMax: number): string {
  const W = 980, H = 330, colors: Record<string, string> = { dense: '#888', imp: '#d62728', topkast: '#1f77b4', spartan: '#2ca02c' };
  const parts: string[] = [`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" font-family="sans-serif" font-size="11">`, `<rect width="${W}" height="${H}" fill="white"/>`];
  const panel = (x0: number, title: string, ys: number[]) => {
    const lo = Math.floor(Math.min(...ys) - 0.5), hi = Math.ceil(Math.max(...ys) + 0.2);
    return { x0, lo, hi, title };
  };
  models.forEach((model, mi) => {
    const all = (['dense', ...methods] as Method[]).flatMap((m) => sparsities.map((s) => summary(model, m, m === 'dense' ? 0 : s).mean));
    const p = panel(20 + mi * 320, model, all);
    const X = (i: number) => p.x0 + 40 + (i * 220) / (sparsities.length - 1), Y = (v: number) => 40 + ((p.hi - v) * 240) / (p.hi - p.lo);
    parts.push(`<text x="${p.x0 + 40}" y="20" font-weight="bold">${model}: test accuracy vs sparsity</text>`);
    parts.push(`<line x1="${p.x0 + 40}" y1="280" x2="${p.x0 + 260}" y2="280" stroke="black"/><line x1="${p.x0 + 40}" y1="40" x2="${p.x0 + 40}" y2="280" stroke="black"/>`);
    sparsities.forEach((s, i) => parts.push(`<text x="${X(i) - 10}" y="295">${s * 100}%</text>`));
    for (let v = p.lo; v <= p.hi; v += Math.max(1, Math.round((p.hi - p.lo) / 5))) parts.push(`<text x="${p.x0 + 8}" y="${Y(v) + 4}">${v}</text>`);
    (['dense', ...methods] as Method[]).forEach((m, k) => {
      const pts = sparsities.map((s, i) => `${X(i).toFixed(1)},${Y(summary(model, m, m === 'dense' ? 0 : s).mean).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${pts}" fill="none" stroke="${colors[m]}" stroke-width="2"${m === 'dense' ? ' stroke-dasharray="4 3"' : ''}/>`);
      parts.push(`<text x="${p.x0 + 50 + k * 55}" y="318" fill="${colors[m]}">${m}</text>`);
    });
  });
  if (trace.length) {
    const x0 = 680, n = trace.length, X = (i: number) => x0 + (i * 270) / (n - 1);
    parts.push(`<text x="${x0}" y="20" font-weight="bold">Spartan, LeNet-300-100, 95 %: schedule</text>`);
    parts.push(`<line x1="${x0}" y1="280" x2="${x0 + 270}" y2="280" stroke="black"/>`);
    const series: [string, (t: (typeof trace)[0]) => number, string][] = [['β / β_max', (t) => t.beta / betaMax, '#2ca02c'], ['density', (t) => t.density, '#1f77b4'], ['flips (norm.)', (t) => t.flips, '#d62728']];
    const maxFlips = Math.max(1, ...trace.map((t) => t.flips));
    series.forEach(([name, f, c], k) => {
      const pts = trace.map((t, i) => `${X(i).toFixed(1)},${(280 - 240 * (name.startsWith('flips') ? f(t) / maxFlips : f(t))).toFixed(1)}`).join(' ');
      parts.push(`<polyline points="${pts}" fill="none" stroke="${c}" stroke-width="1.5"/><text x="${x0 + k * 90}" y="318" fill="${c}">${name}</text>`);
    });
    parts.push(`<text x="${x0 + 200}" y="295">steps</text>`);
  }
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}
