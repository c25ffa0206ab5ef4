// Trains a forward ONNX model's parameters with a sparsity method: the training
// graph (loss + gradients) runs in onnxruntime-node, the sparsifier and optimizer natively.
import { deriveTrainingGraph, logitsClasses, predictionShape, withOutput, type DeriveOptions } from '../graph/autodiff';
import { freeName, type Dim, type Model, type TensorValue, type ValueInfo } from '../graph/model';
import { onnxruntimeReason, GraphRunner, type InferenceSessionOptions } from '../graph/runner';
import { DataType } from '../graph/schema';
import { biasesOfRankTwoOrMore, splitParameters } from '../graph/params';
import { BATCH_NORM_MODES, dropoutMaskInput, inferenceForm, runningStatisticNames, stateOutput, trainingDropouts, type BatchNormMode } from '../graph/trainMode';
import { seededUniform } from '../util/random';
import { batches, perExample, type Batch, type Dataset, type InputArray } from '../data/dataset';
import { Sparsifier, type SparsifierOptions } from '../sparsity/sparsifier';
import { maskedByDefault } from '../sparsity/layer';
import { SGD, type SgdOptions } from '../optim/sgd';
import { AdamW, type AdamWOptions } from '../optim/adamw';
import type { Optimizer } from '../optim/optimizer';
import { rangeError, SpartanError, typeError } from '../errors';
import { untieInitializers } from '../graph/untie';
import { denseState, readCheckpoint, unusable, writeCheckpoint, type TrainerState } from './checkpoint';
import { checkDataset, datasetSnapshot, INPUT_ARRAYS, type InputDims, type ModelFit } from './dataFit';
import { indexBounds } from './indexBounds';
import { checkTrainerOptions } from './trainerOptions';
import { missingOrtCudaProvider } from './ortCuda';
import { countCorrect, crossEntropySum } from './metrics';
import { parkThreads } from '../backend';
import { isFloat32Array } from '../util/typedArrays';
import { numberOption } from '../options';
import { checkModel } from '../graph/validate';

export { countCorrect } from './metrics';

export interface TrainerOptions {
  forward: Model;
  /** The output the loss reads: a classifier's logits [N, C] (cross-entropy), or a prediction [N, ...] (mse). */
  logits: string;
  /**
   * The model input the datasets' `inputs` feed (default: its first input): float32, int64 /
   * int32 ids or bool. A model of several inputs takes the others from the datasets' `otherInputs`.
   */
  input?: string;
  /**
   * 'cross-entropy' (default): softmax cross-entropy of the logits against the datasets'
   * class labels; 'mse': mean squared error of the prediction against their targets.
   */
  loss?: 'cross-entropy' | 'mse';
  /** The parameters to mask (default: every float parameter of rank >= 2 but an LSTM's or GRU's biases); the rest train dense. */
  sparsify?: string[];
  labelSmoothing?: number;
  /**
   * Cross-entropy: the logits' class axis. Default -1, the last ([N, C], [N, ..., C]); 1 for
   * PyTorch's layout [N, C, d1, ...] (a segmentation head). Labels are the logits' shape without it.
   */
  classAxis?: number;
  epochs: number;
  batchSize: number;
  trainCount: number;
  sparsity: Omit<SparsifierOptions, 'params' | 'totalSteps'> & { block?: [number, number] };
  optimizer: ({ kind: 'sgd' } & SgdOptions) | ({ kind: 'adamw' } & AdamWOptions);
  /**
   * Which parameters the optimizer's weight decay applies to: 'all' (default, PyTorch's
   * optimizers' default) or 'weights', those of rank >= 2, so biases and norm scales and
   * shifts get none (the reference recipe's setting). Names in `optimizer.noDecay` get none either way.
   */
  weightDecayOn?: 'all' | 'weights';
  /** Learning-rate schedule: cosine decay to 0 over training (default true). */
  cosine?: boolean;
  seed?: number;
  /** onnxruntime execution providers for the training and evaluation graphs, in order of
   * preference (default ['cpu']). 'cuda' needs onnxruntime-node's CUDA providers installed. */
  executionProviders?: ('cpu' | 'cuda')[];
  /** More onnxruntime session options for both graphs (thread counts, `extra` config entries);
   * `executionProviders` above wins. The Trainer sets `extra.session.intra_op.allow_spinning`
   * to '0' unless given here ('1' brings onnxruntime's default back). */
  sessionOptions?: Omit<InferenceSessionOptions, 'executionProviders'>;
  /**
   * BatchNormalization while training: 'batch' (default, PyTorch's model.train()) normalises
   * by each batch's statistics and updates the running statistics, which evaluation and the
   * exported model use; 'frozen' normalises by the running statistics and never changes them;
   * 'as-exported' follows each node's training_mode. Dropout drops in training where the
   * model was exported in training mode (its masks drawn from `seed` and the step, so runs
   * repeat and resume exactly), and never in evaluation.
   */
  batchNorm?: BatchNormMode;
}

