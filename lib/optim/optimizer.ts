// Fused native optimizer steps over named parameters, with global gradient-norm
// clipping folded into the step (a scale, not an extra pass). The gradients are
// validated (finite, right length) before any parameter changes. Parameters may be
// host arrays or float32 CUDA Tensors (then gradients and buffers live there too).
import { native, type DeviceBuffer } from '../native';
import { checkFinite } from '../ops/finite';
import { nameList, numberOption } from '../options';
import { rangeError, typeError } from '../errors';
import { asSpartanError, disposeTensors, handle, sizeOf, tensor, Tensor, type Device } from '../tensor';
import { isFloat32Array } from '../util/typedArrays';

/** A parameter's values: a host array, or a float32 CUDA Tensor (updated in place). */
export type ParamData = Float32Array | Tensor;

export interface NamedParam<D extends ParamData = ParamData> {
  name: string;
  data: D;
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
  /** Host copies, also for CUDA parameters. */
  buffers: Record<string, Float32Array[]>;
}

export function positive(x: unknown, name: string, allowZero = false): number {
  return numberOption(x, name, (v) => Number.isFinite(v) && (allowZero ? v >= 0 : v > 0), `finite and ${allowZero ? '>= 0' : '> 0'}`);
}

/** A decay rate in [0, 1): AdamW's beta1 / beta2 (1 would divide by 1 - 1 in the bias correction). */
export function belowOne(x: unknown, name: string): number {
  return numberOption(x, name, (v) => v >= 0 && v < 1, 'in [0, 1)');
}

export abstract class Optimizer {
  protected readonly params: readonly NamedParam[];
  /** Where the parameters live: every one on the same device. */
  readonly device: Device;
  protected t = 0;
  private disposed = false;
  /** Learning rate; may be changed between steps (schedules). */
  lr: number;
  readonly clipNorm?: number;
  private readonly noDecay: ReadonlySet<string>;

  constructor(params: readonly NamedParam[], lr: number, clipNorm: number | undefined, noDecay: readonly string[] | undefined) {
    if (!Array.isArray(params) || params.length === 0) throw typeError('ERR_SPARTAN_OPTION', 'params must be a non-empty array of { name, data }');
    for (let i = 0; i < params.length; i++) { // a plain loop: forEach skips the holes of [, p]
      const p = params[i];
      const ok = isFloat32Array(p?.data) || (p?.data instanceof Tensor && p.data.dtype === 'float32');
      if (typeof p?.name !== 'string' || !ok) throw typeError('ERR_SPARTAN_TYPE', `params[${i}] must be { name: string, data: Float32Array | float32 Tensor }`);
    }
    const devices = new Set(params.map((p) => (p.data instanceof Tensor ? p.data.device : 'cpu')));
    if (devices.size > 1) throw typeError('ERR_SPARTAN_DEVICE', 'params live on cpu and cuda; an optimizer works on one device');
    this.device = devices.has('cuda') ? 'cuda' : 'cpu';
    const names = new Set<string>();
    for (const p of params) {
      if (names.has(p.name)) throw rangeError('ERR_SPARTAN_OPTION', `two parameters are named "${p.name}"; each needs its own name (its momentum or moments are kept by name)`);
      names.add(p.name);
    }
    this.params = params.slice();
    this.lr = positive(lr, 'lr');
    if (clipNorm !== undefined) this.clipNorm = positive(clipNorm, 'clipNorm');
    this.noDecay = new Set(nameList(noDecay, 'noDecay') ?? []);
  }

  get stepCount(): number {
    return this.t;
  }

  protected decays(name: string): boolean {
    return !this.noDecay.has(name);
  }

