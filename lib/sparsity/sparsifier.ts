// The Sparsifier: Spartan, IMP, Top-KAST and Dense behind one interface that a
// training loop drives every step:
//   W = sp.weights();  G = run(W);  gθ = sp.backward(G);  optimizer.step(gθ);  sp.step();
import { native, type NativeTopKResult } from '../native';
import { rangeError, typeError } from '../errors';
import { applyMask, blockScores } from '../ops/block';
import { checkFinite } from '../ops/finite';
import { softTopKBackwardSegmented, softTopKSegmented } from '../ops/softTopK';
import { topKMaskSegmented } from '../ops/topK';
import { erkDensities, type BudgetMode } from './budgets';
import { Layer, type ParamSpec } from './layer';
import { adjustedDensity, betaAt, densityAt, phaseAt, phases, type BetaCurve, type DensityCurve, type Phase, type Phases } from './schedules';

export type Method = 'spartan' | 'imp' | 'topkast' | 'dense';
const METHODS: readonly Method[] = ['spartan', 'imp', 'topkast', 'dense'];

export interface SparsifierOptions {
  params: readonly ParamSpec[];
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
  layers: { name: string; numel: number; block: [number, number] }[];
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

function num(x: unknown, name: string, ok: (v: number) => boolean, what: string): number {
  if (typeof x !== 'number') throw typeError('ERR_SPARTAN_TYPE', `${name} must be a number`);
  if (!ok(x)) throw rangeError('ERR_SPARTAN_OPTION', `${name} must be ${what} (got ${x})`);
  return x;
}

export class Sparsifier {
  readonly method: Method;
  readonly layers: readonly Layer[];
  readonly phases: Phases;
  private readonly sparse: Layer[];
  private readonly byName = new Map<string, Layer>();
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
  private rewindSnapshot: Float32Array[] | null = null;
  // Speed only: last step's hard top-k bands per budget group, the hint for this step's
  // (the masks never depend on them), and the budgets they were taken at.
  private topkBands: ({ bandLo: number; bandHi: number } | null)[] | null = null;
  private lastKs: number[] | null = null;

