// Where a training step's time goes, per method: the step-overhead benchmark's trainers (40 %
// into the 20-epoch recipe), each piece of the step timed in place. The Trainer's calls are
// wrapped from outside: the sparsifier's weights(), backward() and step(), the optimizer's
// step(), onnxruntime's run (GraphRunner.prototype.run: the forward and backward graph, with
// the promise's hand-off), and every native kernel the sparsifier calls (the addon's
// functions, attributed to the method whose step is running). Timing adds a little to every
// piece; the whole step's median is step-overhead.ts's figure, taken the same way.
// `node --import tsx benchmarks/step-breakdown.ts [--model lenet-300-100|lenet-5]
// [--steps 300] [--rounds 5] [--batch 128]`. Writes benchmarks/results/step-breakdown-<model>-<host>-<date>.json.
import * as os from 'node:os';
import { head, loadMnist } from '../lib/data/dataset';
import type { Trainer } from '../lib/train/trainer';
import type { Method } from '../lib/sparsity/sparsifier';
import { GraphRunner } from '../lib/graph/runner';
import { native } from '../lib/native';
import { backend } from '../lib/index';
import { numberArg, option, writeResult } from './cli';
import { median, recipeBatchSize, recipeFor } from './recipe';
import { trainerAtMidPruning } from './midPruning';

const recipe = recipeFor(option('model') ?? 'lenet-300-100');
const rounds = numberArg('rounds', 5), batchSize = numberArg('batch', recipeBatchSize);
const methods: Method[] = ['dense', 'imp', 'topkast', 'spartan'];
const train = loadMnist('train');
const steps = Math.min(numberArg('steps', 300), Math.floor(train.count / batchSize));

type Times = Record<string, number>; // summed ms by piece
let current: Times = {}; // the running method's

/** Replaces obj[name] with a version that adds its wall time (to its promise's end) to current[label]. */
function timed(obj: Record<string, unknown>, name: string, label: string): void {
  const f = obj[name] as (...a: unknown[]) => unknown;
  obj[name] = function (this: unknown, ...a: unknown[]) {
    const t0 = performance.now(), at = current;
    const add = () => (at[label] = (at[label] ?? 0) + performance.now() - t0);
    const r = f.apply(this, a);
    if (r instanceof Promise) return r.finally(add);
    add();
    return r;
  };
}

(async () => {
  const trainers = new Map<Method, Trainer>();
  for (const m of methods) trainers.set(m, await trainerAtMidPruning(recipe, m, train, batchSize));
  // wrapped only now: advancing the trainers is not measured
  timed(GraphRunner.prototype as unknown as Record<string, unknown>, 'run', 'onnxruntime run');
  for (const k of Object.keys(native)) if (typeof (native as unknown as Record<string, unknown>)[k] === 'function') timed(native as unknown as Record<string, unknown>, k, `native ${k}`);
  for (const [, t] of trainers) {
    for (const f of ['weights', 'backward', 'step']) timed(t.sparsifier as unknown as Record<string, unknown>, f, `sparsifier.${f}()`);
    timed(t.optimizer as unknown as Record<string, unknown>, 'step', 'optimizer.step()');
  }
  const times = new Map<Method, Times>(methods.map((m) => [m, {}]));
  const perStep: Record<string, number[]> = Object.fromEntries(methods.map((m) => [m, []]));
  const slice = head(train, steps * batchSize);
  for (let r = 0; r < rounds; r++)
    for (const m of methods) { // interleaved, as in step-overhead.ts
      current = times.get(m)!;
      const t0 = performance.now();
      await trainers.get(m)!.trainEpoch(slice, 100 + r);
      perStep[m].push((performance.now() - t0) / steps);
    }
  const rows = methods.map((m) => ({
    method: m,
    msPerStep: median(perStep[m]),
    // mean ms per step of each piece; the native kernels run inside the sparsifier's and optimizer's calls
    pieces: Object.fromEntries(Object.entries(times.get(m)!).sort(([a], [b]) => a.localeCompare(b)).map(([k, v]) => [k, v / (steps * rounds)])),
  }));
  const dense = rows[0].msPerStep;
  console.log(`${recipe.name}, batch ${batchSize}, ${steps} steps x ${rounds} rounds at 40 % of the run (${os.cpus()[0]?.model}, ${os.cpus().length} cores)`);
  for (const r of rows) {
    console.log(`${r.method.padEnd(8)} ${r.msPerStep.toFixed(3)} ms/step${r.method === 'dense' ? '' : ` (+${((100 * (r.msPerStep - dense)) / dense).toFixed(1)} %)`}`);
    for (const [k, v] of Object.entries(r.pieces)) if (v >= 0.005) console.log(`    ${k.padEnd(34)} ${v.toFixed(3)}`);
  }
  const date = new Date().toISOString();
  writeResult(`step-breakdown-${recipe.name}${batchSize !== recipeBatchSize ? `-batch${batchSize}` : ''}`, date, {
    date, model: recipe.name, batchSize, betaMax: recipe.betaMax, steps, rounds, density: 0.05,
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, threads: backend().threads, simd: backend().simd, node: process.version },
    notes: 'msPerStep: median over rounds of Trainer.trainEpoch wall time / steps (with the timing wrappers in place). pieces: mean ms per step of each wrapped call; native kernels run inside the sparsifier and optimizer calls, so they are not added to them.',
    rows,
  });
})();