/** What trainEpoch reports after each step: the step count, the batch's loss, the epoch's training accuracy so far (cross-entropy only). */
export type BatchCallback = (step: number, loss: number, accuracy: number | undefined) => void;

export interface EpochMetrics {
  epoch: number;
  loss: number;
  /** Of the training batches as they were trained (cross-entropy only). */
  trainAccuracy?: number;
  testAccuracy?: number;
  density: number;
  beta: number;
  seconds: number;
}

/**
 * The largest step count load() takes and trainEpoch goes to, so every state() loads: near 2^53
 * a counter stops counting (x + 1 === x), and the sparsifier and optimizer refuse such a step.
 */
const MAX_STEP = 2 ** 52;

/** BatchNormalization's running statistics that are float32 initializers: state the Trainer keeps, feeds and checkpoints. */
function statisticInitializers(forward: Model) {
  const stats = runningStatisticNames(forward);
  return forward.graph.initializers.filter((t) => t.dataType === DataType.FLOAT && stats.has(t.name));
}

/** The model with `names` (initializers) as inputs instead. */
function withInputs(m: Model, names: Set<string>): Model {
  const g = m.graph;
  return {
    ...m,
    graph: {
      ...g,
      // (one an old exporter listed as an input already, keep_initializers_as_inputs, stays one input)
      inputs: [...g.inputs, ...g.initializers.filter((t) => names.has(t.name) && !g.inputs.some((v) => v.name === t.name)).map((t) => ({ name: t.name, elemType: t.dataType, shape: t.dims.slice() }))],
      initializers: g.initializers.filter((t) => !names.has(t.name)),
    },
  };
}

/** The optimizer's noDecay list: the caller's names, plus every parameter of rank < 2 for 'weights'. */
function noDecayNames(params: readonly { name: string; shape: number[] }[], given: readonly string[] | undefined, on: TrainerOptions['weightDecayOn'], biases: Set<string>): string[] | undefined {
  if (on === undefined || on === 'all') return given?.slice();
  return [...(given ?? []), ...params.filter((p) => p.shape.length < 2 || biases.has(p.name)).map((p) => p.name)];
}

/** The model's data inputs: its graph inputs that no initializer gives a value. */
function dataInputs(forward: Model) {
  const inits = new Set(forward.graph.initializers.map((t) => t.name));
  return forward.graph.inputs.filter((v) => !inits.has(v.name));
}

/**
 * The input exists; every data input is of a type the Trainer feeds (float32, int64 or
 * int32 ids, bool), and the parameters are float32. The Trainer feeds batches of any size
 * (the last partial batch, evaluation batches), so every data input needs a dynamic batch
 * dim. torch.onnx.export without dynamic_axes fixes it to the example's batch and folds that
 * number into the graph's shape arithmetic, so relaxing the input alone would not do: the
 * model must be exported again.
 */
function checkInputs(forward: Model, input: string | undefined): void {
  // a training graph (spartan graph derive's output) given for the forward model: its
  // parameter inputs would otherwise be named as inputs of a fixed batch size
  const outs = forward.graph.outputs.map((o) => o.name);
  if (outs.includes('loss') && outs.some((o) => o.startsWith('grad.')))
    throw rangeError('ERR_SPARTAN_OPTION', `the model outputs loss and ${outs.find((o) => o.startsWith('grad.'))}: it is a training graph (as spartan graph derive writes); the Trainer derives its own and takes the forward model`);
  const inputs = dataInputs(forward);
  if (!inputs.some((i) => i.name === input)) throw rangeError('ERR_SPARTAN_OPTION', `the model has no input named "${input}" (inputs: ${inputs.map((i) => i.name).join(', ')})`);
  // the Trainer's weights, optimizer and float batches are float32; integer inputs (token ids) it feeds as they are
  const doubles = forward.graph.initializers.filter((t) => t.dataType === DataType.DOUBLE && t.dims.length >= 1);
  const odd = inputs.find((v) => !INPUT_ARRAYS.has(v.elemType ?? -1));
  if (odd || doubles.length)
    throw typeError('ERR_SPARTAN_TYPE', `the Trainer trains float32 models on float32, integer (int64, int32) or bool inputs, but ${odd ? `the input "${odd.name}" has ONNX type ${odd.elemType}` : `"${doubles[0].name}" is float64`} ` +
      '(export the model in float32, e.g. model.float() before torch.onnx.export)');
  for (const v of inputs) {
    const batch = v.shape?.[0];
    if (typeof batch === 'number')
      throw rangeError('ERR_SPARTAN_SHAPE', `the model's input "${v.name}" has a fixed batch size of ${batch} (shape [${v.shape}]), but training and evaluation feed batches of other sizes; ` +
        `export the model with a dynamic batch dim, e.g. torch.onnx.export(..., dynamic_axes={"${v.name}": {0: "N"}, ...})`);
  }
}

