// The Sparsifier: Spartan, IMP, Top-KAST and Dense behind one interface that a
// training loop drives every step:
//   W = sp.weights();  G = run(W);  gθ = sp.backward(G);  optimizer.step(gθ);  sp.step();
// Parameters are Float32Arrays (host) or float32 Tensors on one device; the masks and
// buffers live with them (storage.ts), and every op runs there.
import { native, type NativeTopKResult } from '../native';
import { rangeError, typeError } from '../errors';
import { asSpartanError, disposeTensors, handle, Tensor, type Device } from '../tensor';
import { applyMask, blockScores } from '../ops/block';
import { checkFinite } from '../ops/finite';
import { booleanOption, checkKnownKeys, numberOption, optionKeys, positiveInt } from '../options';
import { softTopKBackwardSegmented, softTopKSegmented } from '../ops/softTopK';
import { topKMaskSegmented } from '../ops/topK';
import { erkDensities, type BudgetMode } from './budgets';
import { checkParam, Layer, type HardOf, type ParamData, type ParamSpec } from './layer';
import { Storage, type F32, type U8 } from './storage';
import { adjustedDensity, betaAt, densityAt, phaseAt, phases, type BetaCurve, type DensityCurve, type Phase, type Phases } from './schedules';
import { isFloat32Array, isUint8Array } from '../util/typedArrays';

export type Method = 'spartan' | 'imp' | 'topkast' | 'dense';
const METHODS: readonly Method[] = ['spartan', 'imp', 'topkast', 'dense'];

export interface SparsifierOptions<D extends ParamData = ParamData> {
  /** Float32Arrays, or float32 Tensors all on one device (the masks and buffers then live there too). */
  params: readonly ParamSpec<D>[];
  method: Method;
  /** Target overall density in (0, 1] (give this or `sparsity`). */
  density?: number;
  /** Target overall sparsity in [0, 1): density = 1 - sparsity. */
  sparsity?: number;
  totalSteps: number;
  /** Default 'global': one budget (one lambda, one threshold) across every sparsified tensor. */
  budget?: BudgetMode;
  /** Count unsparsified parameters as dense and raise the masked density to hit the overall target (default true). */
  adjustDensity?: boolean;
  schedule?: { warmupFrac?: number; finetuneFrac?: number; density?: DensityCurve; beta?: BetaCurve };
  /** Spartan: beta from beta0 (default 1) to betaMax (default 10) times sqrt(b0 b1) for block layers. */
  beta0?: number;
  betaMax?: number;
  /** Spartan: round the frozen soft mask to 1 on the kept entries (default false: keep the soft values). */
  roundFrozen?: boolean;
  /**
   * Spartan: pass the hard mask h straight through in the backward pass (default true, the paper's
   * update G m + sign(theta) VJP(sum G theta)); false gives the exact gradient of f(h theta m(|theta|))
   * with h held fixed (G masked by h first).
   */
  straightThrough?: boolean;
  /** IMP: recompute the mask every `interval` steps (default 1); snapshot theta at `rewindStep` for rewind(). */
  imp?: { interval?: number; rewindStep?: number };
  /**
   * Top-KAST: the backward set B is the top (k + extra) with extra = `backwardExtra` x the forward
   * budget (default 'all': dense straight-through, i.e. no backward sparsity); `explorationPenalty`
   * adds penalty * theta on A and penalty * theta / density on B \ A to the gradient.
   */
  topkast?: { backwardExtra?: number | 'all'; explorationPenalty?: number };
}

const SPARSIFIER_OPTS = optionKeys<SparsifierOptions>({
  params: true, method: true, density: true, sparsity: true, totalSteps: true, budget: true, adjustDensity: true, schedule: true,
  beta0: true, betaMax: true, roundFrozen: true, straightThrough: true, imp: true, topkast: true,
});
const SCHEDULE_OPTS = optionKeys<NonNullable<SparsifierOptions['schedule']>>({ warmupFrac: true, finetuneFrac: true, density: true, beta: true });
const IMP_OPTS = optionKeys<NonNullable<SparsifierOptions['imp']>>({ interval: true, rewindStep: true });
const TOPKAST_OPTS = optionKeys<NonNullable<SparsifierOptions['topkast']>>({ backwardExtra: true, explorationPenalty: true });

/** Every key of the options and of their nested objects is one the Sparsifier reads (a misspelt one was ignored). */
export function checkSparsifierKeys(opts: object, name = 'Sparsifier options', known = SPARSIFIER_OPTS): void {
  checkKnownKeys(opts, known, name);
  const o = opts as Partial<SparsifierOptions>;
  for (const [key, keys] of [['schedule', SCHEDULE_OPTS], ['imp', IMP_OPTS], ['topkast', TOPKAST_OPTS]] as const) {
    const sub = o[key];
    if (sub === undefined || sub === null) continue; // the defaults, as before the keys were checked
    if (typeof sub !== 'object' || Array.isArray(sub)) throw typeError('ERR_SPARTAN_OPTION', `${key} must be an object`);
    checkKnownKeys(sub, keys, key);
  }
}

export interface SparsifierStats {
  step: number;
  phase: Phase;
  method: Method;
  /** Scheduled overall density, and the density the sparsified tensors get after the adjustment. */
  targetDensity: number;
  maskDensity: number;
  /** Exact density of the forward weights: kept / total, over all parameters and per layer. */
  density: { global: number; perLayer: Record<string, number> };
  beta: number;
  lambda: number | number[];
  iterations: number;
  /** Forward-set entries that changed at the last step() (exact count). */
  flips: number;
  frozen: boolean;
  finalized: boolean;
  blockFallbacks: Record<string, string>;
}

