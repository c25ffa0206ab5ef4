import { native } from '../native';
import { handle } from '../tensor';
import { belowOne, Optimizer, positive, type NamedParam, type ParamData } from './optimizer';
import { isFloat32Array } from '../util/typedArrays';
import { checkKnownKeys, optionKeys } from '../options';

export interface AdamWOptions {
  lr: number;
  beta1?: number;
  beta2?: number;
  eps?: number;
  weightDecay?: number;
  clipNorm?: number;
  noDecay?: readonly string[];
}

const ADAMW_OPTS = optionKeys<AdamWOptions>({ lr: true, beta1: true, beta2: true, eps: true, weightDecay: true, clipNorm: true, noDecay: true });

/** AdamW (decoupled weight decay, bias-corrected moments), one fused native pass per tensor. */
export class AdamW extends Optimizer {
  protected kind = 'adamw';
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  readonly weightDecay: number;
  private readonly moments = new Map<string, [ParamData, ParamData]>();

  constructor(params: readonly NamedParam[], opts: AdamWOptions) {
    super(params, opts?.lr, opts?.clipNorm, opts?.noDecay);
    checkKnownKeys(opts, ADAMW_OPTS, 'AdamW options');
    this.beta1 = belowOne(opts.beta1 ?? 0.9, 'beta1');
    this.beta2 = belowOne(opts.beta2 ?? 0.999, 'beta2');
    this.eps = positive(opts.eps ?? 1e-8, 'eps');
    this.weightDecay = positive(opts.weightDecay ?? 0.01, 'weightDecay', true);
    for (const p of this.params) {
      const n = isFloat32Array(p.data) ? p.data.length : p.data.size;
      this.moments.set(p.name, [this.zeros(n), this.zeros(n)]);
    }
  }

  protected buffersOf(name: string): ParamData[] {
    return this.moments.get(name)!;
  }

  protected update(p: NamedParam, grad: ParamData, scale: number): void {
    const [m, v] = this.moments.get(p.name)!;
    native.adamwStep(handle(p.data), handle(grad), handle(m), handle(v), {
      lr: this.lr, beta1: this.beta1, beta2: this.beta2, eps: this.eps,
      weightDecay: this.decays(p.name) ? this.weightDecay : 0, step: this.t, gradScale: scale,
    });
  }
}
