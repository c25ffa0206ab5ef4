// The Trainer's options, checked before anything is built: a wrong type or value is one
// coded error naming the option, rather than a TypeError from deep inside, a silently
// different optimizer ('SGD' read as AdamW) or a NaN loss.
import { rangeError, typeError } from '../errors';
import type { TrainerOptions } from './trainer';
import { booleanOption, nameList, positiveInt } from '../options';

const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;

const positiveInteger = (x: unknown, name: string) => positiveInt(x, name, 'ERR_SPARTAN_OPTION');

export function checkTrainerOptions(opts: TrainerOptions): void {
  if (!isObject(opts)) throw typeError('ERR_SPARTAN_TYPE', 'Trainer.create takes an options object');
  if (!isObject(opts.forward) || !isObject((opts.forward as unknown as Record<string, unknown>).graph))
    throw typeError('ERR_SPARTAN_TYPE', 'forward must be a Model (decodeModel(bytes), or a built-in model)');
  if (typeof opts.logits !== 'string') throw typeError('ERR_SPARTAN_TYPE', `logits must name the model's output the loss reads (got ${typeof opts.logits})`);
  positiveInteger(opts.epochs, 'epochs');
  positiveInteger(opts.batchSize, 'batchSize');
  positiveInteger(opts.trainCount, 'trainCount');
  if (opts.seed !== undefined && !Number.isInteger(opts.seed)) // any integer: the seeded draws take negative and large ones
    throw rangeError('ERR_SPARTAN_OPTION', `seed must be an integer (got ${String(opts.seed)})`);
  if (!isObject(opts.sparsity)) throw typeError('ERR_SPARTAN_TYPE', "sparsity must be the Sparsifier's options ({ method, density, ... })");
  if (!isObject(opts.optimizer)) throw typeError('ERR_SPARTAN_TYPE', "optimizer must be { kind: 'sgd' | 'adamw', lr, ... }");
  if (opts.optimizer.kind !== 'sgd' && opts.optimizer.kind !== 'adamw')
    throw rangeError('ERR_SPARTAN_OPTION', `optimizer.kind must be 'sgd' or 'adamw' (got ${JSON.stringify(opts.optimizer.kind)})`);
  nameList(opts.optimizer.noDecay, 'optimizer.noDecay'); // the Trainer adds names to it before the optimizer sees it
  booleanOption(opts.cosine, 'cosine', true);
}