export interface SparsifierState {
  format: 'spartan-sparsifier';
  version: 1;
  method: Method;
  /** `shape` is absent in states written before it was recorded (they load where numel and block match). */
  layers: { name: string; numel: number; shape?: number[]; block: [number, number] }[];
  step: number;
  frozen: boolean;
  finalized: boolean;
  lambda: number[] | null;
  /** The solution one mask update before `lambda` (the warm start extrapolates); absent in older states. */
  lambdaBefore?: number[] | null;
  lastIterations: number;
  flips: number;
  masks: Float32Array[];
  hard: Uint8Array[];
  prevHard: Uint8Array[];
  backwardSets: Uint8Array[];
  rewind: Float32Array[] | null;
}

type AnyLayer = Layer<F32, U8>;
/** The arrays a Sparsifier over D takes and gives: Float32Arrays, or Tensors. */
export type DataOf<D extends ParamData> = D extends Tensor ? Tensor : Float32Array;

export class Sparsifier<D extends ParamData = Float32Array> {
  readonly method: Method;
  readonly layers: readonly Layer<DataOf<D>, HardOf<D>>[];
  readonly phases: Phases;
  /** Where the parameters, masks and buffers live ('cpu' for Float32Arrays and cpu Tensors). */
  readonly device: Device;
  private readonly storage: Storage;
  private readonly all: readonly AnyLayer[]; // this.layers, typed for either storage
  private readonly sparse: AnyLayer[];
  private readonly byName = new Map<string, AnyLayer>();
  /**
   * sum(g^2) of each gradient the last backward() returned that it checked finite itself
   * (handed-through arrays, the fused Spartan kernel's outputs), by name: pass it to
   * `Optimizer.step(grads, checked)` right after backward() so that no gradient is scanned
   * twice. Valid until those arrays change or backward() runs again.
   */
  readonly checkedSumSquares = new Map<string, number>();
  private readonly target: number;
  private readonly budget: BudgetMode;
  private readonly adjust: boolean;
  private readonly densityCurve: DensityCurve;
  private readonly betaCurve: BetaCurve;
  private readonly beta0: number;
  private readonly betaMax: number;
  private readonly roundFrozen: boolean;
  private readonly straightThrough: boolean;
  private readonly impInterval: number;
  private readonly rewindStep?: number;
  private readonly backwardExtra: number | 'all';
  private readonly penalty: number;
  private readonly totalParams: number;
  private readonly maskedParams: number;

  private s = 0;
  private frozen = false;
  private finalized = false;
  private lambda: number[] | null = null;
  private lambdaBefore: number[] | null = null; // the solution one mask update earlier
  private lastIterations = 0;
  private flips = 0;
  private rewindSnapshot: F32[] | null = null;
  // Speed only: last step's hard top-k bands per budget group, the hint for this step's
  // (the masks never depend on them), and the budgets they were taken at.
  private topkBands: ({ bandLo: number; bandHi: number } | null)[] | null = null;
  private lastKs: number[] | null = null;
  private disposed = false;

