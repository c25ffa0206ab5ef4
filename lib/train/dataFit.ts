// Whether a dataset fits a model the Trainer trains: the examples' array type and shape
// against the model's input, the labels against its logits, the targets against its prediction.
import { rangeError, typeError } from '../errors';
import type { Dim, ValueInfo } from '../graph/model';
import { DataType } from '../graph/schema';
import { perExample, type Dataset, type InputArray, type LabelArray } from '../data/dataset';
import { firstOutOfRange, type IndexBound } from './indexBounds';
import { checkFinite } from '../ops/finite';
import { isBigInt64Array, isFloat32Array, isInt32Array, isUint16Array, isUint32Array, isUint8Array } from '../util/typedArrays';

/** What a dataset must fit: the model inputs it feeds, and the loss's classes (cross-entropy) or target shape (mse). */
export interface ModelFit {
  /** The input the dataset's `inputs` feed. */
  input: ValueInfo;
  /** The model's other data inputs: the dataset's `otherInputs` feed them, by name. */
  others: ValueInfo[];
  logits: string;
  classes?: number;
  /** The labels' shape past the batch dim: [] for logits [N, C], the positions for [N, ..., C] or [N, C, ...] (a dynamic one as its symbol). */
  positions?: Dim[];
  /** The logits' class axis (1 to rank - 1). */
  classAxis?: number;
  /** The prediction's shape past the batch dim (mse; a dynamic dim as its symbol). */
  targetShape?: Dim[];
  /** The integer inputs that index a table (token ids), by name: their values must be rows of it. */
  indexBounds: Map<string, IndexBound>;
}

/** The array a dataset holds for each ONNX input type the Trainer feeds. */
export const INPUT_ARRAYS = new Map<number, { onnx: string; name: string; is: (a: unknown) => boolean }>([
  [DataType.FLOAT, { onnx: 'float32', name: 'Float32Array', is: (a) => isFloat32Array(a) }],
  [DataType.INT64, { onnx: 'int64', name: 'BigInt64Array', is: (a) => isBigInt64Array(a) }],
  [DataType.INT32, { onnx: 'int32', name: 'Int32Array', is: (a) => isInt32Array(a) }],
  [DataType.BOOL, { onnx: 'bool', name: 'Uint8Array', is: (a) => isUint8Array(a) }],
]);

/** The value each dynamic dim's symbol took from the dataset, and the input that gave it. */
type Symbols = Map<string, { value: number; input: string }>;

/** A dim's symbol names one size across the model ('N', 'T'); '?' (and '') mark a dim nothing names, each its own. */
const named = (d: Dim): d is string => typeof d === 'string' && d !== '?' && d !== '';

/** The dims past the batch dim that each input of a batch is fed with, by input name. */
export type InputDims = Record<string, number[]>;

/**
 * The dims of one example as fed: the model input's, where a dim is dynamic (a sequence
 * length) the dataset's; with no shape in the model, the dataset's. A dynamic dim's symbol
 * takes one value across all the inputs (ids and mask [N, T] share T).
 */
function exampleDims(input: ValueInfo, shape: number[], name: string, symbols: Symbols): number[] {
  const model = input.shape?.slice(1);
  if (!model) return shape.slice();
  if (model.every((d) => typeof d === 'number')) return model as number[];
  if (shape.length !== model.length)
    throw rangeError('ERR_SPARTAN_SHAPE', `${name} has examples of shape [${shape}] but the model's input "${input.name}" takes [${input.shape}]: with a dynamic dim past the batch, the examples must have the same rank`);
  return model.map((d, i) => {
    if (typeof d === 'number') return d;
    if (!named(d)) return shape[i];
    const seen = symbols.get(d);
    if (seen && seen.value !== shape[i])
      throw rangeError('ERR_SPARTAN_SHAPE', `${name}: the model's inputs "${seen.input}" and "${input.name}" share the dim ${d}, but the dataset gives them ${seen.value} and ${shape[i]}`);
    symbols.set(d, { value: shape[i], input: input.name });
    return shape[i];
  });
}

/** How messages name a dataset's examples of one input and their shape. */
interface Where {
  shape: string;
  values: string;
  /** As the subject of "must be a ...". */
  examples: string;
}
const PRIMARY: Where = { shape: 'inputShape', values: 'inputs', examples: 'the examples' };
const other = (input: string): Where => ({ shape: `otherInputs["${input}"].shape`, values: `otherInputs["${input}"].values`, examples: `otherInputs["${input}"].values` });

