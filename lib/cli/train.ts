// spartan train --dataset mnist --model lenet-300-100|lenet-5 --method spartan --density 0.05 --epochs 20 ...
import * as fs from 'node:fs';
import { rangeError } from '../errors';
import { head, loadFashionMnist, loadMnist, type Dataset } from '../data/dataset';
import { encodeModel, type Model } from '../graph/model';
import { builtInModels, type BuiltInModel } from '../models/lenet';
import { Trainer, type EpochMetrics } from '../train/trainer';
import { unusable } from '../train/checkpoint';
import type { Method } from '../sparsity/sparsifier';
import type { BudgetMode } from '../sparsity/budgets';
import { untiedNote } from '../graph/untie';
import { constantsNote } from '../graph/params';
import { BATCH_NORM_MODES, type BatchNormMode } from '../graph/trainMode';
import { removeDeadTempFiles, writeFileAtomic } from '../util/atomic';
import { checkCheckpointDir, checkDistinct, checkOutputFile, checkpointFile } from './outputs';
import { readModelFile } from './modelFile';
import { configChanges, withDefaults, type CheckpointMeta } from './runConfig';
import { blockNotes, emptyLayerWarnings, ignoredOptionsNote, nothingMaskedNote, shortRunNote } from './runNotes';
import { number, parseCommand, refuseEmpty } from './args';
import { epochLine, progressBar } from './progress';

// The shuffle takes (seed * 1000 + epoch) modulo 2^32 (lib/data/dataset.ts batches): seeds that
// agree modulo 2^29 shuffle alike, so a larger one would silently repeat a smaller one's run.
const SEEDS = 2 ** 29;