  constructor(opts: SparsifierOptions<D>) {
    if (typeof opts !== 'object' || opts === null) throw typeError('ERR_SPARTAN_OPTION', 'Sparsifier options must be an object');
    checkSparsifierKeys(opts);
    if (!METHODS.includes(opts.method)) throw rangeError('ERR_SPARTAN_OPTION', `unknown method "${opts.method}" (use ${METHODS.join(', ')})`);
    this.method = opts.method;
    if (!Array.isArray(opts.params) || opts.params.length === 0) throw typeError('ERR_SPARTAN_OPTION', 'params must be a non-empty array');
    const where = new Set(opts.params.map((p, i) => checkParam(p, i)));
    if (where.size > 1)
      throw typeError('ERR_SPARTAN_DEVICE', `params mix ${[...where].map((w) => (w === 'host' ? 'Float32Arrays' : `${w} Tensors`)).join(' and ')}; a sparsifier works on one device`);
    const names = new Set<string>();
    for (const p of opts.params) {
      if (names.has(p.name)) throw rangeError('ERR_SPARTAN_OPTION', `duplicate parameter name "${p.name}"`);
      names.add(p.name);
    }
    const at = [...where][0];
    this.storage = new Storage(at);
    this.device = at === 'host' ? 'cpu' : at;
    const layers: AnyLayer[] = [];
    try {
      for (const p of opts.params) layers.push(new Layer<F32, U8>(p, this.storage, this.method !== 'dense'));
    } catch (e) {
      for (const l of layers) l.dispose(); // a shape error, or out of device memory: free what was made
      this.storage.dispose();
      throw asSpartanError(e);
    }
    for (const l of layers) this.byName.set(l.name, l);
    this.all = layers;
    this.layers = layers as unknown as Layer<DataOf<D>, HardOf<D>>[];
    this.sparse = this.method === 'dense' ? [] : layers.filter((l) => l.sparsify);
    try { // options are checked after the layers exist (they need their sizes): free them on a bad one
      if (opts.density !== undefined && opts.sparsity !== undefined) throw typeError('ERR_SPARTAN_OPTION', 'give density or sparsity, not both');
      const density = opts.density ?? (opts.sparsity !== undefined ? 1 - numberOption(opts.sparsity, 'sparsity', (v) => v >= 0 && v < 1, 'in [0, 1)') : 1);
      this.target = numberOption(density, 'density', (v) => v > 0 && v <= 1, 'in (0, 1]');
      this.phases = phases(opts.totalSteps, opts.schedule?.warmupFrac ?? 0.2, opts.schedule?.finetuneFrac ?? 0.2);
      this.budget = opts.budget ?? 'global';
      if (!['global', 'uniform', 'erk'].includes(this.budget)) throw rangeError('ERR_SPARTAN_OPTION', `unknown budget "${this.budget}"`);
      this.adjust = booleanOption(opts.adjustDensity, 'adjustDensity', true);
      this.densityCurve = opts.schedule?.density ?? (this.method === 'imp' ? 'cubic' : 'linear');
      this.betaCurve = opts.schedule?.beta ?? 'linear';
      if (!['linear', 'cosine', 'cubic'].includes(this.densityCurve)) throw rangeError('ERR_SPARTAN_OPTION', `unknown density schedule "${this.densityCurve}"`);
      if (!['linear', 'cosine', 'exponential'].includes(this.betaCurve)) throw rangeError('ERR_SPARTAN_OPTION', `unknown beta schedule "${this.betaCurve}"`);
      this.beta0 = numberOption(opts.beta0 ?? 1, 'beta0', (v) => v > 0 && Number.isFinite(v), 'finite and > 0');
      this.betaMax = numberOption(opts.betaMax ?? 10, 'betaMax', (v) => v > 0 && Number.isFinite(v), 'finite and > 0');
      const widest = Math.max(1, ...this.sparse.map((l) => l.cost)); // block layers scale the target by sqrt(b0 b1)
      if (!Number.isFinite(this.betaMax * Math.sqrt(widest)))
        throw rangeError('ERR_SPARTAN_OPTION', `betaMax ${this.betaMax} times sqrt(${widest}), the block scaling, is not a finite number`);
      if (this.betaCurve === 'exponential' && !Number.isFinite((this.betaMax * Math.sqrt(widest)) / this.beta0)) // the schedule's ratio
        throw rangeError('ERR_SPARTAN_OPTION', `the exponential beta schedule needs betaMax / beta0 finite (got ${this.betaMax} / ${this.beta0})`);
      if (this.method === 'spartan' && this.sparse.length > 0) {
        // the schedule can round a beta to 0 (beta0 1, betaMax 1e-17: 1 + (1e-17 - 1) = 0) or underflow
        // (exponential): refused here where each phase starts and ends, not at the step that reaches it
        // (advance() checks every beta again before it writes anything)
        const { warmupSteps, finetuneStart } = this.phases;
        for (const s of new Set([1, warmupSteps, finetuneStart - 1, finetuneStart])) {
          if (s < 1) continue;
          const bad = this.betasAt(s).find((b) => !(b > 0 && Number.isFinite(b)));
          if (bad !== undefined)
            throw rangeError('ERR_SPARTAN_OPTION', `beta0 ${this.beta0} and betaMax ${this.betaMax} give beta ${bad} at step ${s} (${this.betaCurve} schedule); every beta must be finite and > 0`);
        }
      }
      this.roundFrozen = booleanOption(opts.roundFrozen, 'roundFrozen', false);
      this.straightThrough = booleanOption(opts.straightThrough, 'straightThrough', true);
      this.impInterval = positiveInt(opts.imp?.interval ?? 1, 'imp.interval', 'ERR_SPARTAN_OPTION');
      this.rewindStep = opts.imp?.rewindStep;
      if (this.rewindStep !== undefined) numberOption(this.rewindStep, 'imp.rewindStep', (v) => Number.isSafeInteger(v) && v >= 0, 'an integer >= 0');
      this.backwardExtra = opts.topkast?.backwardExtra ?? 'all';
      if (this.backwardExtra !== 'all') numberOption(this.backwardExtra, 'topkast.backwardExtra', (v) => v >= 0, '>= 0 or "all"');
      this.penalty = numberOption(opts.topkast?.explorationPenalty ?? 0, 'topkast.explorationPenalty', (v) => v >= 0 && Number.isFinite(v), 'finite and >= 0');
      this.totalParams = layers.reduce((a, l) => a + l.numel, 0);
      this.maskedParams = this.sparse.reduce((a, l) => a + l.numel, 0);
      if (this.sparse.length > 0 && this.adjust) adjustedDensity(this.target, this.totalParams, this.maskedParams); // reachable?
      for (const l of layers) if (l.weights !== l.theta) this.storage.copy(l.weights, l.theta); // step 0: dense
    } catch (e) {
      this.dispose();
      throw asSpartanError(e);
    }
  }

  // ---- schedule --------------------------------------------------------------------

  /** Overall density scheduled at the current step. */
  get targetDensity(): number {
    return this.s === 0 ? 1 : densityAt(this.s, this.target, this.phases, this.densityCurve);
  }

  private get maskDensity(): number {
    const rho = this.targetDensity;
    if (this.sparse.length === 0 || !this.adjust || rho >= 1) return rho;
    return Math.min(1, adjustedDensity(rho, this.totalParams, this.maskedParams));
  }

  /** Beta at the current step for unstructured layers (block layers scale the target by sqrt(b0 b1)). */
  betaFor(layer?: { readonly cost: number }): number {
    return this.scaledBeta(this.s, layer ? Math.sqrt(layer.cost) : 1);
  }