  constructor(opts: SparsifierOptions) {
    if (typeof opts !== 'object' || opts === null) throw typeError('ERR_SPARTAN_OPTION', 'Sparsifier options must be an object');
    if (!METHODS.includes(opts.method)) throw rangeError('ERR_SPARTAN_OPTION', `unknown method "${opts.method}" (use ${METHODS.join(', ')})`);
    this.method = opts.method;
    if (!Array.isArray(opts.params) || opts.params.length === 0) throw typeError('ERR_SPARTAN_OPTION', 'params must be a non-empty array');
    const layers = opts.params.map((p, i) => new Layer(p, i));
    for (const l of layers) {
      if (this.byName.has(l.name)) throw rangeError('ERR_SPARTAN_OPTION', `duplicate parameter name "${l.name}"`);
      this.byName.set(l.name, l);
    }
    this.layers = layers;
    this.sparse = this.method === 'dense' ? [] : layers.filter((l) => l.sparsify);
    if (opts.density !== undefined && opts.sparsity !== undefined) throw typeError('ERR_SPARTAN_OPTION', 'give density or sparsity, not both');
    const density = opts.density ?? (opts.sparsity !== undefined ? 1 - num(opts.sparsity, 'sparsity', (v) => v >= 0 && v < 1, 'in [0, 1)') : 1);
    this.target = num(density, 'density', (v) => v > 0 && v <= 1, 'in (0, 1]');
    this.phases = phases(opts.totalSteps, opts.schedule?.warmupFrac ?? 0.2, opts.schedule?.finetuneFrac ?? 0.2);
    this.budget = opts.budget ?? 'global';
    if (!['global', 'uniform', 'erk'].includes(this.budget)) throw rangeError('ERR_SPARTAN_OPTION', `unknown budget "${this.budget}"`);
    this.adjust = opts.adjustDensity ?? true;
    this.densityCurve = opts.schedule?.density ?? (this.method === 'imp' ? 'cubic' : 'linear');
    this.betaCurve = opts.schedule?.beta ?? 'linear';
    if (!['linear', 'cosine', 'cubic'].includes(this.densityCurve)) throw rangeError('ERR_SPARTAN_OPTION', `unknown density schedule "${this.densityCurve}"`);
    if (!['linear', 'cosine', 'exponential'].includes(this.betaCurve)) throw rangeError('ERR_SPARTAN_OPTION', `unknown beta schedule "${this.betaCurve}"`);
    this.beta0 = num(opts.beta0 ?? 1, 'beta0', (v) => v > 0 && Number.isFinite(v), 'finite and > 0');
    this.betaMax = num(opts.betaMax ?? 10, 'betaMax', (v) => v > 0 && Number.isFinite(v), 'finite and > 0');
    this.roundFrozen = opts.roundFrozen ?? false;
    this.straightThrough = opts.straightThrough ?? true;
    this.impInterval = num(opts.imp?.interval ?? 1, 'imp.interval', (v) => Number.isSafeInteger(v) && v >= 1, 'a positive integer');
    this.rewindStep = opts.imp?.rewindStep;
    this.backwardExtra = opts.topkast?.backwardExtra ?? 'all';
    if (this.backwardExtra !== 'all') num(this.backwardExtra, 'topkast.backwardExtra', (v) => v >= 0, '>= 0 or "all"');
    this.penalty = num(opts.topkast?.explorationPenalty ?? 0, 'topkast.explorationPenalty', (v) => v >= 0, '>= 0');
    this.totalParams = layers.reduce((a, l) => a + l.numel, 0);
    this.maskedParams = this.sparse.reduce((a, l) => a + l.numel, 0);
    if (this.sparse.length > 0 && this.adjust) adjustedDensity(this.target, this.totalParams, this.maskedParams); // reachable?
    for (const l of layers) l.weights.set(l.theta); // step 0: dense
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
  betaFor(layer?: Layer): number {
    const scale = layer ? Math.sqrt(layer.cost) : 1;
    return betaAt(this.s, this.beta0, this.betaMax * scale, this.phases, this.betaCurve);
  }

  /** The single beta of a global budget: the largest block scaling among the layers. */
  private get globalBeta(): number {
    const scale = Math.max(1, ...this.sparse.map((l) => Math.sqrt(l.cost)));
    return betaAt(this.s, this.beta0, this.betaMax * scale, this.phases, this.betaCurve);
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

  /** The weights to feed the forward pass, by parameter name (stable buffers). */
  weights(): Record<string, Float32Array> {
    const out: Record<string, Float32Array> = {};
    for (const l of this.layers) {
      if (this.method === 'dense') {
        out[l.name] = l.theta; // no masking, no copy
        continue;
      }
      if (l.sparsify && !this.finalized) {
        const shape = { shape: [l.rows, l.cols] as [number, number], block: l.block, out: l.weights };
        if (this.method === 'spartan') applyMask(l.theta, l.mask, { ...shape, hard: l.hard });
        else applyMask(l.theta, l.hard, shape);
      } else if (l.weights !== l.theta) {
        l.weights.set(l.theta);
      }
      out[l.name] = l.weights;
    }
    return out;
  }

  /**
   * Turns dL/dW (by parameter name) into dL/dtheta for the method. Validates everything first.
   * Where nothing changes the gradient (dense, unsparsified tensors, the first step) the
   * result holds the caller's own `gradW` array, not a copy; elsewhere a buffer the sparsifier
   * reuses every step. Read it (an optimizer step), do not edit it in place.
   */
  backward(gradW: Record<string, Float32Array>): Record<string, Float32Array> {
    if (typeof gradW !== 'object' || gradW === null) throw typeError('ERR_SPARTAN_TYPE', 'gradW must be an object mapping parameter names to Float32Arrays');
    for (const l of this.layers) {
      const g = gradW[l.name];
      if (!(g instanceof Float32Array)) throw typeError('ERR_SPARTAN_TYPE', `gradW["${l.name}"] must be a Float32Array`);
      if (g.length !== l.numel) throw rangeError('ERR_SPARTAN_LENGTH', `gradW["${l.name}"] has length ${g.length}; expected ${l.numel}`);
    }
    for (const name of Object.keys(gradW))
      if (!this.byName.has(name)) throw rangeError('ERR_SPARTAN_OPTION', `gradW has an unknown parameter "${name}"`);
    this.checkedSumSquares.clear();
    const active = this.s > 0 && !this.finalized;
    const spartanGrad = this.method === 'spartan' && active && !this.frozen;
    const fused = spartanGrad && this.sparse.every((l) => !l.blocked); // element masks: one fused kernel
    // NaN/Inf check before any write. The fused Spartan kernel checks its own gradients before
    // it writes anything (a second read of 1 MB a step on LeNet-300-100 otherwise).
    const sums = new Map<string, number>();
    for (const l of this.layers) if (!(fused && l.sparsify)) sums.set(l.name, checkFinite(gradW[l.name], `gradW["${l.name}"]`));

    const out: Record<string, Float32Array> = {};
    if (spartanGrad) this.spartanBackward(gradW, fused);
    for (const l of this.layers) {
      const g = gradW[l.name];
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
    return out;
  }

  private spartanBackward(gradW: Record<string, Float32Array>, fused: boolean): void {
    const betas = this.budget === 'global' ? this.globalBeta : this.sparse.map((l) => this.betaFor(l));
    if (fused) {
      // element masks: one fused kernel, two passes (equal bit for bit to the three below)
      const segs = this.sparse.map((l) => ({ gradW: gradW[l.name], theta: l.theta, mask: l.mask, hard: this.straightThrough ? undefined : l.hard, out: l.grad }));
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
    const G = (l: Layer) => (this.straightThrough ? gradW[l.name] : l.grad);
    if (!this.straightThrough) for (const l of this.sparse) applyMask(gradW[l.name], l.hard, { shape: [l.rows, l.cols], block: l.block, out: l.grad });
    for (const l of this.sparse) native.maskUpstream(G(l), l.theta, l.rows, l.cols, l.block[0], l.block[1], l.upstream);
    const segs = this.sparse.map((l) => ({ mask: l.mask, gradMask: l.upstream, costs: l.cost, out: l.vjp }));
    softTopKBackwardSegmented(segs, betas);
    for (const l of this.sparse)
      native.spartanParamGrad(G(l), l.theta, l.mask, l.vjp, l.rows, l.cols, l.block[0], l.block[1], l.grad);
  }

  private topkastGrad(l: Layer, g: Float32Array): void {
    const shape = { shape: [l.rows, l.cols] as [number, number], block: l.block, out: l.grad };
    if (this.frozen || this.backwardExtra !== 'all') applyMask(g, this.frozen ? l.hard : l.backwardSet, shape);
    else l.grad.set(g);
    if (this.penalty > 0 && !this.frozen) {
      // exploration penalty: theta on A, theta / density on B \ A
      const inv = 1 / Math.max(this.maskDensity, 1e-12);
      const b0 = l.block[0], b1 = l.block[1], bc = l.cols / b1;
      for (let r = 0; r < l.rows; r++) {
        const entryRow = Math.floor(r / b0) * bc;
        for (let j = 0; j < bc; j++) {  // one tile row at a time: its entry decides the coefficient
          const e = entryRow + j;
          const coef = l.hard[e] ? this.penalty : l.backwardSet[e] ? this.penalty * inv : 0;
          if (coef === 0) continue;
          const start = r * l.cols + j * b1;
          for (let i = start; i < start + b1; i++) l.grad[i] += coef * l.theta[i];
        }
      }
    }
  }

  /** Advances the schedule and recomputes the masks from the current (just updated) theta. */
  step(): void {
    if (this.finalized) throw rangeError('ERR_SPARTAN_OPTION', 'step() after finalize()');
    this.s += 1;
    if (this.rewindStep !== undefined && this.s === this.rewindStep) this.rewindSnapshot = this.layers.map((l) => l.theta.slice());
    if (this.frozen || this.sparse.length === 0) {
      this.flips = 0;
      return;
    }
    for (const l of this.sparse) l.prevHard.set(l.hard);
    const rho = this.maskDensity;
    const ks = this.budgets(rho);
    const updateNow = this.method !== 'imp' || (this.s - 1) % this.impInterval === 0 || this.s >= this.phases.finetuneStart;
    if (updateNow) {
      for (const l of this.sparse) blockScores(l.theta, l.rows, l.cols, l.block, { out: l.scores }); // sums of |theta|
      this.hardMasks(ks);
      if (this.method === 'spartan') this.softMasks(ks);
      if (this.method === 'topkast') this.backwardSets(ks);
    }
    if (this.s >= this.phases.finetuneStart) this.freeze();
    this.flips = this.sparse.reduce((a, l) => a + native.countChanges(l.hard, l.prevHard), 0);
  }

  /**
   * The forward sets h: the hard top-k of the scores. Calls the native op directly to pass
   * last step's band as a hint (the band path then skips its sample) and to keep the band
   * it suggests for the next step: wide enough for last step's flips and the budget's move.
   */
  private hardMasks(ks: number[]): void {
    const segs = this.sparse.map((l) => ({ values: l.scores, costs: l.cost, out: l.hard }));
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

  private softMasks(ks: number[]): void {
    const segs = this.sparse.map((l) => ({ values: l.scores, costs: l.cost, out: l.mask }));
    const start = this.lambdaGuess();
    const previous = this.lambda;
    if (this.budget === 'global') {
      const r = softTopKSegmented(segs, ks[0], this.globalBeta, { lambda: start?.[0] });
      this.lambda = [r.lambda];
      this.lastIterations = r.iterations;
    } else {
      const r = softTopKSegmented(segs, ks, this.sparse.map((l) => this.betaFor(l)), start ? { lambda: start } : undefined);
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
    for (const l of this.sparse) {
      for (let i = 0; i < l.entries; i++) l.mask[i] = l.hard[i] ? (this.method === 'spartan' && !this.roundFrozen ? l.mask[i] : 1) : 0;
    }
    this.frozen = true;
  }

  /** Folds the masks into theta, which is then exactly sparse; weights() returns theta from now on. */
  finalize(): void {
    if (this.finalized) return;
    this.weights();
    for (const l of this.sparse) {
      l.theta.set(l.weights);
      l.mask.fill(1);
    }
    this.finalized = true;
  }

  /** IMP weight rewinding: theta back to its snapshot at `imp.rewindStep` (the masks stay). */
  rewind(): void {
    if (!this.rewindSnapshot) throw rangeError('ERR_SPARTAN_OPTION', 'no rewind snapshot (imp.rewindStep not reached or not set)');
    this.layers.forEach((l, i) => l.theta.set(this.rewindSnapshot![i]));
    this.topkBands = null; // theta jumped: last step's band says nothing now
  }

  stats(): SparsifierStats {
    const perLayer: Record<string, number> = {};
    let kept = 0;
    for (const l of this.layers) {
      let k = l.numel;
      if (l.sparsify && this.method !== 'dense' && !this.finalized && this.s > 0) {
        k = 0;
        for (let i = 0; i < l.entries; i++) k += l.hard[i];
        k *= l.cost;
      } else if (this.finalized && l.sparsify) {
        k = 0;
        for (let i = 0; i < l.numel; i++) k += l.theta[i] !== 0 ? 1 : 0;
      }
      perLayer[l.name] = k / l.numel;
      kept += k;
    }
    const fallbacks: Record<string, string> = {};
    for (const l of this.layers) if (l.blockFallback) fallbacks[l.name] = l.blockFallback;
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

  /** A structured-clone-able snapshot (theta and optimizer state are checkpointed by their owners). */
  state(): SparsifierState {
    return {
      format: 'spartan-sparsifier',
      version: 1,
      method: this.method,
      layers: this.layers.map((l) => ({ name: l.name, numel: l.numel, block: [l.block[0], l.block[1]] })),
      step: this.s,
      frozen: this.frozen,
      finalized: this.finalized,
      lambda: this.lambda ? this.lambda.slice() : null,
      lambdaBefore: this.lambdaBefore ? this.lambdaBefore.slice() : null,
      lastIterations: this.lastIterations,
      flips: this.flips,
      masks: this.layers.map((l) => l.mask.slice()),
      hard: this.layers.map((l) => l.hard.slice()),
      prevHard: this.layers.map((l) => l.prevHard.slice()),
      backwardSets: this.layers.map((l) => l.backwardSet.slice()),
      rewind: this.rewindSnapshot ? this.rewindSnapshot.map((t) => t.slice()) : null,
    };
  }

  /** Restores a state() of a sparsifier built with the same parameters and method; checked before anything changes. */
  load(state: SparsifierState): void {
    const bad = (why: string) => rangeError('ERR_SPARTAN_STATE', `cannot load sparsifier state: ${why}`);
    if (typeof state !== 'object' || state === null || state.format !== 'spartan-sparsifier') throw bad('not a sparsifier state');
    if (state.version !== 1) throw bad(`unsupported version ${state.version}`);
    if (state.method !== this.method) throw bad(`method ${state.method} != ${this.method}`);
    if (!Array.isArray(state.layers) || state.layers.length !== this.layers.length) throw bad('different parameters');
    this.layers.forEach((l, i) => {
      const s = state.layers[i];
      if (s.name !== l.name || s.numel !== l.numel || s.block[0] !== l.block[0] || s.block[1] !== l.block[1]) throw bad(`parameter ${i} differs (${s.name})`);
      const sizes: [ArrayLike<number> | undefined, number, unknown][] = [
        [state.masks[i], l.entries, Float32Array], [state.hard[i], l.entries, Uint8Array],
        [state.prevHard[i], l.entries, Uint8Array], [state.backwardSets[i], l.entries, Uint8Array],
      ];
      for (const [a, n, T] of sizes) if (!(a instanceof (T as typeof Float32Array)) || a.length !== n) throw bad(`mask of ${l.name} has the wrong type or length`);
      if (state.rewind && (!(state.rewind[i] instanceof Float32Array) || state.rewind[i].length !== l.numel)) throw bad(`rewind snapshot of ${l.name}`);
    });
    if (!Number.isSafeInteger(state.step) || state.step < 0 || state.step > this.phases.totalSteps) throw bad(`step ${state.step}`);
    const numbers = (x: unknown) => x === null || x === undefined || (Array.isArray(x) && x.every((v) => typeof v === 'number'));
    if (!numbers(state.lambda) || !numbers(state.lambdaBefore)) throw bad('lambda must be an array of numbers or null');
    this.s = state.step;
    this.frozen = state.frozen;
    this.finalized = state.finalized;
    this.lambda = state.lambda ? state.lambda.slice() : null;
    this.lambdaBefore = state.lambdaBefore ? state.lambdaBefore.slice() : null;
    this.lastIterations = state.lastIterations;
    this.flips = state.flips;
    this.layers.forEach((l, i) => {
      l.mask.set(state.masks[i]);
      l.hard.set(state.hard[i]);
      l.prevHard.set(state.prevHard[i]);
      l.backwardSet.set(state.backwardSets[i]);
    });
    this.rewindSnapshot = state.rewind ? state.rewind.map((t) => t.slice()) : null;
    this.topkBands = null;
    this.lastKs = null;
  }
}
