// The training recipe of the accuracy table (benchmarks/results.ts), shared by every benchmark
// that trains a LeNet on MNIST: the held-out sweeps, the step-overhead benchmark and the table
// itself. The per-model settings are the library's (builtInModels, also the CLI's defaults), so
// a choice made there (a learning rate, Spartan's beta_max) reaches all of them.
import { builtInModels } from '../lib/models/lenet';
import type { TrainerOptions } from '../lib/train/trainer';

// per model: the builder, the learning rate and Spartan's beta_max (the CLI's defaults too);
// beta_max was chosen on held-out data (benchmarks/beta-sweep.ts, never the test set):
// beta-sweep-<model>-*-2026-11-25.json
export const recipes = builtInModels;
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

/** The median (the upper one of an even count), as the step benchmarks report. */
export function median(xs: number[]): number {
  return xs.slice().sort((a, b) => a - b)[xs.length >> 1];
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