  /** The schedule's beta at `step`, its target scaled by a block's sqrt(b0 b1). */
  private scaledBeta(step: number, scale: number): number {
    return betaAt(step, this.beta0, this.betaMax * scale, this.phases, this.betaCurve);
  }

  /** A global budget's scaling: the largest block scaling among the layers. */
  private get globalScale(): number {
    return Math.max(1, ...this.sparse.map((l) => Math.sqrt(l.cost)));
  }

  /** The single beta of a global budget. */
  private get globalBeta(): number {
    return this.scaledBeta(this.s, this.globalScale);
  }

  /** The betas of a mask update at `step`, as the solve takes them: the global one, or one per sparsified layer. */
  private betasAt(step: number): number[] {
    return this.budget === 'global' ? [this.scaledBeta(step, this.globalScale)] : this.sparse.map((l) => this.scaledBeta(step, Math.sqrt(l.cost)));
  }

  private budgets(rho: number): number[] {
    // integer budgets in cost units, so soft and hard masks agree on what "k" is
    if (this.budget === 'global') return [Math.round(rho * this.sparse.reduce((a, l) => a + l.numel, 0))];
    const densities = this.budget === 'uniform' ? this.sparse.map(() => rho) : erkDensities(this.sparse.map((l) => l.shape), rho);
    return this.sparse.map((l, i) => Math.min(l.numel, Math.round(Math.min(1, densities[i]) * l.entries) * l.cost));
  }

  // ---- the training-loop surface --------------------------------------------------

  /** Steps taken (0 before the first step(): the dense step). */
  get stepCount(): number {
    return this.s;
  }

  /** The weights to feed the forward pass, by parameter name (stable buffers, where the parameters live). */
  weights(): Record<string, DataOf<D>> {
    this.live();
    const out: Record<string, F32> = {};
    for (const l of this.all) {
      if (this.method === 'dense') {
        out[l.name] = l.theta; // no masking, no copy
        continue;
      }
      if (l.sparsify && !this.finalized) {
        const shape = { shape: [l.rows, l.cols] as [number, number], block: l.block, out: l.weights };
        if (this.method === 'spartan') applyMask(l.theta, l.mask, { ...shape, hard: l.hard });
        else applyMask(l.theta, l.hard, shape);
      } else if (l.weights !== l.theta) {
        this.storage.copy(l.weights, l.theta);
      }
      out[l.name] = l.weights;
    }
    return out as Record<string, DataOf<D>>;
  }

  /**
   * Turns dL/dW (by parameter name) into dL/dtheta for the method. Validates everything first.
   * Gradients are like the parameters: Float32Arrays, or float32 Tensors on their device.
   * Where nothing changes the gradient (dense, unsparsified tensors, the first step) the
   * result holds the caller's own `gradW` array, not a copy; elsewhere a buffer the sparsifier
   * reuses every step. Read it (an optimizer step), do not edit it in place.
   */
  backward(gradW: Record<string, DataOf<D>>): Record<string, DataOf<D>> {
    this.live();
    if (typeof gradW !== 'object' || gradW === null) throw typeError('ERR_SPARTAN_TYPE', `gradW must be an object mapping parameter names to ${this.storage.tensors ? `float32 ${this.device} Tensors` : 'Float32Arrays'}`);
    // each gradient read once (a getter could hand out another array at each read)
    const grads: Record<string, F32> = Object.create(null); // (no prototype: a layer may be named __proto__)
    for (const l of this.all) {
      const g = (gradW as Record<string, F32>)[l.name];
      this.checkGradient(g, l);
      grads[l.name] = g;
    }
    for (const name of Object.keys(gradW))
      if (!this.byName.has(name)) throw rangeError('ERR_SPARTAN_OPTION', `gradW has an unknown parameter "${name}"`);
    this.checkedSumSquares.clear();
    const active = this.s > 0 && !this.finalized;
    const spartanGrad = this.method === 'spartan' && active && !this.frozen;
    // element masks in Float32Arrays: one fused CPU kernel. Tensors, cpu ones too, take the three
    // below, so that the CPU tests run exactly what CUDA runs (and check the fused kernel against it)
    const fused = spartanGrad && !this.storage.tensors && this.sparse.every((l) => !l.blocked);
    try {
      // NaN/Inf check before any write. The fused Spartan kernel checks its own gradients before
      // it writes anything (a second read of 1 MB a step on LeNet-300-100 otherwise).
      const sums = new Map<string, number>();
      for (const l of this.all) if (!(fused && l.sparsify)) sums.set(l.name, checkFinite(handle(grads[l.name]), `gradW["${l.name}"]`));

      const out: Record<string, F32> = {};
      if (spartanGrad) this.spartanBackward(grads, fused);
      for (const l of this.all) {
        const g = grads[l.name];
        if (!l.sparsify || this.method === 'dense' || !active) {
          out[l.name] = g; // nothing to change: handed through, no copy
          this.checkedSumSquares.set(l.name, sums.get(l.name)!);
          continue;
        }
        if (this.method === 'spartan') {
          if (this.frozen) applyMask(g, l.mask, { shape: [l.rows, l.cols], block: l.block, out: l.grad }); // mask already includes h
        } else if (this.method === 'imp') {
          applyMask(g, l.hard, { shape: [l.rows, l.cols], block: l.block, out: l.grad });
        } else {
          this.topkastGrad(l, g);
        }
        out[l.name] = l.grad;
      }
      return out as Record<string, DataOf<D>>;
    } catch (e) {
      throw asSpartanError(e);
    }
  }