/** One input's examples: the array type the model's input takes, positive dims, count of them, ids that are rows of their table. */
function checkInputValues(fit: ModelFit, input: ValueInfo, values: InputArray, shape: unknown, count: number, name: string, symbols: Symbols, where: Where): number[] {
  if (!Array.isArray(shape) || shape.some((d) => !Number.isSafeInteger(d) || d < 1))
    throw rangeError('ERR_SPARTAN_SHAPE', `${name}: ${where.shape} must be a list of positive integers (got ${JSON.stringify(shape)})`);
  const want = INPUT_ARRAYS.get(input.elemType!)!;
  if (!want.is(values))
    throw typeError('ERR_SPARTAN_TYPE', `${name}: the model's input "${input.name}" takes ${want.onnx}, so ${where.examples} must be a ${want.name} (got ${describe(values)})`);
  const perData = perExample(shape);
  if (values.length !== count * perData)
    throw rangeError('ERR_SPARTAN_SHAPE', `${name}: ${count} examples of shape [${shape}] need ${count * perData} values, but ${where.values} has ${values.length}`);
  const dims = exampleDims(input, shape, name, symbols), perModel = perExample(dims);
  if (perModel !== perData)
    throw rangeError('ERR_SPARTAN_SHAPE', `${name} has examples of shape [${shape}] (${perData} values) but the model's input "${input.name}" takes [${input.shape}] (${perModel} per example)`);
  // a NaN or infinite input would fail only at its batch, after the batches before it had trained
  if (isFloat32Array(values)) checkFinite(values, `${name}: ${where.values}`);
  const bound = fit.indexBounds.get(input.name);
  const bad = bound ? firstOutOfRange(values as BigInt64Array | Int32Array, bound.rows) : -1;
  if (bound && bad >= 0)
    throw rangeError('ERR_SPARTAN_DATASET', `${name}: ${where.values}[${bad}] (example ${Math.floor(bad / perData)}) is ${values[bad]}, but the model's input "${input.name}" indexes the ${bound.rows} rows of "${bound.table}" (Gather "${bound.gather}"), so its values must be in [0, ${bound.rows})`);
  return dims;
}

/** The dims of each of the model's other inputs, from the dataset's otherInputs: every one given, no other. */
function checkOtherInputs(fit: ModelFit, data: Dataset, name: string, symbols: Symbols): InputDims {
  const given = data.otherInputs ?? {};
  if (typeof given !== 'object' || given === null) throw typeError('ERR_SPARTAN_TYPE', `${name}: otherInputs must map model input names to { values, shape }`);
  const wanted = new Set(fit.others.map((v) => v.name));
  const unknown = Object.keys(given).filter((k) => !wanted.has(k));
  if (unknown.length)
    throw rangeError('ERR_SPARTAN_DATASET', `${name}: otherInputs has "${unknown[0]}", which is not ${unknown[0] === fit.input.name ? 'another' : 'an'} input of the model (${wanted.size ? `its other inputs: ${[...wanted].join(', ')}` : `its only input is "${fit.input.name}"`})`);
  const dims: InputDims = {};
  for (const v of fit.others) {
    const o = given[v.name];
    if (typeof o !== 'object' || o === null)
      throw rangeError('ERR_SPARTAN_DATASET', `${name} has no examples for the model's input "${v.name}": give them in otherInputs["${v.name}"] as { values, shape }`);
    dims[v.name] = checkInputValues(fit, v, o.values, o.shape, data.count, name, symbols, other(v.name));
  }
  return dims;
}

/**
 * The dataset as trainEpoch and evaluate use it: each field read once, into a plain object (a
 * getter could hand the check valid labels and the batches others), holding only the field
 * the loss reads: labels under cross-entropy, targets under mse. A field of the other loss is
 * ignored, not gathered into every batch (where one of a stray length failed mid-epoch).
 */
export function datasetSnapshot(fit: ModelFit, data: Dataset): Dataset {
  if (typeof data !== 'object' || data === null) return data; // checkDataset says what it is
  const { inputs, inputShape, count, otherInputs } = data;
  const list = (x: unknown) => (Array.isArray(x) ? Array.from(x) : x) as number[]; // holes as undefined: every() skips them
  const others = typeof otherInputs === 'object' && otherInputs !== null
    ? Object.fromEntries(Object.entries(otherInputs).map(([k, o]) => [k, typeof o === 'object' && o !== null ? { values: o.values, shape: list(o.shape) } : o]))
    : otherInputs;
  return {
    inputs, inputShape: list(inputShape), count,
    ...(fit.classes !== undefined ? { labels: data.labels } : { targets: data.targets }),
    ...(otherInputs !== undefined ? { otherInputs: others } : {}),
  };
}

/**
 * Checks that a dataset fits the model: the examples' array types and sizes are what the
 * model's inputs take (the dataset's `inputs` the Trainer's input, its `otherInputs` the
 * rest); for cross-entropy every label is a class of the logits (onnxruntime's OneHot
 * would silently train a label of C or more towards no class at all); for mse every
 * example has a finite target of the prediction's shape. Returns the dims past the batch dim
 * that a batch's inputs (by name) and labels (or targets, under mse) are fed with.
 */