export class Trainer {
  readonly sparsifier: Sparsifier;
  readonly optimizer: Optimizer;
  readonly params: { name: string; data: Float32Array; shape: number[] }[];
  /**
   * BatchNormalization's running statistics (not trained: with batchNorm 'batch' each step
   * writes their next values here). Evaluation and the exported model use them.
   */
  readonly buffers: { name: string; data: Float32Array; shape: number[] }[];
  /** What datasets must fit: the input they feed, the logits' classes or the prediction's shape. */
  private readonly fit: ModelFit;
  /** The buffers the training graph updates (the rest it does not read). */
  private readonly updated: Set<string>;
  private released = false;
  private readonly inflight = new Set<Promise<unknown>>(); // the graph runs release() waits for
  private releasing: Promise<void> | null = null;
  /** A trainEpoch is under way: a second one, load, resume and exportSparse would change the state under it. */
  private epochRunning = false;
  /** One buffer per dropout mask, grown to the largest batch (as batches() reuses its own: no garbage per step). */
  private readonly maskBuffers: Float32Array[] = [];
  private readonly input: string;
  private readonly baseLr: number;
  private readonly totalSteps: number;

  private constructor(
    private readonly opts: TrainerOptions,
    private readonly train: GraphRunner,
    private readonly evaluate_: GraphRunner,
    private readonly forward: Model,
    /** C of the logits (cross-entropy), the positions (their other dims past the batch), and the class axis. */
    labelled: { classes: number; positions: Dim[]; axis: number } | undefined,
    /** The prediction's shape past the batch dim (mse): each example's target has it. */
    targetShape: Dim[] | undefined,
    /** Parameters that the exporter had merged into another of equal value, trained apart here. */
    readonly untied: readonly { name: string; from: string }[],
    /** The parameters it trains: the derivation's default ones (not running statistics, Resize scales, ...), float32. */
    trainable: readonly TensorValue[],
    /** Float initializers left constant for holding NaN or +-Inf (splitParameters). */
    readonly constants: readonly string[],
    /** The training graph's dropout mask inputs: the ratio, and the shape past the batch dim. */
    private readonly dropouts: readonly { name: string; ratio: number; dims: number[] }[],
    /** The training graph's labels (or targets) input: "labels", unless the model has a tensor of that name. */
    private readonly labelsInput: string,
  ) {
    this.params = trainable.map((t) => ({ name: t.name, data: Float32Array.from(t.data as Float32Array), shape: t.dims.slice() }));
    this.buffers = statisticInitializers(forward).map((t) => ({ name: t.name, data: Float32Array.from(t.data as Float32Array), shape: t.dims.slice() }));
    this.updated = new Set(this.buffers.filter((b) => train.outputNames.includes(stateOutput(b.name))).map((b) => b.name));
    const inputs = dataInputs(forward);
    this.input = opts.input ?? inputs[0].name;
    this.fit = { input: inputs.find((v) => v.name === this.input)!, others: inputs.filter((v) => v.name !== this.input), logits: opts.logits, classes: labelled?.classes, positions: labelled?.positions, classAxis: labelled?.axis, targetShape, indexBounds: indexBounds(forward, inputs) };
    this.totalSteps = opts.epochs * Math.ceil(opts.trainCount / opts.batchSize);
    const { block, ...sparsity } = opts.sparsity; // block: the Trainer's, for every masked weight
    const biases = biasesOfRankTwoOrMore(forward);
    this.sparsifier = new Sparsifier({
      ...sparsity,
      params: this.params.map((p) => {
        const sparsify = opts.sparsify ? opts.sparsify.includes(p.name) : maskedByDefault(p.shape) && !biases.has(p.name);
        return { ...p, sparsify, block: block && sparsify && p.shape.length >= 2 ? block : undefined };
      }),
      totalSteps: this.totalSteps,
    });
    const { kind, ...optimizer } = opts.optimizer;
    const o = { ...optimizer, noDecay: noDecayNames(this.params, opts.optimizer.noDecay, opts.weightDecayOn, biases) };
    this.optimizer = kind === 'sgd' ? new SGD(this.params, o) : new AdamW(this.params, o as AdamWOptions);
    this.baseLr = o.lr;
  }