  private checkGradient(g: unknown, l: AnyLayer): void {
    if (this.storage.tensors) {
      const want = `a float32 ${this.device} Tensor`;
      if (!(g instanceof Tensor)) throw typeError(isFloat32Array(g) ? 'ERR_SPARTAN_DEVICE' : 'ERR_SPARTAN_TYPE', `gradW["${l.name}"] must be ${want}`);
      if (g.device !== this.device) throw typeError('ERR_SPARTAN_DEVICE', `gradW["${l.name}"] lives on '${g.device}'; the sparsifier's parameters on '${this.device}'`);
      if (g.dtype !== 'float32') throw typeError('ERR_SPARTAN_TYPE', `gradW["${l.name}"] must be ${want} (got ${g.dtype})`);
      if (g.disposed) throw typeError('ERR_SPARTAN_DISPOSED', `gradW["${l.name}"] has been disposed`);
      if (g.size !== l.numel) throw rangeError('ERR_SPARTAN_LENGTH', `gradW["${l.name}"] has ${g.size} elements; expected ${l.numel}`);
      return;
    }
    if (!isFloat32Array(g)) throw typeError(g instanceof Tensor ? 'ERR_SPARTAN_DEVICE' : 'ERR_SPARTAN_TYPE', `gradW["${l.name}"] must be a Float32Array`);
    if (g.length !== l.numel) throw rangeError('ERR_SPARTAN_LENGTH', `gradW["${l.name}"] has length ${g.length}; expected ${l.numel}`);
  }

  private spartanBackward(gradW: Record<string, F32>, fused: boolean): void {
    if (this.sparse.length === 0) return; // nothing masked (every sparsify: false): the kernels take no empty lists
    const betas = this.budget === 'global' ? this.globalBeta : this.sparse.map((l) => this.betaFor(l));
    if (fused) {
      // element masks: one fused kernel, two passes (equal bit for bit to the three below)
      const segs = this.sparse.map((l) => ({ gradW: handle(gradW[l.name]), theta: handle(l.theta), mask: handle(l.mask), hard: this.straightThrough ? undefined : handle(l.hard), out: handle(l.grad) }));
      const groups = typeof betas === 'number' ? [{ first: 0, count: segs.length, beta: betas }] : betas.map((beta, i) => ({ first: i, count: 1, beta }));
      let sums: Float64Array;
      try {
        sums = native.spartanElementGrad(segs, groups);
      } catch (e) {
        // name the layer as checkFinite does: segments[1].gradW[5] -> gradW["fc2.weight"][5];
        // a non-finite output (finite inputs that overflowed) is the gradient of theta
        (e as Error).message = (e as Error).message.replace(/^segments\[(\d+)\]\.(\w+)/, (_, i: string, arg: string) =>
          `${arg === 'out' ? 'the Spartan gradient of theta' : arg}["${this.sparse[Number(i)].name}"]`);
        throw e;
      }
      this.sparse.forEach((l, i) => this.checkedSumSquares.set(l.name, sums[i]));
      return;
    }
    const G = (l: AnyLayer) => (this.straightThrough ? gradW[l.name] : l.grad);
    if (!this.straightThrough) for (const l of this.sparse) applyMask(gradW[l.name], l.hard, { shape: [l.rows, l.cols], block: l.block, out: l.grad });
    for (const l of this.sparse) native.maskUpstream(handle(G(l)), handle(l.theta), l.rows, l.cols, l.block[0], l.block[1], handle(l.upstream));
    const segs = this.sparse.map((l) => ({ mask: l.mask, gradMask: l.upstream, costs: l.cost, out: l.vjp }));
    softTopKBackwardSegmented(segs, betas);
    for (const l of this.sparse)
      native.spartanParamGrad(handle(G(l)), handle(l.theta), handle(l.mask), handle(l.vjp), l.rows, l.cols, l.block[0], l.block[1], handle(l.grad));
  }

  private topkastGrad(l: AnyLayer, g: F32): void {
    const shape = { shape: [l.rows, l.cols] as [number, number], block: l.block, out: l.grad };
    if (this.frozen || this.backwardExtra !== 'all') applyMask(g, this.frozen ? l.hard : l.backwardSet, shape);
    else this.storage.copy(l.grad, g);
    if (this.penalty > 0 && !this.frozen) {
      // exploration penalty: theta on A, theta / density on B \ A (a host loop: on a device, through host copies)
      const theta = this.storage.view<Float32Array>(l.theta), hard = this.storage.view<Uint8Array>(l.hard), inB = this.storage.view<Uint8Array>(l.backwardSet);
      this.storage.edit<Float32Array>(l.grad, (grad) => addExplorationPenalty(l, grad, theta, hard, inB, this.penalty, 1 / Math.max(this.maskDensity, 1e-12)));
    }
  }

  /** Advances the schedule and recomputes the masks from the current (just updated) theta. */
  step(): void {
    this.live();
    if (this.finalized) throw rangeError('ERR_SPARTAN_OPTION', 'step() after finalize()');
    const s0 = this.s, flips0 = this.flips;
    try {
      this.advance();
    } catch (e) {
      this.s = s0; // e.g. a NaN in theta: the step did not happen (the masks are untouched, see advance)
      this.flips = flips0;
      throw asSpartanError(e);
    }
  }

