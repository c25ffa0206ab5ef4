// Held-out accuracy (benchmarks/heldout.ts: train on MNIST train[0:50000], score on
// train[50000:60000], never the test set) of any methods with any Sparsifier options, several
// seeds: the questions the beta and schedule sweeps do not ask (a budget allocation, the exact
// gradient instead of straight-through, ...), answered by a script rather than by hand.
// `node --import tsx benchmarks/variants.ts [--model lenet-5] [--sparsity 0.95] [--seeds 1,2,3]
//   [--epochs 20] [--train-count N] --runs 'topkast {"budget":"erk"}; spartan {"budget":"erk"}; spartan {"straightThrough":false}'`
// Each run is a method, then optional Sparsifier options as JSON (beta_max defaults to the
// recipe's). --train-count trains every run on the first N of the 50,000 images (short runs;
// the runs' options may not set trainCount themselves).
// Writes benchmarks/results/variants-<model>-<sparsity>[-n<N>]-<host>-<date>.json and prints a
// table (mean ± std).
import * as os from 'node:os';
import type { Method } from '../lib/sparsity/sparsifier';
import { listOption, numberArg, option, writeResult } from './cli';
import { fitCount, validationAccuracy, type SparsifierSettings } from './heldout';
import { meanStd, recipeEpochs, recipeFor } from './recipe';

const recipe = recipeFor(option('model') ?? 'lenet-300-100'), model = recipe.name;
const sparsity = numberArg('sparsity', 0.95), epochs = numberArg('epochs', recipeEpochs);
const seeds = listOption('seeds', '1,2,3').map(Number);
// checked against the split by validationAccuracy, before the first run trains
const trainCount = option('train-count') === undefined ? undefined : numberArg('train-count', fitCount);
const variants = (option('runs') ?? '').split(';').map((s) => s.trim()).filter((s) => s !== '').map((spec) => {
  const space = spec.indexOf(' ');
  const method = (space < 0 ? spec : spec.slice(0, space)) as Method;
  if (!['dense', 'imp', 'topkast', 'spartan'].includes(method)) throw new Error(`--runs: unknown method in "${spec}"`);
  const given = (space < 0 ? {} : JSON.parse(spec.slice(space + 1))) as SparsifierSettings;
  if (given.trainCount !== undefined) throw new Error(`--runs: "${spec}" sets trainCount; use --train-count, which the table and the file name record`);
  const settings: SparsifierSettings = { ...given, ...(trainCount === undefined ? {} : { trainCount }) };
  return { name: spec, method, settings };
});
if (variants.length === 0) throw new Error('--runs needs at least one "<method> [<options json>]"');

(async () => {
  const t0 = performance.now();
  const runs: { variant: string; method: Method; settings: SparsifierSettings; seed: number; validationAccuracy: number; seconds: number }[] = [];
  for (const seed of seeds)
    for (const v of variants) {
      const start = performance.now();
      const acc = await validationAccuracy(v.method, sparsity, seed, epochs, v.settings, model);
      runs.push({ variant: v.name, method: v.method, settings: v.settings, seed, validationAccuracy: acc, seconds: (performance.now() - start) / 1000 });
      console.error(`${model} ${sparsity} seed ${seed} ${v.name}: ${(acc * 100).toFixed(2)} %`);
    }
  const date = new Date().toISOString();
  const wall = (performance.now() - t0) / 1000;
  console.log([
    `Validation accuracy (%) of ${recipe.label} at ${sparsity * 100} % sparsity (train[0:${trainCount ?? fitCount}] -> train[50000:60000]), ${epochs} epochs, lr ${recipe.lr}, ` +
      `seeds ${seeds.join(',')}; ${date.slice(0, 10)}, ${os.cpus()[0]?.model} (${os.cpus().length} cores), ${(wall / 60).toFixed(1)} min.`,
    '',
    '| run | accuracy |',
    '|---|---|',
    ...variants.map((v) => `| ${v.name} | ${meanStd(runs.filter((r) => r.variant === v.name).map((r) => r.validationAccuracy))} |`),
  ].join('\n'));
  writeResult(`variants-${model}-${Math.round(sparsity * 100)}${trainCount === undefined ? '' : `-n${trainCount}`}`, date,
    { date, model, sparsity, epochs, trainCount: trainCount ?? fitCount, lr: recipe.lr, betaMax: recipe.betaMax, seeds, machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length }, wallSeconds: wall, runs });
})();
