// Training-phase schedules (spec §3.3): density annealed over the warm-up, beta
// annealed until the fine-tune phase starts, masks frozen from then on.
import { rangeError, typeError } from '../errors';

export type DensityCurve = 'linear' | 'cosine' | 'cubic';
export type BetaCurve = 'linear' | 'cosine' | 'exponential';
export type Phase = 'dense' | 'warmup' | 'anneal' | 'finetune';

export interface Phases {
  totalSteps: number;
  warmupSteps: number; // density reaches its target here
  finetuneStart: number; // masks freeze here; beta reaches its maximum here
}

export function phases(totalSteps: number, warmupFrac: number, finetuneFrac: number): Phases {
  if (!Number.isSafeInteger(totalSteps) || totalSteps < 1) throw rangeError('ERR_SPARTAN_OPTION', `totalSteps must be a positive integer (got ${totalSteps})`);
  for (const [name, f] of [['warmupFrac', warmupFrac], ['finetuneFrac', finetuneFrac]] as const)
    if (typeof f !== 'number' || !(f >= 0 && f <= 1)) throw rangeError('ERR_SPARTAN_OPTION', `${name} must be in [0, 1] (got ${f})`);
  if (warmupFrac + finetuneFrac > 1) throw rangeError('ERR_SPARTAN_OPTION', 'warmupFrac + finetuneFrac must not exceed 1');
  const warmupSteps = Math.floor(warmupFrac * totalSteps);
  return { totalSteps, warmupSteps, finetuneStart: totalSteps - Math.floor(finetuneFrac * totalSteps) };
}

const clip01 = (x: number) => Math.min(1, Math.max(0, x));

/** The phase a step belongs to (step 0 is the dense step before the first mask). */
export function phaseAt(step: number, p: Phases): Phase {
  if (step === 0) return 'dense';
  if (step < p.warmupSteps) return 'warmup';
  return step < p.finetuneStart ? 'anneal' : 'finetune';
}

/** Density at step s: 1 at s = 0, the target from the end of the warm-up on. */
export function densityAt(step: number, target: number, p: Phases, curve: DensityCurve): number {
  const r = p.warmupSteps === 0 ? 1 : clip01(step / p.warmupSteps);
  switch (curve) {
    case 'linear': return 1 + r * (target - 1);
    case 'cosine': return 1 + ((1 - Math.cos(Math.PI * r)) / 2) * (target - 1);
    case 'cubic': return target + (1 - target) * (1 - r) ** 3; // Zhu & Gupta (2017)
    default: throw typeError('ERR_SPARTAN_OPTION', `unknown density schedule "${curve}"`);
  }
}

/** Beta at step s, from beta0 to betaTarget (already block-scaled) at the fine-tune start. */
export function betaAt(step: number, beta0: number, betaTarget: number, p: Phases, curve: BetaCurve): number {
  const r = p.finetuneStart === 0 ? 1 : clip01(step / p.finetuneStart);
  switch (curve) {
    case 'linear': return beta0 + r * (betaTarget - beta0);
    case 'cosine': return beta0 + ((1 - Math.cos(Math.PI * r)) / 2) * (betaTarget - beta0);
    case 'exponential': return beta0 * (betaTarget / beta0) ** r;
    default: throw typeError('ERR_SPARTAN_OPTION', `unknown beta schedule "${curve}"`);
  }
}

/**
 * The density the sparsified parameters need so that the whole model (unsparsified
 * parameters counted as dense) has overall density rho: 1 - (1 - rho) P_total / P_masked.
 */
export function adjustedDensity(rho: number, totalParams: number, maskedParams: number): number {
  const adj = 1 - ((1 - rho) * totalParams) / maskedParams;
  if (!(adj > 0))
    throw rangeError('ERR_SPARTAN_OPTION', `overall density ${rho} is unreachable: the ${totalParams - maskedParams} unsparsified parameters alone exceed it`);
  return adj;
}