  private advance(): void {
    this.s += 1;
    if (this.frozen || this.sparse.length === 0) {
      this.snapshotIfDue();
      this.flips = 0;
      return;
    }
    const rho = this.maskDensity;
    const ks = this.budgets(rho);
    const updateNow = this.method !== 'imp' || (this.s - 1) % this.impInterval === 0 || this.s >= this.phases.finetuneStart;
    // every beta this step solves with, checked before anything is written
    const betas = this.method === 'spartan' && updateNow ? this.betasAt(this.s) : null;
    const badBeta = betas?.find((b) => !(b > 0 && Number.isFinite(b)));
    if (badBeta !== undefined) throw rangeError('ERR_SPARTAN_BETA', `beta at step ${this.s} is ${badBeta}; it must be finite and > 0`);
    // the scores check theta (finite, and each tile's sum within float32) before any mask or
    // snapshot changes
    if (updateNow)
      for (const l of this.sparse)
        try {
          blockScores(l.theta, l.rows, l.cols, l.block, { out: l.scores }); // sums of |theta|
        } catch (e) {
          // theta[17] is NaN -> theta["fc1.weight"][17] is NaN
          (e as Error).message = (e as Error).message.replace(/^(tile \d+ of )?theta/, (_, tile?: string) => `${tile ?? ''}theta["${l.name}"]`);
          throw e;
        }
    // the soft solve before any other write: it refuses beta x the largest score beyond what it
    // can sum (data-dependent) before it writes its masks, and reads only the scores
    if (betas) this.softMasks(ks, betas);
    this.snapshotIfDue();
    for (const l of this.sparse) this.storage.copy(l.prevHard, l.hard);
    if (updateNow) {
      this.hardMasks(ks);
      if (this.method === 'topkast') this.backwardSets(ks);
    }
    if (this.s >= this.phases.finetuneStart) this.freeze();
    this.flips = this.sparse.reduce((a, l) => a + native.countChanges(handle(l.hard), handle(l.prevHard)), 0);
  }

  /** IMP's rewind point: theta at `imp.rewindStep`. */
  private snapshotIfDue(): void {
    if (this.rewindStep === undefined || this.s !== this.rewindStep) return;
    const snap: F32[] = [];
    try {
      for (const l of this.all) snap.push(this.storage.clone(l.theta));
    } catch (e) {
      disposeTensors(snap);
      throw e;
    }
    this.disposeRewind();
    this.rewindSnapshot = snap;
  }

  /**
   * The forward sets h: the hard top-k of the scores. Calls the native op directly to pass
   * last step's band as a hint (the band path then skips its sample) and to keep the band
   * it suggests for the next step: wide enough for last step's flips and the budget's move.
   * (The CUDA top-k takes no hint and suggests none.)
   */
  private hardMasks(ks: number[]): void {
    const segs = this.sparse.map((l) => ({ values: handle(l.scores), costs: l.cost, out: handle(l.hard) }));
    const global = this.budget === 'global';
    const kList = global ? [ks[0]] : ks;
    const minCost = Math.min(...this.sparse.map((l) => l.cost));
    const moved = this.lastKs && this.lastKs.length === kList.length ? Math.max(...kList.map((k, i) => Math.abs(k - this.lastKs![i]))) : 0;
    const margin = 64 + 2 * this.flips + (2 * moved) / minCost; // entries
    const groups = kList.map((k, i) => ({ first: global ? 0 : i, count: global ? segs.length : 1, k, margin, ...(this.topkBands?.[i] ?? {}) }));
    const results = native.topKMask(segs, groups, false, true) as NativeTopKResult[];
    this.topkBands = results.map((r) => (Number.isNaN(r.nextLo) || Number.isNaN(r.nextHi) ? null : { bandLo: r.nextLo, bandHi: r.nextHi }));
    this.lastKs = kList;
  }

  private softMasks(ks: number[], betas: number[]): void {
    const segs = this.sparse.map((l) => ({ values: l.scores, costs: l.cost, out: l.mask }));
    const start = this.lambdaGuess();
    const previous = this.lambda;
    if (this.budget === 'global') {
      const r = softTopKSegmented(segs, ks[0], betas[0], { lambda: start?.[0] });
      this.lambda = [r.lambda];
      this.lastIterations = r.iterations;
    } else {
      const r = softTopKSegmented(segs, ks, betas, start ? { lambda: start } : undefined);
      this.lambda = r.lambda;
      this.lastIterations = r.iterations;
    }
    this.lambdaBefore = previous;
  }

  /**
   * The warm start of the soft top-k solve: lambda moves smoothly from step to step (beta
   * and the budget follow schedules, theta takes small steps), so the line through the
   * last two solutions lands closer than the last one alone, and Newton then usually
   * stops one pass earlier. The solve is exact either way; only its start moves.
   */
  private lambdaGuess(): number[] | null {
    const last = this.lambda, before = this.lambdaBefore;
    if (!last) return null;
    if (!before || before.length !== last.length) return last;
    return last.map((x, i) => {
      const guess = 2 * x - before[i];
      return Number.isFinite(guess) ? guess : x; // infinite lambdas (k = 0 or all) and overflow: the last one
    });
  }

  private backwardSets(ks: number[]): void {
    if (this.backwardExtra === 'all') return;
    const extra = this.backwardExtra;
    const segs = this.sparse.map((l) => ({ values: l.scores, costs: l.cost, out: l.backwardSet }));
    const total = this.sparse.reduce((a, l) => a + l.numel, 0);
    if (this.budget === 'global') topKMaskSegmented(segs, Math.min(total, Math.round(ks[0] * (1 + extra))));
    else topKMaskSegmented(segs, ks.map((k, i) => Math.min(this.sparse[i].numel, Math.round(k * (1 + extra)))));
  }

