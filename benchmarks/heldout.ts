// Held-out accuracy for choosing hyperparameters without the test set: LeNet-300-100 trained on
// the first 50,000 MNIST training images and scored on the last 10,000 (shared by the sweeps).
import { loadMnist, range } from '../lib/data/dataset';
import { lenet300100 } from '../lib/models/lenet';
import { Trainer } from '../lib/train/trainer';
import type { Method, SparsifierOptions } from '../lib/sparsity/sparsifier';

const all = loadMnist('train');
const fit = range(all, 0, 50000), validation = range(all, 50000, 60000);

export type SpartanSettings = Pick<SparsifierOptions, 'betaMax' | 'schedule'>;

export async function validationAccuracy(method: Method, sparsity: number, seed: number, epochs: number, settings: SpartanSettings = {}): Promise<number> {
  const t = await Trainer.create({
    forward: lenet300100(seed), logits: 'logits', epochs, batchSize: 128, trainCount: fit.count, seed,
    sparsity: { method, density: 1 - sparsity, ...settings },
    optimizer: { kind: 'sgd', lr: 0.1, momentum: 0.9, nesterov: true, weightDecay: 1e-4 },
  });
  for (let e = 0; e < epochs; e++) await t.trainEpoch(fit, e);
  return t.accuracy(validation);
}