  static async create(opts: TrainerOptions): Promise<Trainer> {
    checkTrainerOptions(opts);
    checkModel(opts.forward); // a malformed graph ({ nodes: 5 }) is one ERR_SPARTAN_ONNX, not a TypeError from deep inside
    checkInputs(opts.forward, opts.input ?? dataInputs(opts.forward)[0]?.name);
    if (opts.weightDecayOn !== undefined && opts.weightDecayOn !== 'all' && opts.weightDecayOn !== 'weights')
      throw rangeError('ERR_SPARTAN_OPTION', `weightDecayOn must be 'all' or 'weights' (got ${JSON.stringify(opts.weightDecayOn)})`);
    // parameters the exporter merged because their values were equal train apart (untie.ts)
    const { model: untiedModel, untied } = untieInitializers(opts.forward);
    // logits named by an inner tensor: made a graph output, which both graphs must fetch
    const forward = withOutput(untiedModel, opts.logits);
    const batchNorm = opts.batchNorm ?? 'batch';
    if (!BATCH_NORM_MODES.includes(batchNorm)) throw rangeError('ERR_SPARTAN_OPTION', `batchNorm must be one of ${BATCH_NORM_MODES.join(', ')} (got ${JSON.stringify(batchNorm)})`);
    const loss = opts.loss ?? 'cross-entropy';
    if (loss !== 'cross-entropy' && loss !== 'mse') throw rangeError('ERR_SPARTAN_OPTION', `loss must be 'cross-entropy' or 'mse' (got ${JSON.stringify(opts.loss)})`);
    if (loss === 'mse' && opts.labelSmoothing) throw rangeError('ERR_SPARTAN_OPTION', 'labelSmoothing smooths class labels: it has no meaning for the mse loss');
    const labels = freeName(forward, 'labels');
    const derive: DeriveOptions = { logits: opts.logits, labels, labelSmoothing: opts.labelSmoothing, classAxis: opts.classAxis, batchNorm, dropout: 'mask-inputs', loss };
    const training = deriveTrainingGraph(forward, derive);
    const ratios = new Map(trainingDropouts(forward).map((d) => [dropoutMaskInput(d.node), d.ratio]));
    const dropouts = training.graph.inputs.filter((v) => ratios.has(v.name)).map((v) => {
      const dims = v.shape?.slice(1);
      if (!dims || dims.some((d) => typeof d !== 'number'))
        throw rangeError('ERR_SPARTAN_SHAPE', `the Trainer draws dropout masks of static shape past the batch dim, but "${v.name.slice('dropout_mask.'.length)}" has shape [${v.shape ?? '?'}]`);
      return { name: v.name, ratio: ratios.get(v.name)!, dims: dims as number[] };
    });
    const labelled = loss === 'cross-entropy' ? logitsClasses(forward, opts.logits, opts.classAxis) : undefined;
    const targetShape = loss === 'mse' ? predictionShape(forward, opts.logits) : undefined;
    // evaluation: the forward graph with the parameters as inputs (fed the sparse weights)
    const { params: candidates, constants } = splitParameters(forward);
    const trainable = candidates.filter((t) => t.dataType === DataType.FLOAT);
    const paramNames = new Set(trainable.map((t) => t.name));
    if (opts.sparsify !== undefined) {
      if (!Array.isArray(opts.sparsify) || opts.sparsify.some((n) => typeof n !== 'string'))
        throw typeError('ERR_SPARTAN_OPTION', 'sparsify must be a list of parameter names');
      const unknown = opts.sparsify.filter((n) => !paramNames.has(n));
      if (unknown.length) throw rangeError('ERR_SPARTAN_OPTION', `sparsify names ${unknown.map((n) => `"${n}"`).join(', ')}, which ${unknown.length === 1 ? 'is not a parameter' : 'are not parameters'} of the model (parameters: ${[...paramNames].join(', ')})`);
    }
    // evaluation runs the inference form (running statistics, no dropout), fed the weights and statistics
    const evalModel = withInputs(inferenceForm(forward), new Set([...paramNames, ...statisticInitializers(forward).map((t) => t.name)]));
    const eps = opts.executionProviders ?? ['cpu'];
    if (!Array.isArray(eps) || eps.length === 0 || eps.some((e) => e !== 'cpu' && e !== 'cuda'))
      throw rangeError('ERR_SPARTAN_OPTION', `executionProviders must be a non-empty list of 'cpu' and 'cuda' (got ${JSON.stringify(eps)})`);
    if (opts.sessionOptions !== undefined && (typeof opts.sessionOptions !== 'object' || opts.sessionOptions === null))
      throw rangeError('ERR_SPARTAN_OPTION', 'sessionOptions must be an object of onnxruntime session options');
    const extra = withoutSpinning(opts.sessionOptions?.extra === undefined ? undefined : plainExtra(opts.sessionOptions.extra));
    const cudaMissing = eps.includes('cuda') ? missingOrtCudaProvider() : undefined;
    if (cudaMissing)
      throw new SpartanError('ERR_SPARTAN_CUDA', `onnxruntime could not use the CUDA execution provider (${cudaMissing} is not installed); ` +
        "install onnxruntime-node's CUDA providers (see its README) or train with the CPU provider");
    const givenOptions = Object.keys(opts.sessionOptions ?? {}).length > 0;
    const open = async (m: Model, what: string) => {
      try {
        return await GraphRunner.create(m, { ...opts.sessionOptions, extra, executionProviders: eps });
      } catch (e) {
        const why = onnxruntimeReason(e);
        // onnxruntime's own refusal: of session options it does not take, where the caller gave
        // some; else of the graph, whose faults come from the model (one shape inference missed)
        if (!eps.includes('cuda') && givenOptions)
          throw Object.assign(rangeError('ERR_SPARTAN_OPTION', `onnxruntime could not open the graph with these session options: ${why}`), { cause: e });
        if (!eps.includes('cuda'))
          throw Object.assign(rangeError('ERR_SPARTAN_ONNX', `onnxruntime refused the ${what} graph made from this model: ${why} (does onnxruntime load the forward model itself?)`), { cause: e });
        throw new SpartanError('ERR_SPARTAN_CUDA', `onnxruntime could not use the CUDA execution provider (${onnxruntimeReason(e)}); ` +
          "install onnxruntime-node's CUDA providers (see its README) or train with the CPU provider");
      }
    };
    const train = await open(training, 'training');
    let evaluate: GraphRunner;
    try {
      evaluate = await open(evalModel, 'evaluation');
    } catch (e) {
      await train.release();
      throw e;
    }
    return new Trainer(opts, train, evaluate, forward, labelled, targetShape, untied, trainable, constants, dropouts, labels);
  }

