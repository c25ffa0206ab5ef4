// The training recipe of the accuracy table (benchmarks/results.ts), shared by every benchmark
// that trains a LeNet on MNIST: the held-out sweeps, the step-overhead benchmark and the table
// itself, so a choice made here (a learning rate, Spartan's beta_max) reaches all of them.
import { lenet300100, lenet5 } from '../lib/models/lenet';
import type { TrainerOptions } from '../lib/train/trainer';

export const recipes = {
  'lenet-300-100': { label: 'LeNet-300-100', build: lenet300100, lr: 0.1, betaMax: 100 },
  // LeNet-5 at lr 0.1 (Nesterov momentum 0.9) collapsed to a dead network in 8 of 36 sparse
  // runs, with every method (accuracy-vm-2026-11-24-20ep.json); at 0.05 it trains for all.
  'lenet-5': { label: 'LeNet-5', build: lenet5, lr: 0.05, betaMax: 100 },
} as const;
// Spartan's beta_max was chosen on held-out data (benchmarks/beta-sweep.ts, never the test
// set): beta-sweep-<model>-*-2026-11-25.json.

export type RecipeModel = keyof typeof recipes;
export const recipeModels = Object.keys(recipes) as RecipeModel[];

/** The model of a CLI name (`lenet-300-100`) or a table label (`LeNet-300-100`). */
export function recipeFor(name: string): (typeof recipes)[RecipeModel] & { name: RecipeModel } {
  const key = recipeModels.find((k) => k === name || recipes[k].label === name);
  if (!key) throw new Error(`unknown model ${name} (use ${recipeModels.join(', ')})`);
  return { ...recipes[key], name: key };
}

export const recipeEpochs = 20, recipeBatchSize = 128;

/** Nesterov SGD, momentum 0.9, weight decay 1e-4 (the Trainer adds the cosine decay). */
export function sgd(lr: number): TrainerOptions['optimizer'] {
  return { kind: 'sgd', lr, momentum: 0.9, nesterov: true, weightDecay: 1e-4 };
}

/** Mean and sample standard deviation. */
export function meanAndStd(xs: number[]): { mean: number; std: number } {
  const mean = xs.reduce((a, b) => a + b, 0) / xs.length;
  const std = Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / Math.max(1, xs.length - 1));
  return { mean, std };
}

/** Accuracies (fractions) as "mean ± sample std" in percent, two decimals. */
export function meanStd(xs: number[]): string {
  const { mean, std } = meanAndStd(xs);
  return `${(100 * mean).toFixed(2)} ± ${(100 * std).toFixed(2)}`;
}