export function checkDataset(fit: ModelFit, data: Dataset, name: string): { inputDims: InputDims; labelDims: number[] } {
  if (typeof data !== 'object' || data === null) throw typeError('ERR_SPARTAN_TYPE', `${name} must be a Dataset object`);
  const { count, inputShape } = data;
  if (!Number.isSafeInteger(count) || count < 1) throw rangeError('ERR_SPARTAN_DATASET', `${name}: count must be a positive integer, the number of examples (got ${count})`);
  const symbols: Symbols = new Map();
  const inputDims: InputDims = { [fit.input.name]: checkInputValues(fit, fit.input, data.inputs, inputShape, count, name, symbols, PRIMARY), ...checkOtherInputs(fit, data, name, symbols) };
  if (fit.classes === undefined) {
    const targets = checkTargetsArray(data, name);
    const dims = lossInputDims(fit.targetShape!, targets, count, symbols, `${name}: the prediction "${fit.logits}" takes a target`);
    checkTargets(data, targets, name, dims, fit.logits);
    return { inputDims, labelDims: dims };
  }
  const labels = checkLabelArray(data, name);
  const dims = lossInputDims(fit.positions ?? [], labels, count, symbols, `${name}: the logits "${fit.logits}" take a label per position`);
  checkLabels(data, labels, name, fit.classes, fit.logits, perExample(dims));
  return { inputDims, labelDims: dims };
}

/**
 * The dims past the batch dim of the loss's second input (class labels, or mse targets) as
 * fed, from the model's: a dynamic dim (a sequence length) takes the value an input gave its
 * symbol (a tagger's ids [N, T] and logits [N, T, C]), or else, one at most, follows from how
 * many values each example has.
 */
function lossInputDims(dims: Dim[], values: ArrayLike<unknown> | undefined, count: number, symbols: Symbols, what: string): number[] {
  const fed = dims.map((d) => (named(d) ? symbols.get(d)?.value ?? d : d));
  const open = fed.filter((d) => typeof d !== 'number').length;
  if (open === 0) return fed as number[];
  const known = perExample(fed.filter((d): d is number => typeof d === 'number'));
  const per = count > 0 && values ? values.length / (count * known) : NaN;
  if (open > 1 || !Number.isSafeInteger(per) || per < 1)
    throw rangeError('ERR_SPARTAN_SHAPE', `${what} [N, ${dims.join(', ')}], which ${open > 1 ? 'has more than one dynamic dim no input fixes' : `${values?.length} values for ${count} examples do not divide into`}`);
  return fed.map((d) => (typeof d === 'number' ? d : per));
}

function checkLabelArray(data: Dataset, name: string): LabelArray {
  const labels = data.labels;
  if (!labels) throw rangeError('ERR_SPARTAN_LABELS', `${name} has no labels, which the cross-entropy loss trains towards`);
  if (!isLabelArray(labels)) throw typeError('ERR_SPARTAN_TYPE', `${name}: labels must be an integer typed array (Uint8Array, Uint16Array, Uint32Array, Int32Array or BigInt64Array; got ${describe(labels)})`);
  return labels;
}

function checkLabels(data: Dataset, labels: LabelArray, name: string, C: number, logits: string, perExampleLabels: number): void {
  const want = data.count * perExampleLabels;
  if (labels.length !== want)
    throw rangeError('ERR_SPARTAN_LABELS', `${name} has ${data.count} examples${perExampleLabels > 1 ? ` of ${perExampleLabels} positions` : ''}, so ${want} labels, but ${labels.length}`);
  for (let i = 0; i < want; i++) {
    const v = Number(labels[i]);
    if (!(v >= 0 && v < C))
      throw rangeError('ERR_SPARTAN_LABELS', `${name} has label ${labels[i]} (example ${Math.floor(i / perExampleLabels)}${perExampleLabels > 1 ? `, position ${i % perExampleLabels}` : ''}) but the model's logits "${logits}" have ${C} classes (labels 0-${C - 1})`);
  }
}

function checkTargetsArray(data: Dataset, name: string): Float32Array {
  const targets = data.targets;
  if (!targets) throw rangeError('ERR_SPARTAN_LABELS', `${name} has no targets, which the mse loss trains towards`);
  if (!isFloat32Array(targets)) throw typeError('ERR_SPARTAN_TYPE', `${name}: targets must be a Float32Array (got ${describe(targets)})`);
  return targets;
}

function checkTargets(data: Dataset, targets: Float32Array, name: string, shape: number[], prediction: string): void {
  const per = perExample(shape);
  if (targets.length !== data.count * per)
    throw rangeError('ERR_SPARTAN_SHAPE', `${name}: ${data.count} examples need ${data.count * per} target values (the prediction "${prediction}" is [N, ${shape.join(', ')}]), but targets has ${targets.length}`);
  const bad = targets.findIndex((v) => !Number.isFinite(v));
  if (bad >= 0) throw rangeError('ERR_SPARTAN_NON_FINITE', `${name}: target ${bad} (example ${Math.floor(bad / per)}) is ${targets[bad]}`);
}

function describe(a: unknown): string {
  return a === null ? 'null' : ArrayBuffer.isView(a) ? a.constructor.name : typeof a === 'object' ? (a as object).constructor?.name ?? 'object' : typeof a;
}

function isLabelArray(a: unknown): a is LabelArray {
  return isUint8Array(a) || isUint16Array(a) || isUint32Array(a) || isInt32Array(a) || isBigInt64Array(a);
}