export async function runTrain(argv: string[]): Promise<number> {
  const { values, tokens } = parseCommand('train', {
    args: argv,
    tokens: true,
    options: {
      dataset: { type: 'string', default: 'mnist' },
      'data-dir': { type: 'string' },
      model: { type: 'string', default: 'lenet-300-100' },
      logits: { type: 'string' },
      method: { type: 'string', default: 'spartan' },
      density: { type: 'string', default: '0.05' },
      epochs: { type: 'string', default: '20' },
      block: { type: 'string' },
      budget: { type: 'string', default: 'global' },
      'beta-max': { type: 'string' },
      beta0: { type: 'string' },
      seed: { type: 'string', default: '1' },
      'batch-size': { type: 'string', default: '128' },
      lr: { type: 'string' },
      'train-count': { type: 'string' },
      sparsify: { type: 'string' },
      'weight-decay': { type: 'string' },
      'decay-on': { type: 'string' },
      'batch-norm': { type: 'string' },
      json: { type: 'string' },
      export: { type: 'string' },
      checkpoint: { type: 'string' },
      resume: { type: 'boolean', default: false },
      ep: { type: 'string', default: 'cpu' },
    },
  });
  refuseEmpty(tokens);
  const method = values.method as Method;
  if (!['spartan', 'imp', 'topkast', 'dense'].includes(method)) throw rangeError('ERR_SPARTAN_OPTION', `--method must be spartan, imp, topkast or dense (got ${values.method})`);
  const loaders: Record<string, (split: 'train' | 'test', dir?: string) => Dataset> = { mnist: loadMnist, 'fashion-mnist': loadFashionMnist };
  const load = loaders[values.dataset!];
  if (!load) throw rangeError('ERR_SPARTAN_OPTION', `--dataset must be mnist or fashion-mnist (got ${values.dataset})`);
  const density = number(values.density, 'density', (x) => x > 0 && x <= 1, 'in (0, 1]');
  const epochs = number(values.epochs, 'epochs', (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
  const batchSize = number(values['batch-size'], 'batch-size', (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
  const seed = number(values.seed, 'seed', Number.isSafeInteger, 'an integer');
  // taken as before (a run with such a seed still resumes), but said: its shuffle is another seed's
  const sameShuffle = ((seed % SEEDS) + SEEDS) % SEEDS;
  if (sameShuffle !== seed) console.error(`note: --seed ${seed} shuffles the data as --seed ${sameShuffle} does (the order takes seed x 1000 + epoch modulo 2^32); seeds 0 to ${SEEDS - 1} each shuffle differently`);
  const block = values.block !== undefined ? number(values.block, 'block', (x) => Number.isInteger(x) && x >= 1, 'a positive integer') : undefined;
  const budget = values.budget as BudgetMode;
  if (!['global', 'erk', 'uniform'].includes(budget)) throw rangeError('ERR_SPARTAN_OPTION', `--budget must be global, erk or uniform (got ${values.budget})`);
  if (values.resume && !values.checkpoint) throw rangeError('ERR_SPARTAN_OPTION', '--resume needs --checkpoint <dir>');
  // where the results go is checked now, not after the last epoch
  if (values.json) checkOutputFile('json', values.json);
  if (values.export) checkOutputFile('export', values.export);
  if (values.checkpoint) checkCheckpointDir(values.checkpoint);
  const builtIn = Object.hasOwn(builtInModels, values.model!) ? builtInModels[values.model as BuiltInModel] : undefined;
  // none overwrites another, the model file or the checkpoint (after hours of training)
  checkDistinct([['json', values.json], ['export', values.export]], builtIn || !fs.existsSync(values.model!) ? [] : [['the --model file', values.model!]], values.checkpoint);

  // a built-in model trains with the settings its accuracy runs use unless told otherwise
  const lr = number(values.lr ?? String(builtIn?.lr ?? 0.1), 'lr', (x) => x > 0, '> 0');
  const betaMax = number(values['beta-max'] ?? String(builtIn?.betaMax ?? 100), 'beta-max', (x) => x > 0, '> 0');
  // these four default in withDefaults (lib/cli/runConfig.ts), which the Trainer then gets
  const beta0 = values.beta0 === undefined ? undefined : number(values.beta0, 'beta0', (x) => x > 0 && Number.isFinite(x), 'finite and > 0');
  const weightDecay = values['weight-decay'] === undefined ? undefined : number(values['weight-decay'], 'weight-decay', (x) => x >= 0, '>= 0');
  const decayOn = values['decay-on'] as 'all' | 'weights' | undefined;
  if (decayOn !== undefined && decayOn !== 'all' && decayOn !== 'weights') throw rangeError('ERR_SPARTAN_OPTION', `--decay-on must be all or weights (got ${decayOn})`);
  const batchNorm = values['batch-norm'] as BatchNormMode | undefined;
  if (batchNorm !== undefined && !BATCH_NORM_MODES.includes(batchNorm)) throw rangeError('ERR_SPARTAN_OPTION', `--batch-norm must be ${BATCH_NORM_MODES.join(', ')} (got ${batchNorm})`);
  let forward: Model, logits: string;
  if (builtIn) {
    forward = builtIn.build(1);
    logits = values.logits ?? 'logits';
  } else {
    if (!fs.existsSync(values.model!))
      throw rangeError('ERR_SPARTAN_OPTION', `--model ${values.model} is neither a built-in model (${Object.keys(builtInModels).join(', ')}) nor a file`);
    if (!values.logits) throw rangeError('ERR_SPARTAN_OPTION', '--model <file.onnx> needs --logits <output name>');
    forward = readModelFile(values.model!);
    logits = values.logits;
  }
  const train = load('train', values['data-dir']);
  const trainCount = values['train-count'] !== undefined ? number(values['train-count'], 'train-count', (x) => Number.isInteger(x) && x >= 1, 'a positive integer') : train.count;
  if (trainCount > train.count) console.error(`note: --train-count ${trainCount} is more than the ${train.count} training images: training on all of them`);
  const trainSet = head(train, trainCount);
  // a batch past the data holds all of it (the buffers a batch of --batch-size takes may not fit);
  // the config records the option as given, as checkpoints always have
  if (batchSize > trainSet.count) console.error(`note: --batch-size ${batchSize} is more than the ${trainSet.count} training images: each step takes all of them`);
  const test = load('test', values['data-dir']);
  // absent from the config unless given, so checkpoints written before the option still resume
  const sparsify = values.sparsify === undefined ? undefined : values.sparsify.split(',').map((n) => n.trim()).filter(Boolean);
  // with the defaults the run takes (older checkpoints lack some; --resume compares them as those)
  const config = withDefaults({ dataset: values.dataset, model: values.model, method, density, budget, epochs, batchSize, block, betaMax, seed, lr, trainCount: trainSet.count, sparsify, weightDecay, decayOn, batchNorm, beta0 });
  if (values.ep !== 'cpu' && values.ep !== 'cuda') throw rangeError('ERR_SPARTAN_OPTION', `--ep must be cpu or cuda (got ${values.ep})`);
  const trainer = await Trainer.create({
    forward, logits, epochs, batchSize: Math.min(batchSize, trainSet.count), trainCount: trainSet.count, seed, sparsify,
    executionProviders: values.ep === 'cuda' ? ['cuda', 'cpu'] : ['cpu'],
    // from the config, so what it records is what runs
    sparsity: { method, density, budget, betaMax: config.betaMax, beta0: config.beta0, block: block ? [block, block] : undefined },
    optimizer: { kind: 'sgd', lr: config.lr, momentum: 0.9, nesterov: true, weightDecay: config.weightDecay }, weightDecayOn: config.decayOn, batchNorm: config.batchNorm,
  });

  // both splits fit the model (labels, example size) before an epoch runs or a file is written
  trainer.checkDataset(trainSet, `the ${values.dataset} training set`);
  trainer.checkDataset(test, `the ${values.dataset} test set`);
  const ignored = ignoredOptionsNote(method, tokens.flatMap((t) => (t.kind === 'option' ? [t.name] : [])));
  if (ignored) console.error(`note: ${ignored}`);
  const unmasked = nothingMaskedNote(trainer.sparsifier, method, density);
  if (unmasked) console.error(`note: ${unmasked}`);
  if (method !== 'dense') for (const n of blockNotes(trainer.sparsifier, block)) console.error(`note: ${n}`);
  if (trainer.untied.length) console.error(`note: ${untiedNote(trainer.untied)}`);
  if (trainer.constants.length) console.error(`note: ${constantsNote(trainer.constants)}`);
  const ckFile = values.checkpoint ? checkpointFile(values.checkpoint) : undefined;
  const history: (EpochMetrics & { testAccuracy: number })[] = [];
  let start = 0;
  if (values.resume && ckFile && fs.existsSync(ckFile)) {
    const meta = trainer.resume(ckFile, (m) => {
      if (!Number.isSafeInteger(m.epoch) || !Array.isArray(m.history)) throw unusable(ckFile, 'fields missing');
      const changed = configChanges(m.config, config);
      if (changed) throw rangeError('ERR_SPARTAN_STATE', `${ckFile} was written with another configuration (${changed}); a run resumes only with the settings it started with (its schedules are laid out over its epochs, so more epochs cannot extend it)`);
      // the last finished epoch, counted from 0, with one history entry for each epoch up to it
      const epoch = m.epoch as number;
      if (epoch < 0 || epoch >= epochs) throw unusable(ckFile, `its epoch is ${epoch}, not a finished epoch of this run: 0 to ${epochs - 1}, counted from 0`);
      if (m.history.length !== epoch + 1) throw unusable(ckFile, `its history lists ${m.history.length} epochs, not the ${epoch + 1} it has finished`);
    }) as unknown as CheckpointMeta;
    history.push(...meta.history);
    start = meta.epoch + 1;
    console.error(`resumed from ${ckFile} after epoch ${meta.epoch + 1}`);
  } else if (values.resume) {
    console.error(`note: no checkpoint in ${values.checkpoint} yet: training from the start`);
  } else if (ckFile && fs.existsSync(ckFile)) {
    console.error(`note: ${ckFile} will be replaced after the first epoch (--resume continues it instead)`);
  }
  const short = shortRunNote(trainer.sparsifier, method, density, config.beta0);
  if (short) console.error(`note: ${short}`);
  const tty = process.stderr.isTTY;
  const batchesPerEpoch = Math.ceil(trainSet.count / batchSize);
  // temporary files of checkpoint writes killed mid-write (as large as the checkpoint) would pile up
  if (ckFile) for (const name of removeDeadTempFiles(ckFile)) console.error(`note: removed ${name}, left in ${values.checkpoint} by a run stopped while writing its checkpoint`);
  // and those of --export and --json writes (as large as the model)
  for (const [flag, file] of [['--export', values.export], ['--json', values.json]] as const)
    if (file) for (const name of removeDeadTempFiles(file)) console.error(`note: removed ${name}, left beside ${file} by a run stopped while writing its ${flag}`);
  // Ctrl-C or SIGTERM stops the run between steps, never mid-write: a handler runs only once the
  // synchronous write in progress is done (renamed; no temporary file left). It then dies of the
  // signal as it would have (exit status 130 or 143), so a calling script stops too.
  const stop = (sig: NodeJS.Signals) => {
    process.off(sig, stop);
    process.kill(process.pid, sig);
  };
  process.on('SIGINT', stop).on('SIGTERM', stop);
  for (let epoch = start; epoch < epochs; epoch++) {
    const m = await trainer.trainEpoch(trainSet, epoch, (step, loss, accuracy) => {
      if (!tty || step % 10) return;
      const st = trainer.sparsifier.stats();
      const done = (step - epoch * batchesPerEpoch) / batchesPerEpoch;
      process.stderr.write(`\r${progressBar({ epoch, epochs, done, loss, accuracy, density: st.density.global, beta: st.beta })}   `);
    }).catch((e: Error & { code?: string }) => {
      // the data were checked finite before the epoch: a NaN or Inf now comes from the training itself
      if (e.code !== 'ERR_SPARTAN_NON_FINITE') throw e;
      throw rangeError('ERR_SPARTAN_NON_FINITE', `epoch ${epoch + 1}: the training diverged (${e.message}); a lower --lr (this run's: ${lr}) may train`);
    });
    const testAccuracy = await trainer.accuracy(test);
    history.push({ ...m, testAccuracy });
    if (tty) process.stderr.write('\r'.padEnd(120) + '\r');
    // the checkpoint is durable before the epoch is reported
    if (ckFile) trainer.saveCheckpoint(ckFile, { config, epoch, history } satisfies CheckpointMeta);
    console.error(epochLine({ epoch, epochs, loss: m.loss, trainAccuracy: m.trainAccuracy, testAccuracy, density: m.density, beta: m.beta, seconds: m.seconds }));
  }
  const st = trainer.sparsifier.stats();
  const final = { testAccuracy: history[history.length - 1]?.testAccuracy ?? (await trainer.accuracy(test)), density: { global: st.density.global, perLayer: st.density.perLayer } };
  if (values.export) writeFileAtomic(values.export, encodeModel(trainer.exportSparse()));
  if (values.json) writeFileAtomic(values.json, JSON.stringify({ config, epochs: history, final }, null, 2) + '\n');
  for (const w of emptyLayerWarnings(trainer.sparsifier)) console.error(`warning: ${w}`);
  console.log(JSON.stringify(final));
  return 0;
}
