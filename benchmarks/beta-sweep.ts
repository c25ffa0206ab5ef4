// Spartan's one hyperparameter, beta_max, chosen on held-out data (benchmarks/heldout.ts: train
// on MNIST train[0:50000], score on train[50000:60000], never the test set), several seeds,
// next to the baselines on the same split and seeds.
// `node --import tsx benchmarks/beta-sweep.ts [--model lenet-300-100|lenet-5] [--betas 100,300]
//   [--sparsities 0.95,0.98] [--seeds 1,2,3] [--baselines topkast,imp] [--epochs 20]`
// Writes benchmarks/results/beta-sweep-<model>-<sparsities>-<host>-<date>.json and prints a table
// (mean ± std).
import * as os from 'node:os';
import type { Method } from '../lib/sparsity/sparsifier';
import { listOption, numberArg, option, writeResult } from './cli';
import { validationAccuracy } from './heldout';
import { meanStd, recipeEpochs, recipeFor } from './recipe';

const recipe = recipeFor(option('model') ?? 'lenet-300-100'), model = recipe.name;
const betas = listOption('betas', '100,300').map(Number);
const sparsities = listOption('sparsities', '0.95,0.98').map(Number);
const seeds = listOption('seeds', '1,2,3').map(Number);
const baselines = listOption('baselines', 'topkast,imp') as Method[];
const epochs = numberArg('epochs', recipeEpochs);

interface Run { method: Method; sparsity: number; seed: number; betaMax: number | null; validationAccuracy: number; seconds: number }

(async () => {
  const t0 = performance.now();
  const runs: Run[] = [];
  const run = async (method: Method, sparsity: number, seed: number, betaMax: number | null) => {
    const start = performance.now();
    const acc = await validationAccuracy(method, sparsity, seed, epochs, betaMax === null ? {} : { betaMax }, model);
    runs.push({ method, sparsity, seed, betaMax, validationAccuracy: acc, seconds: (performance.now() - start) / 1000 });
    console.error(`${model} ${method}${betaMax === null ? '' : ` beta_max ${betaMax}`} ${sparsity} seed ${seed}: ${(acc * 100).toFixed(2)} %`);
  };
  for (const sparsity of sparsities)
    for (const seed of seeds) {
      for (const m of baselines) await run(m, sparsity, seed, null);
      for (const b of betas) await run('spartan', sparsity, seed, b);
    }
  const date = new Date().toISOString();
  const wall = (performance.now() - t0) / 1000;
  const cell = (s: number, m: Method, b: number | null) => meanStd(runs.filter((r) => r.sparsity === s && r.method === m && r.betaMax === b).map((r) => r.validationAccuracy));
  console.log([
    `Validation accuracy (%) of ${model} (train[0:50000] -> train[50000:60000]), ${epochs} epochs, lr ${recipe.lr}, seeds ${seeds.join(',')}; ` +
      `${date.slice(0, 10)}, ${os.cpus()[0]?.model} (${os.cpus().length} cores), ${(wall / 60).toFixed(1)} min.`,
    '',
    '| sparsity | ' + [...baselines, ...betas.map((b) => `Spartan β_max ${b}`)].join(' | ') + ' |',
    '|---|' + [...baselines, ...betas].map(() => '---').join('|') + '|',
    ...sparsities.map((s) => `| ${s * 100} % | ${[...baselines.map((m) => cell(s, m, null)), ...betas.map((b) => cell(s, 'spartan', b))].join(' | ')} |`),
  ].join('\n'));
  writeResult(`beta-sweep-${model}-${sparsities.map((x) => Math.round(x * 100)).join('-')}`, date,
    { date, model, epochs, lr: recipe.lr, seeds, machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length }, wallSeconds: wall, runs });
})();
