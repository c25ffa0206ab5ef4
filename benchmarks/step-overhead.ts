// The issue's step-overhead figure: a whole training step (onnxruntime forward and
// backward, the sparsifier, the optimizer) per method, against the dense step, on MNIST
// batches of 128, in the middle of the pruning phase where every method does all its
// work. `node --import tsx benchmarks/step-overhead.ts [--model lenet-300-100|lenet-5]
// [--steps 300] [--rounds 3] [--batch 128] [--ort-spin off|on]` (off, the Trainer's default:
// onnxruntime's threads sleep after each run instead of spinning, leaving the cores to the
// sparsifier's kernels). --batch shows how the per-step sparsity work amortises over larger
// batches; the issue's figure is at 128, the batch the accuracy runs train with.
// Writes benchmarks/results/step-overhead-<model>[-batch<N>][-ortspin]-<host>-<date>.json.
import * as os from 'node:os';
import { head, loadMnist } from '../lib/data/dataset';
import type { Trainer } from '../lib/train/trainer';
import type { Method } from '../lib/sparsity/sparsifier';
import { backend } from '../lib/index';
import { numberArg, option, writeResult } from './cli';
import { median, recipeBatchSize, recipeFor } from './recipe';
import { trainerAtMidPruning } from './midPruning';

const recipe = recipeFor(option('model') ?? 'lenet-300-100'), modelName = recipe.name;
const requestedSteps = numberArg('steps', 300), rounds = numberArg('rounds', 3);
const ortSpin = option('ort-spin') ?? 'off';
if (ortSpin !== 'on' && ortSpin !== 'off') throw new Error(`--ort-spin must be on or off (got ${ortSpin})`);
const sessionOptions = ortSpin === 'on' ? { extra: { session: { intra_op: { allow_spinning: '1' } } } } : {};
const methods: Method[] = ['dense', 'imp', 'topkast', 'spartan'];
const batchSize = numberArg('batch', recipeBatchSize);
if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw new Error(`--batch must be a positive integer (got ${batchSize})`);
const train = loadMnist('train');
const steps = Math.min(requestedSteps, Math.floor(train.count / batchSize)); // whole batches from one pass over the data

(async () => {
  const trainers = new Map<Method, Trainer>();
  for (const m of methods) trainers.set(m, await trainerAtMidPruning(recipe, m, train, batchSize, sessionOptions));
  const perStep: Record<string, number[]> = Object.fromEntries(methods.map((m) => [m, []]));
  const slice = head(train, steps * batchSize);
  for (let r = 0; r < rounds; r++) {
    for (const m of methods) {  // interleaved, so drift in the machine hits every method alike
      const t0 = performance.now();
      await trainers.get(m)!.trainEpoch(slice, 100 + r);
      perStep[m].push((performance.now() - t0) / steps);
    }
  }
  const dense = median(perStep.dense);
  const rows = methods.map((m) => {
    const ms = median(perStep[m]);
    return { method: m, msPerStep: ms, overheadPct: (100 * (ms - dense)) / dense, phase: trainers.get(m)!.sparsifier.stats().phase, rounds: perStep[m] };
  });
  console.log(`${modelName}, batch ${batchSize}, ${steps} steps x ${rounds} rounds mid-pruning, onnxruntime spinning ${ortSpin} (${os.cpus()[0]?.model}, ${os.cpus().length} cores, ${backend().threads} kernel threads)`);
  for (const r of rows) console.log(`${r.method.padEnd(8)} ${r.msPerStep.toFixed(3).padStart(8)} ms/step  ${r.method === 'dense' ? '' : `${r.overheadPct >= 0 ? '+' : ''}${r.overheadPct.toFixed(1)} %`}`);
  const date = new Date().toISOString();
  const result = {
    date, model: modelName, batchSize, betaMax: recipe.betaMax, lr: recipe.lr, steps, rounds, density: 0.05, ortSpinning: ortSpin,
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, threads: backend().threads, simd: backend().simd, node: process.version },
    notes: 'msPerStep: median over rounds of the wall time of Trainer.trainEpoch over `steps` MNIST batches of batchSize (onnxruntime CPU forward+backward, sparsifier, SGD), divided by steps; overheadPct against dense. Trainers are advanced to 40 % of a 20-epoch run (mid-pruning) first.',
    rows,
  };
  writeResult(`step-overhead-${modelName}${batchSize !== recipeBatchSize ? `-batch${batchSize}` : ''}${ortSpin === 'on' ? '-ortspin' : ''}`, date, result);
})();
