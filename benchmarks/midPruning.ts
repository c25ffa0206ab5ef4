// A trainer of the accuracy runs' 20-epoch recipe, advanced past the dense warm-up (20 % of
// the steps) to 40 % of the run, the middle of the pruning phase, where every method does all
// its work each step. The step benchmarks (step-overhead.ts, step-breakdown.ts) time from there.
import { head, type ImageDataset } from '../lib/data/dataset';
import { Trainer, type TrainerOptions } from '../lib/train/trainer';
import type { Method } from '../lib/sparsity/sparsifier';
import { recipeEpochs, sgd, type recipeFor } from './recipe';

export async function trainerAtMidPruning(recipe: ReturnType<typeof recipeFor>, method: Method, train: ImageDataset, batchSize: number, sessionOptions: TrainerOptions['sessionOptions'] = {}): Promise<Trainer> {
  const epochs = recipeEpochs, stepsPerEpoch = Math.ceil(train.count / batchSize);
  const t = await Trainer.create({
    forward: recipe.build(1), logits: 'logits', epochs, batchSize, trainCount: train.count, seed: 1,
    sparsity: { method, density: 0.05, betaMax: recipe.betaMax }, // the accuracy runs' recipe
    optimizer: sgd(recipe.lr),
    sessionOptions,
  });
  const target = Math.round(epochs * stepsPerEpoch * 0.4);
  for (let e = 0; t.sparsifier.stepCount < target; e++)
    await t.trainEpoch(head(train, Math.min(train.count, (target - t.sparsifier.stepCount) * batchSize)), e);
  return t;
}