  private freeze(): void {
    const keepSoft = this.method === 'spartan' && !this.roundFrozen;
    for (const l of this.sparse) {
      const hard = this.storage.view<Uint8Array>(l.hard);
      this.storage.edit<Float32Array>(l.mask, (mask) => {
        for (let i = 0; i < l.entries; i++) mask[i] = hard[i] ? (keepSoft ? mask[i] : 1) : 0;
      });
    }
    this.frozen = true;
  }

  /** Folds the masks into theta, which is then exactly sparse; weights() returns theta from now on. */
  finalize(): void {
    this.live();
    if (this.finalized) return;
    try {
      this.weights();
      for (const l of this.sparse) this.storage.copy(l.theta, l.weights);
      for (const l of this.sparse) this.storage.fill(l.mask, 1);
    } catch (e) {
      throw asSpartanError(e);
    }
    this.finalized = true;
  }

  /** IMP weight rewinding: theta back to its snapshot at `imp.rewindStep` (the masks stay). */
  rewind(): void {
    this.live();
    if (!this.rewindSnapshot) throw rangeError('ERR_SPARTAN_OPTION', 'no rewind snapshot (imp.rewindStep not reached or not set)');
    const snap = this.rewindSnapshot;
    this.all.forEach((l, i) => this.storage.copy(l.theta, snap[i]));
    this.topkBands = null; // theta jumped: last step's band says nothing now
  }

  stats(): SparsifierStats {
    this.live();
    const perLayer: Record<string, number> = {};
    let kept = 0;
    for (const l of this.all) {
      let k = l.numel;
      if (l.sparsify && this.method !== 'dense' && !this.finalized && this.s > 0) {
        k = this.storage.countOnes(l.hard) * l.cost;
      } else if (this.finalized && l.sparsify) {
        const theta = this.storage.view<Float32Array>(l.theta);
        k = 0;
        for (let i = 0; i < l.numel; i++) k += theta[i] !== 0 ? 1 : 0;
      }
      perLayer[l.name] = k / l.numel;
      kept += k;
    }
    const fallbacks: Record<string, string> = {};
    for (const l of this.all) if (l.blockFallback) fallbacks[l.name] = l.blockFallback;
    return {
      step: this.s,
      phase: phaseAt(this.s, this.phases),
      method: this.method,
      targetDensity: this.targetDensity,
      maskDensity: this.maskDensity,
      density: { global: kept / this.totalParams, perLayer },
      beta: this.method === 'spartan' ? (this.budget === 'global' ? this.globalBeta : this.betaFor()) : Infinity,
      lambda: this.lambda ? (this.budget === 'global' ? this.lambda[0] : this.lambda.slice()) : NaN,
      iterations: this.lastIterations,
      flips: this.flips,
      frozen: this.frozen,
      finalized: this.finalized,
      blockFallbacks: fallbacks,
    };
  }

  /**
   * A structured-clone-able snapshot in host arrays, also for device parameters (theta and
   * optimizer state are checkpointed by their owners). It loads on any device.
   */
  state(): SparsifierState {
    this.live();
    const st = this.storage;
    return {
      format: 'spartan-sparsifier',
      version: 1,
      method: this.method,
      layers: this.all.map((l) => ({ name: l.name, numel: l.numel, shape: l.shape.slice(), block: [l.block[0], l.block[1]] })),
      step: this.s,
      frozen: this.frozen,
      finalized: this.finalized,
      lambda: this.lambda ? this.lambda.slice() : null,
      lambdaBefore: this.lambdaBefore ? this.lambdaBefore.slice() : null,
      lastIterations: this.lastIterations,
      flips: this.flips,
      masks: this.all.map((l) => st.snapshot<Float32Array>(l.mask)),
      hard: this.all.map((l) => st.snapshot<Uint8Array>(l.hard)),
      prevHard: this.all.map((l) => st.snapshot<Uint8Array>(l.prevHard)),
      backwardSets: this.all.map((l) => st.snapshot<Uint8Array>(l.backwardSet)),
      rewind: this.rewindSnapshot ? this.rewindSnapshot.map((t) => st.snapshot<Float32Array>(t)) : null,
    };
  }