  /**
   * Frees both onnxruntime sessions now (not at garbage collection); the Trainer cannot run
   * after. Idempotent (every call returns the first one's promise). During trainEpoch or
   * evaluate calls (one epoch and any number of evaluations at once) it waits for their graph runs in flight
   * (a session is not freed under a run), and those calls then reject with ERR_SPARTAN_DISPOSED
   * before their next run, the finished steps kept.
   */
  release(): Promise<void> {
    if (!this.releasing) {
      this.released = true;
      this.releasing = Promise.allSettled([...this.inflight]).then(() => Promise.all([this.train.release(), this.evaluate_.release()])).then(() => undefined);
    }
    return this.releasing;
  }

  /** This step's dropout masks: 0 or 1 / (1 - ratio), drawn from (seed, step, which mask) alone; valid until the next step's. */
  private dropoutFeeds(step: number, size: number) {
    const feeds: Record<string, { data: Float32Array; dims: number[] }> = {};
    this.dropouts.forEach((d, which) => {
      const per = d.dims.reduce((a, b) => a * b, 1);
      // grown to the largest batch seen (not batchSize, which may be far past the data)
      if (!(this.maskBuffers[which]?.length >= size * per)) this.maskBuffers[which] = new Float32Array(size * per);
      const data = this.maskBuffers[which].subarray(0, size * per);
      const u = seededUniform(this.opts.seed ?? 1, step, which), keep = 1 / (1 - d.ratio);
      for (let i = 0; i < data.length; i++) data[i] = u() < d.ratio ? 0 : keep;
      feeds[d.name] = { data, dims: [size, ...d.dims] };
    });
    return feeds;
  }

  private checkLive(): void {
    if (this.released) throw typeError('ERR_SPARTAN_DISPOSED', 'this Trainer was released');
  }

  /** Refuses what would change the state under a trainEpoch in flight (awaited between its steps, or called from its onBatch). */
  private checkIdle(what: string): void {
    if (this.epochRunning) throw rangeError('ERR_SPARTAN_STATE', `${what}: an epoch is already running on this Trainer; await its trainEpoch first`);
  }

  /** The batch's inputs, the weights and the buffers the graph reads (every buffer, or only the updated ones; `values` in place of their data). */
  private feedsFor(batch: Batch, dims: InputDims, weights: Record<string, Float32Array>, buffers: 'all' | 'updated', values = this.buffers.map((b) => b.data)) {
    const feeds: Record<string, { data: InputArray; dims: number[]; type?: 'bool' }> = {};
    const feed = (v: ValueInfo, data: InputArray) => (feeds[v.name] = { data, dims: [batch.size, ...dims[v.name]], ...(v.elemType === DataType.BOOL ? { type: 'bool' as const } : {}) });
    feed(this.fit.input, batch.x);
    for (const v of this.fit.others) feed(v, batch.others![v.name]);
    for (const p of this.params) feeds[p.name] = { data: weights[p.name], dims: p.shape };
    this.buffers.forEach((b, i) => {
      if (buffers === 'all' || this.updated.has(b.name)) feeds[b.name] = { data: values[i], dims: b.shape };
    });
    return feeds;
  }

  /** C of the logits [N, C] or [N, ..., C] (cross-entropy): labels must lie in [0, C); undefined under mse. */
  get classes(): number | undefined {
    return this.fit.classes;
  }

  /** The prediction's shape past the batch dim (mse; a dynamic dim as its symbol): each example's target has it; undefined under cross-entropy. */
  get targetShape(): Dim[] | undefined {
    return this.fit.targetShape;
  }

  /**
   * Checks that a dataset fits the model (dataFit.ts): the examples' array type and size are
   * what the model's input takes, every label is a class of the logits, or every target is
   * finite and of the prediction's shape. trainEpoch and evaluate call it first; the CLI calls
   * it before it writes anything.
   */
  checkDataset(data: Dataset, name = 'the dataset'): void {
    checkDataset(this.fit, data, name);
  }

