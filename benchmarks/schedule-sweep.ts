// Spartan's schedule curves chosen on held-out data (benchmarks/heldout.ts: never the test set),
// several seeds, next to Top-KAST on the same split and seeds. The spec's reference code anneals
// density and beta linearly, or both with (1 - cos(pi r)) / 2 ('cosine'); 'exp-beta' keeps beta
// low for longer (beta0 (beta_max / beta0)^r: more exploration before the pattern settles).
// `node --import tsx benchmarks/schedule-sweep.ts [--variants linear,cosine,exp-beta]
//   [--sparsities 0.95,0.98] [--seeds 1,2,3] [--beta-max 300] [--epochs 20]`
// Writes benchmarks/results/schedule-sweep-<host>-<date>.json and prints a table (mean ± std).
import * as os from 'node:os';
import type { SparsifierOptions } from '../lib/sparsity/sparsifier';
import { listOption, numberArg, option, writeResult } from './cli';
import { validationAccuracy } from './heldout';
import { meanStd, recipeEpochs, recipeFor } from './recipe';

const schedules: Record<string, NonNullable<SparsifierOptions['schedule']>> = {
  linear: { density: 'linear', beta: 'linear' },
  cosine: { density: 'cosine', beta: 'cosine' },
  'exp-beta': { density: 'linear', beta: 'exponential' },
};
const variants = listOption('variants', 'linear,cosine,exp-beta');
for (const v of variants) if (!schedules[v]) throw new Error(`unknown variant ${v} (use ${Object.keys(schedules).join(', ')})`);
const sparsities = listOption('sparsities', '0.95,0.98').map(Number);
const seeds = listOption('seeds', '1,2,3').map(Number);
const recipe = recipeFor(option('model') ?? 'lenet-300-100'), model = recipe.name;
const betaMax = numberArg('beta-max', recipe.betaMax), epochs = numberArg('epochs', recipeEpochs);

(async () => {
  const t0 = performance.now();
  const runs: { method: string; variant: string | null; sparsity: number; seed: number; validationAccuracy: number }[] = [];
  for (const sparsity of sparsities)
    for (const seed of seeds) {
      const tk = await validationAccuracy('topkast', sparsity, seed, epochs, {}, model);
      runs.push({ method: 'topkast', variant: null, sparsity, seed, validationAccuracy: tk });
      console.error(`topkast ${sparsity} seed ${seed}: ${(100 * tk).toFixed(2)} %`);
      for (const v of variants) {
        const acc = await validationAccuracy('spartan', sparsity, seed, epochs, { betaMax, schedule: schedules[v] }, model);
        runs.push({ method: 'spartan', variant: v, sparsity, seed, validationAccuracy: acc });
        console.error(`spartan ${v} ${sparsity} seed ${seed}: ${(100 * acc).toFixed(2)} %`);
      }
    }
  const date = new Date().toISOString();
  const wall = (performance.now() - t0) / 1000;
  const cell = (s: number, variant: string | null) => meanStd(runs.filter((r) => r.sparsity === s && r.variant === variant).map((r) => r.validationAccuracy));
  console.log([
    `Validation accuracy (%) of ${recipe.label} (train[0:50000] -> train[50000:60000]), ${epochs} epochs, seeds ${seeds.join(',')}, Spartan beta_max ${betaMax}; ${date.slice(0, 10)}, ${os.cpus()[0]?.model} (${os.cpus().length} cores), ${(wall / 60).toFixed(1)} min.`,
    '',
    '| sparsity | Top-KAST | ' + variants.map((v) => `Spartan ${v}`).join(' | ') + ' |',
    '|---|---|' + variants.map(() => '---').join('|') + '|',
    ...sparsities.map((s) => `| ${s * 100} % | ${cell(s, null)} | ${variants.map((v) => cell(s, v)).join(' | ')} |`),
  ].join('\n'));
  writeResult(`schedule-sweep-${model}`, date,
    { date, model, epochs, lr: recipe.lr, seeds, betaMax, schedules, machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length }, wallSeconds: wall, runs });
})();
