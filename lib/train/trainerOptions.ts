// The Trainer's options, checked before anything is built: a wrong type or value is one
// coded error naming the option, rather than a TypeError from deep inside, a silently
// different optimizer ('SGD' read as AdamW) or a NaN loss.
import { rangeError, typeError } from '../errors';
import type { TrainerOptions } from './trainer';
import { booleanOption, checkKnownKeys, nameList, optionKeys, positiveInt } from '../options';
import { checkSparsifierKeys } from '../sparsity/sparsifier';

const TRAINER_OPTS = optionKeys<TrainerOptions>({
  forward: true, logits: true, input: true, loss: true, sparsify: true, labelSmoothing: true, classAxis: true, epochs: true,
  batchSize: true, trainCount: true, sparsity: true, optimizer: true, weightDecayOn: true, cosine: true, seed: true,
  executionProviders: true, sessionOptions: true, batchNorm: true,
});
// the Sparsifier's, less what the Trainer gives it (params, totalSteps), with the Trainer's block
const SPARSITY_OPTS = optionKeys<TrainerOptions['sparsity']>({
  method: true, density: true, sparsity: true, budget: true, adjustDensity: true, schedule: true, beta0: true, betaMax: true,
  roundFrozen: true, straightThrough: true, imp: true, topkast: true, block: true,
});
const OPTIMIZER_OPTS = {
  sgd: optionKeys<Extract<TrainerOptions['optimizer'], { kind: 'sgd' }>>({ kind: true, lr: true, momentum: true, dampening: true, nesterov: true, weightDecay: true, clipNorm: true, noDecay: true }),
  adamw: optionKeys<Extract<TrainerOptions['optimizer'], { kind: 'adamw' }>>({ kind: true, lr: true, beta1: true, beta2: true, eps: true, weightDecay: true, clipNorm: true, noDecay: true }),
};

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);

const positiveInteger = (x: unknown, name: string) => positiveInt(x, name, 'ERR_SPARTAN_OPTION');

export function checkTrainerOptions(opts: TrainerOptions): void {
  if (!isObject(opts)) throw typeError('ERR_SPARTAN_TYPE', 'Trainer.create takes an options object');
  checkKnownKeys(opts, TRAINER_OPTS, 'Trainer options');
  if (!isObject(opts.forward) || !isObject((opts.forward as unknown as Record<string, unknown>).graph))
    throw typeError('ERR_SPARTAN_TYPE', 'forward must be a Model (decodeModel(bytes), or a built-in model)');
  if (typeof opts.logits !== 'string') throw typeError('ERR_SPARTAN_TYPE', `logits must name the model's output the loss reads (got ${typeof opts.logits})`);
  positiveInteger(opts.epochs, 'epochs');
  positiveInteger(opts.batchSize, 'batchSize');
  positiveInteger(opts.trainCount, 'trainCount');
  if (opts.seed !== undefined && !Number.isInteger(opts.seed)) // any integer: the seeded draws take negative and large ones
    throw rangeError('ERR_SPARTAN_OPTION', `seed must be an integer (got ${String(opts.seed)})`);
  if (!isObject(opts.sparsity)) throw typeError('ERR_SPARTAN_TYPE', "sparsity must be the Sparsifier's options ({ method, density, ... })");
  checkSparsifierKeys(opts.sparsity, 'sparsity', SPARSITY_OPTS);
  if (!isObject(opts.optimizer)) throw typeError('ERR_SPARTAN_TYPE', "optimizer must be { kind: 'sgd' | 'adamw', lr, ... }");
  if (opts.optimizer.kind !== 'sgd' && opts.optimizer.kind !== 'adamw')
    throw rangeError('ERR_SPARTAN_OPTION', `optimizer.kind must be 'sgd' or 'adamw' (got ${JSON.stringify(opts.optimizer.kind)})`);
  checkKnownKeys(opts.optimizer, OPTIMIZER_OPTS[opts.optimizer.kind], `optimizer (${opts.optimizer.kind})`);
  nameList(opts.optimizer.noDecay, 'optimizer.noDecay'); // the Trainer adds names to it before the optimizer sees it
  booleanOption(opts.cosine, 'cosine', true);
}