  /** The loss graph's second input for a batch: int64 labels [n, ...] (cross-entropy) or float targets [n, ...] (mse). */
  private targetFeed(batch: Batch, labelDims: number[]) {
    return { data: this.classes !== undefined ? batch.labels! : batch.targets!, dims: [batch.size, ...labelDims] };
  }

  /** How many labels of an example follow the logits' class axis (metrics.ts): 1 with classes last, H·W for [N, C, H, W]. */
  private labelsAfterClassAxis(labelDims: number[]): number {
    return this.fit.classAxis === undefined ? 1 : perExample(labelDims.slice(this.fit.classAxis - 1));
  }

  /** Runs a graph; an onnxruntime failure (a token id past the embedding, say) becomes an ERR_SPARTAN_RUNTIME. */
  private async run(runner: GraphRunner, feeds: Parameters<GraphRunner['run']>[0], what: string) {
    if (this.released) throw typeError('ERR_SPARTAN_DISPOSED', `this Trainer was released before the ${what} could run`);
    const running = runner.run(feeds);
    this.inflight.add(running);
    try {
      return await running;
    } catch (e) {
      throw new SpartanError('ERR_SPARTAN_RUNTIME', `onnxruntime failed to run the ${what}: ${onnxruntimeReason(e)}`);
    } finally {
      this.inflight.delete(running);
    }
  }

  /**
   * One pass over `data` in the epoch's seeded order. `onBatch(step, loss, accuracy)` runs after
   * each step: the step count, the batch's loss, and the epoch's training accuracy so far
   * (cross-entropy only; undefined otherwise).
   */
  async trainEpoch(data: Dataset, epoch: number, onBatch?: BatchCallback): Promise<EpochMetrics> {
    this.checkLive();
    this.checkIdle('trainEpoch');
    // everything checked before the first step: each of these failed only after a step had moved the state
    numberOption(epoch, 'epoch', (e) => Number.isSafeInteger(e) && e >= 0, 'an integer >= 0 (it seeds the epoch\'s order)');
    if (onBatch !== undefined && typeof onBatch !== 'function') throw typeError('ERR_SPARTAN_TYPE', `onBatch must be a function of (step, loss, accuracy) (got ${typeof onBatch})`);
    // sparsifier.step() refuses a finalized sparsifier, but only after the graph and the optimizer step ran
    if (this.sparsifier.stats().finalized) throw rangeError('ERR_SPARTAN_STATE', 'trainEpoch: the sparsifier was finalized (exportSparse), so training has ended; load a state from before to train on');
    data = datasetSnapshot(this.fit, data);
    const { inputDims: dims, labelDims: perLabel } = checkDataset(this.fit, data, 'the training data');
    const last = Math.max(this.sparsifier.stepCount, this.optimizer.stepCount) + Math.ceil(data.count / this.opts.batchSize);
    if (last > MAX_STEP) throw rangeError('ERR_SPARTAN_STATE', `trainEpoch: this epoch would take the step counter to ${last}, past 2^52, where it stops counting (and load() refuses the state)`);
    this.epochRunning = true;
    try {
      return await this.epoch(data, epoch, onBatch, dims, perLabel);
    } finally {
      this.epochRunning = false;
    }
  }

  private async epoch(data: Dataset, epoch: number, onBatch: BatchCallback | undefined, dims: InputDims, perLabel: number[]): Promise<EpochMetrics> {
    const after = this.labelsAfterClassAxis(perLabel);
    const t0 = performance.now();
    let lossSum = 0, correct = 0, seen = 0;
    const accuracySoFar = () => correct / (seen * perExample(perLabel)); // cross-entropy only
    for (const batch of batches(data, this.opts.batchSize, (this.opts.seed ?? 1) * 1000 + epoch, true)) {
      const step = this.sparsifier.stepCount;
      // past the planned steps (more epochs than `epochs`) the decay stays at its end, 0
      if (this.opts.cosine ?? true) this.optimizer.lr = (this.baseLr * (1 + Math.cos((Math.PI * Math.min(step, this.totalSteps)) / this.totalSteps))) / 2;
      const feeds = { ...this.feedsFor(batch, dims, this.sparsifier.weights(), 'updated'), [this.labelsInput]: this.targetFeed(batch, perLabel), ...this.dropoutFeeds(step, batch.size) };
      parkThreads(); // the sparsifier's threads stop spinning: the cores are onnxruntime's now
      const out = await this.run(this.train, feeds, `training graph at step ${step}`);
      const grads: Record<string, Float32Array> = {};
      for (const p of this.params) grads[p.name] = out[`grad.${p.name}`] as Float32Array;
      const gradTheta = this.sparsifier.backward(grads);
      // the sparsifier checked these (and summed their squares): the optimizer need not scan
      // them again. With clipping the norm's summation order matters (bit-identical runs
      // with or without the Trainer), so it scans as usual.
      this.optimizer.step(gradTheta, this.optimizer.clipNorm === undefined ? this.sparsifier.checkedSumSquares : undefined);
      this.sparsifier.step();
      // the running statistics move only with a step that went through
      for (const b of this.buffers) if (this.updated.has(b.name)) b.data.set(out[stateOutput(b.name)] as Float32Array);
      const loss = (out.loss as Float32Array)[0];
      lossSum += loss * batch.size;
      if (batch.labels) correct += countCorrect(out[this.opts.logits] as Float32Array, batch.labels, after);
      seen += batch.size;
      onBatch?.(step + 1, loss, this.classes !== undefined ? accuracySoFar() : undefined);
    }
    const st = this.sparsifier.stats();
    return {
      epoch, loss: lossSum / seen, ...(this.classes !== undefined ? { trainAccuracy: accuracySoFar() } : {}),
      density: st.density.global, beta: st.beta, seconds: (performance.now() - t0) / 1000,
    };
  }