  /**
   * Applies one update from dL/dtheta (by name): Float32Arrays for host parameters, CUDA Tensors for CUDA ones.
   * @param checked sum(g^2) of gradients the caller has already checked finite, by name
   *   (`Sparsifier.checkedSumSquares` right after `backward()`, host or device): those are not
   *   scanned again, so the caller vouches for them. With `clipNorm`, note the sums may differ from a scan's
   *   in the last bits (another summation order), and with them the clip factor.
   */
  step(grads: Record<string, ParamData>, checked?: ReadonlyMap<string, number>): StepResult {
    this.live();
    positive(this.lr, 'lr', true); // a schedule sets it between steps (0 at a cosine's end): checked before anything moves
    if (typeof grads !== 'object' || grads === null) throw typeError('ERR_SPARTAN_TYPE', 'grads must map parameter names to gradients');
    if (checked !== undefined && !(checked instanceof Map)) throw typeError('ERR_SPARTAN_TYPE', 'checked must be a Map of parameter name to the sum of squares of its checked gradient');
    let sq = 0;
    // each gradient read once: a getter handing out another array at each read must not get
    // one array checked and another applied
    const got = new Map<string, ParamData>();
    for (const p of this.params) {
      const g = grads[p.name];
      got.set(p.name, g);
      // a gradient is like its parameter: a Float32Array, or a float32 Tensor on the same device
      const want = p.data instanceof Tensor ? `a float32 ${p.data.device} Tensor` : 'a Float32Array';
      const ok = p.data instanceof Tensor ? g instanceof Tensor && g.device === p.data.device && g.dtype === 'float32' : isFloat32Array(g);
      if (!ok) throw typeError(g instanceof Tensor || isFloat32Array(g) ? 'ERR_SPARTAN_DEVICE' : 'ERR_SPARTAN_TYPE', `grads["${p.name}"] must be ${want}`);
      if (sizeOf(g) !== sizeOf(p.data)) throw rangeError('ERR_SPARTAN_LENGTH', `grads["${p.name}"] has length ${sizeOf(g)}; expected ${sizeOf(p.data)}`);
    }
    // gradients for names this optimizer does not hold are ignored: leaving a parameter out of
    // the optimizer is how a caller freezes it while Sparsifier.backward returns every gradient
    try {
      for (const p of this.params) {
        const known = checked?.get(p.name);
        if (known !== undefined && !(typeof known === 'number' && Number.isFinite(known) && known >= 0))
          throw rangeError('ERR_SPARTAN_NON_FINITE', `checked vouches for grads["${p.name}"] with the sum of squares ${known}: a finite gradient's is a finite number >= 0`);
        sq += known ?? checkFinite(handle(got.get(p.name)!), `grads["${p.name}"]`); // throws on NaN/Inf: nothing updated
      }
      const norm = Math.sqrt(sq);
      const scale = this.clipNorm !== undefined && norm > this.clipNorm ? this.clipNorm / (norm + 1e-6) : 1;
      this.t += 1;
      for (const p of this.params) this.update(p, got.get(p.name)!, scale);
      return { gradNorm: norm, scale };
    } catch (e) {
      throw asSpartanError(e);
    }
  }

  protected abstract update(p: NamedParam, grad: ParamData, scale: number): void;
  protected abstract kind: string;
  protected abstract buffersOf(name: string): ParamData[];

  /** A zero buffer of n values where the parameters live. */
  protected zeros(n: number): ParamData {
    return this.device === 'cuda' ? tensor(new Float32Array(n), { device: 'cuda' }) : new Float32Array(n);
  }

  /** Frees the optimizer's device buffers now (momentum, moments; never the parameters); later calls throw ERR_SPARTAN_DISPOSED. Idempotent. */
  dispose(): void {
    this.disposed = true;
    disposeTensors(this.params.flatMap((p) => this.buffersOf(p.name)));
  }

  private live(): void {
    if (this.disposed) throw typeError('ERR_SPARTAN_DISPOSED', 'the optimizer has been disposed');
  }

  state(): OptimizerState {
    this.live();
    const buffers: Record<string, Float32Array[]> = {};
    for (const p of this.params) buffers[p.name] = this.buffersOf(p.name).map((b) => (b instanceof Tensor ? b.toFloat32Array() : b.slice()));
    return { format: 'spartan-optimizer', kind: this.kind, step: this.t, buffers };
  }

  load(state: OptimizerState): void {
    this.live();
    const bad = (why: string) => rangeError('ERR_SPARTAN_STATE', `cannot load optimizer state: ${why}`);
    if (state?.format !== 'spartan-optimizer' || state.kind !== this.kind) throw bad(`not a ${this.kind} state`);
    if (typeof state.buffers !== 'object' || state.buffers === null) throw bad('buffers missing');
    for (const p of this.params) {
      const src = state.buffers[p.name], dst = this.buffersOf(p.name);
      if (!Array.isArray(src) || src.length !== dst.length || src.some((b, i) => !isFloat32Array(b) || b.length !== sizeOf(dst[i]))) throw bad(`buffers of ${p.name}`);
    }
    if (!Number.isSafeInteger(state.step) || state.step < 0) throw bad(`step ${state.step}`);
    for (const p of this.params)
      this.buffersOf(p.name).forEach((b, i) => {
        const src = state.buffers[p.name][i];
        if (b instanceof Tensor) {
          if (src.length) native.cudaUpload(b.handle as DeviceBuffer, src, false);
        } else b.set(src);
      });
    this.t = state.step;
  }
}
