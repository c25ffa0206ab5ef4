// Spartan's one hyperparameter, beta_max, chosen on held-out data: LeNet-300-100 trained on
// the first 50,000 MNIST training images and scored on the last 10,000 (never the test
// set), 20 epochs, next to Top-KAST on the same split.
// `node --import tsx benchmarks/beta-sweep.ts [--betas 100,300,1000,3000] [--sparsities 0.95,0.98] [--seed 1]`
// Writes benchmarks/results/beta-sweep-<host>-<date>.json and prints a table.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { Method } from '../lib/sparsity/sparsifier';
import { numberOption, option } from './cli';
import { validationAccuracy as heldOut } from './heldout';

const betas = (option('betas') ?? '100,300,1000,3000').split(',').map(Number);
const sparsities = (option('sparsities') ?? '0.95,0.98').split(',').map(Number);
const seed = numberOption('seed', 1);
const epochs = 20;

const validationAccuracy = (method: Method, sparsity: number, betaMax: number) => heldOut(method, sparsity, seed, epochs, { betaMax });

(async () => {
  const t0 = performance.now();
  const runs: { method: Method; sparsity: number; betaMax: number | null; validationAccuracy: number }[] = [];
  for (const sparsity of sparsities) {
    const tk = await validationAccuracy('topkast', sparsity, 1);
    runs.push({ method: 'topkast', sparsity, betaMax: null, validationAccuracy: tk });
    console.error(`topkast ${sparsity}: ${(tk * 100).toFixed(2)} %`);
    for (const b of betas) {
      const acc = await validationAccuracy('spartan', sparsity, b);
      runs.push({ method: 'spartan', sparsity, betaMax: b, validationAccuracy: acc });
      console.error(`spartan ${sparsity} beta_max ${b}: ${(acc * 100).toFixed(2)} %`);
    }
  }
  const date = new Date().toISOString();
  const wall = (performance.now() - t0) / 1000;
  const lines = [
    `Validation accuracy (%) of LeNet-300-100 (train on MNIST train[0:50000], score on train[50000:60000]), ${epochs} epochs, seed ${seed}; ${date.slice(0, 10)}, ${os.cpus()[0]?.model} (${os.cpus().length} cores), ${(wall / 60).toFixed(1)} min.`,
    '',
    '| sparsity | Top-KAST | ' + betas.map((b) => `Spartan β_max ${b}`).join(' | ') + ' |',
    '|---|---|' + betas.map(() => '---').join('|') + '|',
    ...sparsities.map((s) => {
      const get = (m: Method, b: number | null) => runs.find((r) => r.method === m && r.sparsity === s && r.betaMax === b)!.validationAccuracy * 100;
      return `| ${s * 100} % | ${get('topkast', null).toFixed(2)} | ${betas.map((b) => get('spartan', b).toFixed(2)).join(' | ')} |`;
    }),
  ];
  console.log(lines.join('\n'));
  const file = path.join(__dirname, 'results', `beta-sweep-${os.hostname().replace(/[^\w.-]/g, '_')}-${date.slice(0, 10)}.json`);
  fs.writeFileSync(file, JSON.stringify({ date, epochs, seed, machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length }, wallSeconds: wall, runs }, null, 2) + '\n');
})();