  /** Everything training changes (copies): the parameters, running statistics, sparsifier and optimizer. */
  state(): TrainerState {
    return {
      params: this.params.map((p) => p.data.slice()),
      ...(this.buffers.length ? { buffers: this.buffers.map((b) => b.data.slice()) } : {}),
      sparsifier: this.sparsifier.state(),
      optimizer: this.optimizer.state(),
    };
  }

  /** Restores a state() of a Trainer of the same model and settings: all of it, or (ERR_SPARTAN_STATE) none. */
  load(state: TrainerState): void {
    this.checkIdle('load');
    this.loadState(state, (why) => rangeError('ERR_SPARTAN_STATE', `cannot load trainer state: ${why}`));
  }

  private loadState(given: TrainerState, bad: (why: string) => Error): void {
    if (typeof given !== 'object' || given === null) throw bad('not a trainer state');
    let state: TrainerState;
    try {
      state = denseState(given);
    } catch (e) { // a getter that throws
      throw bad(`it cannot be read: ${(e as Error)?.message}`);
    }
    // one Float32Array per tensor, each of the tensor's length
    const fits = (saved: unknown, want: readonly { data: Float32Array }[]) =>
      Array.isArray(saved) && saved.length === want.length && want.every((w, i) => isFloat32Array(saved[i]) && saved[i].length === w.data.length);
    if (!fits(state.params, this.params)) throw bad("its parameters do not match the model's");
    // past MAX_STEP: a step count no epoch goes to (a counter near 2^53 stalled, and state() then wrote a step load() refused)
    for (const [what, st] of [['sparsifier', state.sparsifier], ['optimizer', state.optimizer]] as const) {
      const step = (st as { step?: unknown } | null)?.step;
      if (typeof step === 'number' && step > MAX_STEP) throw bad(`its ${what} step ${step} is past 2^52, where the step counter stops counting`);
    }
    if (!fits(state.buffers ?? [], this.buffers)) throw bad("its running statistics do not match the model's BatchNormalization layers");
    // (a NaN or Inf value loads as saved: training can write one, e.g. an AdamW second moment past
    // float32 from a gradient near 1e21, or a -inf fill constant taken as a parameter)
    // each load checks its state before it writes; the optimizer's is undone if the sparsifier's fails
    const optimizer = this.optimizer.state();
    try {
      this.optimizer.load(state.optimizer);
      try {
        this.sparsifier.load(state.sparsifier);
      } catch (e) {
        this.optimizer.load(optimizer);
        throw e;
      }
    } catch (e) {
      throw (e as { code?: string }).code === 'ERR_SPARTAN_STATE' ? bad((e as Error).message) : e;
    }
    this.params.forEach((p, i) => p.data.set(state.params[i]));
    this.buffers.forEach((b, i) => b.data.set(state.buffers![i]));
  }

  /**
   * Writes state() and `meta` (the caller's own record: the epoch, the configuration, a
   * history; any v8-serialisable values) to `file` atomically: a crash leaves the previous
   * checkpoint or the new one, never a torn file. Creates the file's folder.
   */
  saveCheckpoint(file: string, meta: Record<string, unknown> = {}): void {
    writeCheckpoint(file, this.state(), meta);
  }

  /**
   * Loads a checkpoint saveCheckpoint wrote and returns its `meta`. `accept(meta)` may throw to
   * refuse it (another configuration, say) before anything loads. A damaged, foreign or
   * mismatched file is one ERR_SPARTAN_STATE naming it; the Trainer is then unchanged.
   */
  resume(file: string, accept?: (meta: Record<string, unknown>) => void): Record<string, unknown> {
    this.checkIdle('resume');
    if (accept !== undefined && typeof accept !== 'function') throw typeError('ERR_SPARTAN_TYPE', `accept must be a function of the checkpoint's meta (got ${typeof accept})`);
    const { state, meta } = readCheckpoint(file);
    accept?.(meta);
    this.loadState(state, (why) => unusable(file, why));
    return meta;
  }