  /** Restores a state() of a sparsifier built with the same parameters and method; checked before anything changes. */
  load(state: SparsifierState): void {
    this.live();
    const bad = (why: string) => rangeError('ERR_SPARTAN_STATE', `cannot load sparsifier state: ${why}`);
    if (typeof state !== 'object' || state === null || state.format !== 'spartan-sparsifier') throw bad('not a sparsifier state');
    if (state.version !== 1) throw bad(`unsupported version ${state.version}`);
    if (state.method !== this.method) throw bad(`method ${state.method} != ${this.method}`);
    if (!Array.isArray(state.layers) || state.layers.length !== this.all.length) throw bad('different parameters');
    for (const key of ['masks', 'hard', 'prevHard', 'backwardSets'] as const)
      if (!Array.isArray(state[key]) || state[key].length !== this.all.length) throw bad(`${key} must hold one array per parameter`);
    if (state.rewind != null && (!Array.isArray(state.rewind) || state.rewind.length !== this.all.length)) throw bad('rewind must be null or hold one snapshot per parameter');
    this.all.forEach((l, i) => {
      const s = state.layers[i];
      if (typeof s !== 'object' || s === null || !Array.isArray(s.block)) throw bad(`parameter ${i} is not described`);
      if (s.name !== l.name || s.numel !== l.numel || s.block[0] !== l.block[0] || s.block[1] !== l.block[1]) throw bad(`parameter ${i} differs (${s.name})`);
      // the same numel in another shape puts the tile masks on other weights; states written
      // before the shape was recorded have none and load as before (name, numel and block only)
      if (s.shape !== undefined && !(Array.isArray(s.shape) && s.shape.length === l.shape.length && s.shape.every((d, j) => d === l.shape[j])))
        throw bad(`parameter ${i} (${l.name}) has shape [${l.shape}]; the state's has ${Array.isArray(s.shape) && s.shape.every((d) => typeof d === 'number') ? `[${s.shape}]` : 'a malformed one'}`);
      const sizes: [ArrayLike<number> | undefined, (a: unknown) => boolean][] = [
        [state.masks[i], isFloat32Array], [state.hard[i], isUint8Array], [state.prevHard[i], isUint8Array], [state.backwardSets[i], isUint8Array],
      ];
      for (const [a, is] of sizes) if (!is(a) || a!.length !== l.entries) throw bad(`mask of ${l.name} has the wrong type or length`);
      const unit = (a: ArrayLike<number>) => {
        for (let j = 0; j < a.length; j++) if (!(a[j] >= 0 && a[j] <= 1)) return false; // a plain loop: 25M entries in ~30 ms
        return true;
      };
      if (!unit(state.masks[i]) || !unit(state.hard[i]) || !unit(state.prevHard[i]) || !unit(state.backwardSets[i]))
        throw bad(`a mask of ${l.name} holds a value outside [0, 1]`);
      if (state.rewind && (!isFloat32Array(state.rewind[i]) || state.rewind[i].length !== l.numel)) throw bad(`rewind snapshot of ${l.name}`);
    });
    // (past totalSteps is a state too: step() goes on there, the schedules at their ends)
    if (!Number.isSafeInteger(state.step) || state.step < 0) throw bad(`step ${state.step}`);
    // one lambda per budget group (infinite where a group keeps nothing or everything), or none yet
    const groups = this.budget === 'global' ? 1 : this.sparse.length;
    const numbers = (x: unknown) => x === null || x === undefined || (Array.isArray(x) && x.length === groups && x.every((v) => typeof v === 'number' && !Number.isNaN(v)));
    if (!numbers(state.lambda) || !numbers(state.lambdaBefore)) throw bad(`lambda must be null or ${groups} number${groups === 1 ? '' : 's'} (one per budget group), none NaN`);
    if (typeof state.frozen !== 'boolean' || typeof state.finalized !== 'boolean') throw bad('frozen and finalized must be true or false');
    const count = (x: unknown) => x === undefined || (Number.isSafeInteger(x) && (x as number) >= 0); // (undefined: an older state's)
    if (!count(state.lastIterations) || !count(state.flips)) throw bad('lastIterations and flips must be integers >= 0');
    const st = this.storage;
    const rewind: F32[] | null = state.rewind ? [] : null;
    try { // the device work first (allocations, uploads), the counters last
      if (state.rewind) for (const t of state.rewind) rewind!.push(st.fromHost(t));
      this.all.forEach((l, i) => {
        st.write(l.mask, state.masks[i]);
        st.write(l.hard, state.hard[i]);
        st.write(l.prevHard, state.prevHard[i]);
        st.write(l.backwardSet, state.backwardSets[i]);
      });
    } catch (e) {
      disposeTensors(rewind ?? []);
      throw asSpartanError(e);
    }
    this.s = state.step;
    this.frozen = state.frozen;
    this.finalized = state.finalized;
    this.lambda = state.lambda ? state.lambda.slice() : null;
    this.lambdaBefore = state.lambdaBefore ? state.lambdaBefore.slice() : null;
    this.lastIterations = state.lastIterations ?? 0;
    this.flips = state.flips ?? 0;
    this.disposeRewind();
    this.rewindSnapshot = rewind;
    this.topkBands = null;
    this.lastKs = null;
  }

  /**
   * Frees the sparsifier's own device memory (masks, weights and gradient buffers; never the
   * parameters, which are the caller's). Later calls then fail with ERR_SPARTAN_DISPOSED.
   * Host buffers are left to the garbage collector. Idempotent.
   */
  dispose(): void {
    this.disposed = true;
    for (const l of this.all ?? []) l.dispose();
    this.disposeRewind();
    this.storage.dispose();
  }

  private live(): void {
    if (this.disposed) throw typeError('ERR_SPARTAN_DISPOSED', 'the sparsifier has been disposed');
    for (const l of this.all) l.checkAttached();
  }

  private disposeRewind(): void {
    disposeTensors(this.rewindSnapshot ?? []);
  }
}

function addExplorationPenalty(l: AnyLayer, grad: Float32Array, theta: Float32Array, hard: Uint8Array, inB: Uint8Array, penalty: number, invDensity: number): void {
  const b0 = l.block[0], b1 = l.block[1], bc = l.cols / b1;
  for (let r = 0; r < l.rows; r++) {
    const entryRow = Math.floor(r / b0) * bc;
    for (let j = 0; j < bc; j++) {  // one tile row at a time: its entry decides the coefficient
      const e = entryRow + j;
      const coef = hard[e] ? penalty : inB[e] ? penalty * invDensity : 0;
      if (coef === 0) continue;
      const start = r * l.cols + j * b1;
      for (let i = start; i < start + b1; i++) grad[i] += coef * theta[i];
    }
  }
}
