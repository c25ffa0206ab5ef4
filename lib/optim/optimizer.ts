// Fused native optimizer steps over named parameters, with global gradient-norm
// clipping folded into the step (a scale, not an extra pass). The gradients are
// validated (finite, right length) before any parameter changes.
import { checkFinite } from '../ops/finite';
import { rangeError, typeError } from '../errors';

export interface NamedParam {
  name: string;
  data: Float32Array;
}

export interface StepResult {
  /** The global L2 norm of the gradients before clipping. */
  gradNorm: number;
  /** The factor applied (1 unless clipped). */
  scale: number;
}

export interface OptimizerState {
  format: 'spartan-optimizer';
  kind: string;
  step: number;
  buffers: Record<string, Float32Array[]>;
}

export function positive(x: unknown, name: string, allowZero = false): number {
  if (typeof x !== 'number') throw typeError('ERR_SPARTAN_TYPE', `${name} must be a number`);
  if (!Number.isFinite(x) || x < 0 || (!allowZero && x === 0)) throw rangeError('ERR_SPARTAN_OPTION', `${name} must be finite and ${allowZero ? '>= 0' : '> 0'} (got ${x})`);
  return x;
}

export abstract class Optimizer {
  protected readonly params: readonly NamedParam[];
  protected t = 0;
  /** Learning rate; may be changed between steps (schedules). */
  lr: number;
  readonly clipNorm?: number;
  private readonly noDecay: ReadonlySet<string>;

  constructor(params: readonly NamedParam[], lr: number, clipNorm: number | undefined, noDecay: readonly string[] | undefined) {
    if (!Array.isArray(params) || params.length === 0) throw typeError('ERR_SPARTAN_OPTION', 'params must be a non-empty array of { name, data }');
    params.forEach((p, i) => {
      if (typeof p?.name !== 'string' || !(p.data instanceof Float32Array)) throw typeError('ERR_SPARTAN_TYPE', `params[${i}] must be { name: string, data: Float32Array }`);
    });
    this.params = params.slice();
    this.lr = positive(lr, 'lr');
    if (clipNorm !== undefined) this.clipNorm = positive(clipNorm, 'clipNorm');
    this.noDecay = new Set(noDecay ?? []);
  }

  get stepCount(): number {
    return this.t;
  }

  protected decays(name: string): boolean {
    return !this.noDecay.has(name);
  }

  /** Applies one update from dL/dtheta (by name). */
  step(grads: Record<string, Float32Array>): StepResult {
    if (typeof grads !== 'object' || grads === null) throw typeError('ERR_SPARTAN_TYPE', 'grads must map parameter names to Float32Arrays');
    let sq = 0;
    for (const p of this.params) {
      const g = grads[p.name];
      if (!(g instanceof Float32Array)) throw typeError('ERR_SPARTAN_TYPE', `grads["${p.name}"] must be a Float32Array`);
      if (g.length !== p.data.length) throw rangeError('ERR_SPARTAN_LENGTH', `grads["${p.name}"] has length ${g.length}; expected ${p.data.length}`);
    }
    for (const p of this.params) sq += checkFinite(grads[p.name], `grads["${p.name}"]`); // throws on NaN/Inf: nothing updated
    const norm = Math.sqrt(sq);
    const scale = this.clipNorm !== undefined && norm > this.clipNorm ? this.clipNorm / (norm + 1e-6) : 1;
    this.t += 1;
    for (const p of this.params) this.update(p, grads[p.name], scale);
    return { gradNorm: norm, scale };
  }

  protected abstract update(p: NamedParam, grad: Float32Array, scale: number): void;
  protected abstract kind: string;
  protected abstract buffersOf(name: string): Float32Array[];

  state(): OptimizerState {
    const buffers: Record<string, Float32Array[]> = {};
    for (const p of this.params) buffers[p.name] = this.buffersOf(p.name).map((b) => b.slice());
    return { format: 'spartan-optimizer', kind: this.kind, step: this.t, buffers };
  }

  load(state: OptimizerState): void {
    const bad = (why: string) => rangeError('ERR_SPARTAN_STATE', `cannot load optimizer state: ${why}`);
    if (state?.format !== 'spartan-optimizer' || state.kind !== this.kind) throw bad(`not a ${this.kind} state`);
    for (const p of this.params) {
      const src = state.buffers[p.name], dst = this.buffersOf(p.name);
      if (!src || src.length !== dst.length || src.some((b, i) => !(b instanceof Float32Array) || b.length !== dst[i].length)) throw bad(`buffers of ${p.name}`);
    }
    if (!Number.isSafeInteger(state.step) || state.step < 0) throw bad(`step ${state.step}`);
    for (const p of this.params) this.buffersOf(p.name).forEach((b, i) => b.set(state.buffers[p.name][i]));
    this.t = state.step;
  }
}
