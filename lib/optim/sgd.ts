import { native } from '../native';
import { booleanOption, checkKnownKeys, optionKeys } from '../options';
import { handle, sizeOf } from '../tensor';
import { Optimizer, positive, type NamedParam, type ParamData } from './optimizer';

export interface SgdOptions {
  lr: number;
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
  weightDecay?: number;
  clipNorm?: number;
  /** Parameter names that get no weight decay (e.g. biases, norms). */
  noDecay?: readonly string[];
}

const SGD_OPTS = optionKeys<SgdOptions>({ lr: true, momentum: true, dampening: true, nesterov: true, weightDecay: true, clipNorm: true, noDecay: true });

/** SGD with momentum / Nesterov and L2 weight decay, PyTorch semantics, one fused native pass per tensor. */
export class SGD extends Optimizer {
  protected kind = 'sgd';
  readonly momentum: number;
  readonly dampening: number;
  readonly nesterov: boolean;
  readonly weightDecay: number;
  private readonly bufs = new Map<string, ParamData>();

  constructor(params: readonly NamedParam[], opts: SgdOptions) {
    super(params, opts?.lr, opts?.clipNorm, opts?.noDecay);
    checkKnownKeys(opts, SGD_OPTS, 'SGD options');
    this.momentum = positive(opts.momentum ?? 0, 'momentum', true);
    this.dampening = positive(opts.dampening ?? 0, 'dampening', true);
    this.nesterov = booleanOption(opts.nesterov, 'nesterov', false);
    this.weightDecay = positive(opts.weightDecay ?? 0, 'weightDecay', true);
    for (const p of this.params) this.bufs.set(p.name, this.zeros(this.momentum > 0 ? sizeOf(p.data) : 0));
  }

  protected buffersOf(name: string): ParamData[] {
    return [this.bufs.get(name)!];
  }

  protected update(p: NamedParam, grad: ParamData, scale: number): void {
    native.sgdStep(handle(p.data), handle(grad), this.momentum > 0 ? handle(this.bufs.get(p.name)!) : null, {
      lr: this.lr, momentum: this.momentum, dampening: this.dampening, nesterov: this.nesterov,
      weightDecay: this.decays(p.name) ? this.weightDecay : 0, firstStep: this.t === 1, gradScale: scale,
    });
  }
}
