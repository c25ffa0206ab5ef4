// Held-out accuracy for choosing hyperparameters without the test set: a model trained on the
// first 50,000 MNIST training images and scored on the last 10,000 (shared by the sweeps).
// The recipe of benchmarks/results.ts (benchmarks/recipe.ts).
import { loadMnist, range } from '../lib/data/dataset';
import { Trainer, type TrainerOptions } from '../lib/train/trainer';
import type { Method, SparsifierOptions } from '../lib/sparsity/sparsifier';
import { recipeEpochs, recipeBatchSize, recipes, sgd, type RecipeModel } from './recipe';

const all = loadMnist('train');
const fit = range(all, 0, 50000), validation = range(all, 50000, 60000);
/** Images the held-out runs train on (at most). */
export const fitCount = fit.count;

/**
 * Sparsifier options under test (beta_max defaults to the recipe's), the Trainer's weightDecayOn,
 * and trainCount: train on the first trainCount of the 50,000 (a shorter run), scored on the same 10,000.
 */
export type SparsifierSettings = Omit<SparsifierOptions, 'params' | 'method' | 'density' | 'sparsity' | 'totalSteps'> & Partial<Pick<TrainerOptions, 'weightDecayOn' | 'trainCount'>>;

export async function validationAccuracy(method: Method, sparsity: number, seed: number, epochs = recipeEpochs, settings: SparsifierSettings = {}, model: RecipeModel = 'lenet-300-100'): Promise<number> {
  const { build, lr } = recipes[model];
  const { weightDecayOn, trainCount, ...sparsifierSettings } = settings;
  if (trainCount !== undefined && !(Number.isSafeInteger(trainCount) && trainCount >= 1 && trainCount <= fit.count))
    throw new RangeError(`trainCount must be an integer in [1, ${fit.count}] (got ${trainCount})`);
  const data = trainCount === undefined ? fit : range(fit, 0, trainCount);
  const t = await Trainer.create({
    forward: build(seed), logits: 'logits', epochs, batchSize: recipeBatchSize, trainCount: data.count, seed, weightDecayOn,
    sparsity: { method, density: 1 - sparsity, betaMax: recipes[model].betaMax, ...sparsifierSettings },
    optimizer: sgd(lr),
  });
  for (let e = 0; e < epochs; e++) await t.trainEpoch(data, e);
  return t.accuracy(validation);
}
