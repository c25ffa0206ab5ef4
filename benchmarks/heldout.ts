// Held-out accuracy for choosing hyperparameters without the test set: a model trained on the
// first 50,000 MNIST training images and scored on the last 10,000 (shared by the sweeps).
// Same recipe as benchmarks/results.ts (20 epochs, batch 128, Nesterov SGD, cosine, wd 1e-4).
import { loadMnist, range } from '../lib/data/dataset';
import { lenet300100, lenet5 } from '../lib/models/lenet';
import { Trainer } from '../lib/train/trainer';
import type { Method, SparsifierOptions } from '../lib/sparsity/sparsifier';

const all = loadMnist('train');
const fit = range(all, 0, 50000), validation = range(all, 50000, 60000);

/** The models of the results table and the learning rate each trains with there. */
export const heldOutModels = {
  'lenet-300-100': { build: lenet300100, lr: 0.1 },
  'lenet-5': { build: lenet5, lr: 0.05 },
} as const;
export type HeldOutModel = keyof typeof heldOutModels;

export type SpartanSettings = Pick<SparsifierOptions, 'betaMax' | 'schedule'>;

export async function validationAccuracy(method: Method, sparsity: number, seed: number, epochs: number, settings: SpartanSettings = {}, model: HeldOutModel = 'lenet-300-100'): Promise<number> {
  const { build, lr } = heldOutModels[model];
  const t = await Trainer.create({
    forward: build(seed), logits: 'logits', epochs, batchSize: 128, trainCount: fit.count, seed,
    sparsity: { method, density: 1 - sparsity, ...settings },
    optimizer: { kind: 'sgd', lr, momentum: 0.9, nesterov: true, weightDecay: 1e-4 },
  });
  for (let e = 0; e < epochs; e++) await t.trainEpoch(fit, e);
  return t.accuracy(validation);
}

/** Accuracies (fractions) as "mean ± sample std" in percent, two decimals. */
export function meanStd(xs: number[]): string {
  const m = xs.reduce((a, b) => a + b, 0) / xs.length;
  const sd = Math.sqrt(xs.reduce((a, b) => a + (b - m) ** 2, 0) / Math.max(1, xs.length - 1));
  return `${(100 * m).toFixed(2)} ± ${(100 * sd).toFixed(2)}`;
}