  /**
   * Folds the masks into the parameters (exactly sparse; training ends) and returns the
   * forward model with them as initializers: an ordinary ONNX model any runtime can run.
   */
  exportSparse(): Model {
    this.checkIdle('exportSparse');
    this.sparsifier.finalize();
    const byName = new Map([...this.params, ...this.buffers].map((p) => [p.name, p.data]));
    const forward = inferenceForm(this.forward), g = forward.graph;
    return {
      ...forward,
      producerName: 'spartan-sparsity',
      graph: { ...g, initializers: g.initializers.map((t) => (byName.has(t.name) ? { ...t, data: byName.get(t.name)!.slice() } : t)) },
    };
  }

  /**
   * The loss and (cross-entropy) accuracy of the current forward weights, what the sparse model
   * computes, in evaluation form (running statistics, no dropout). The loss is the training
   * loss without label smoothing: the mean cross-entropy, or the mean squared error per value.
   */
  async evaluate(data: Dataset, batchSize = 1000): Promise<{ loss: number; accuracy?: number }> {
    this.checkLive();
    data = datasetSnapshot(this.fit, data);
    const { inputDims: dims, labelDims: perLabel } = checkDataset(this.fit, data, 'the evaluation data');
    const after = this.labelsAfterClassAxis(perLabel);
    let correct = 0, lossSum = 0;
    // copies, so an epoch (or a load) beside this evaluation cannot change them between its
    // batches, or under a run in flight: it scores the weights as they are now
    const weights = Object.fromEntries(Object.entries(this.sparsifier.weights()).map(([k, w]) => [k, w.slice()]));
    const statistics = this.buffers.map((b) => b.data.slice());
    for (const batch of batches(data, batchSize, null, true)) {
      parkThreads();
      const out = (await this.run(this.evaluate_, this.feedsFor(batch, dims, weights, 'all', statistics), 'evaluation graph'))[this.opts.logits] as Float32Array;
      if (batch.labels) {
        correct += countCorrect(out, batch.labels, after);
        lossSum += crossEntropySum(out, batch.labels, after);
      } else {
        for (let i = 0; i < out.length; i++) lossSum += (out[i] - batch.targets![i]) ** 2;
      }
    }
    const labels = data.count * perExample(perLabel);
    if (this.classes !== undefined) return { loss: lossSum / labels, accuracy: correct / labels };
    return { loss: lossSum / (data.count * perExample(perLabel)) };
  }

  /** Accuracy of the current forward weights (cross-entropy models; evaluate() gives the loss too). */
  async accuracy(data: Dataset, batchSize = 1000): Promise<number> {
    if (this.classes === undefined) throw rangeError('ERR_SPARTAN_OPTION', 'accuracy() needs class labels: this Trainer regresses (loss mse); use evaluate() for its loss');
    return (await this.evaluate(data, batchSize)).accuracy!;
  }
}

/**
 * onnxruntime's intra-op threads spin after each run by default, and they then compete for the
 * cores with the sparsifier's kernels, which run right after every training-graph run (on the
 * 2-core VM: the dense LeNet-300-100 step 1.91 -> 1.52 ms and the Spartan step 7.5 -> 3.6 ms
 * with spinning off; benchmarks/step-overhead.ts). So the Trainer turns it off unless the
 * caller's `extra` says otherwise.
 */
function withoutSpinning(extra: Record<string, unknown> | undefined): Record<string, unknown> | undefined {
  if (extra && 'session.intra_op.allow_spinning' in extra) return extra; // the caller's flat key decides
  const session = (extra?.session ?? {}) as Record<string, unknown>;
  const intraOp = (session.intra_op ?? {}) as Record<string, unknown>;
  return { ...extra, session: { ...session, intra_op: { allow_spinning: '0', ...intraOp } } };
}

/** How deep `extra` may nest: onnxruntime's config keys have a few dotted parts ('session.intra_op.allow_spinning': 2 levels below `extra`). */
const EXTRA_DEPTH = 8;

/**
 * A copy of sessionOptions.extra as onnxruntime-node reads it: plain objects, each level a
 * dotted part of a config key, with string values. Its binding walks the object recursively
 * with no bound, so a cycle or a tree 100,000 levels deep overflowed the native stack and killed
 * the process; and a copy read once is what gets checked and passed on.
 */
function plainExtra(x: unknown, depth = 0, at = 'sessionOptions.extra'): Record<string, unknown> {
  const proto = typeof x === 'object' && x !== null ? Object.getPrototypeOf(x) : undefined;
  if (proto !== Object.prototype && proto !== null)
    throw rangeError('ERR_SPARTAN_OPTION', `${at} must be ${depth ? 'a string or ' : ''}a plain object of config entries (got ${x === null ? 'null' : Array.isArray(x) ? 'an array' : typeof x})`);
  if (depth >= EXTRA_DEPTH) throw rangeError('ERR_SPARTAN_OPTION', `sessionOptions.extra nests more than ${EXTRA_DEPTH} levels deep (a cycle?); onnxruntime's config keys have a few dotted parts`);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(x as object)) out[k] = typeof v === 'string' ? v : plainExtra(v, depth + 1, `${at}.${k}`);
  return out;
}
