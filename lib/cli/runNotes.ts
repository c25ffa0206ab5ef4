// What `spartan train` tells its user about a run beyond the figures: a run too short for its
// pruning, a --block no layer can take, options its method ignores, a layer pruned away.
import { rangeError } from '../errors';
import type { Method, Sparsifier } from '../sparsity/sparsifier';
import { METHOD_OPTIONS } from './runConfig';

// Under this many steps IMP and Spartan trailed dense training by 1.8 points or more, and
// Top-KAST by 0.3 or more; Spartan ended at chance on LeNet-5 at 320 steps (README "Short
// runs": held-out, 95 % sparsity, 80 to 3,910 steps).
const SHORT_RUN_STEPS = 1000;

/** A note for a sparse run too short for its weights to adapt to the pruning, or undefined. */
export function shortRunNote(sparsifier: Sparsifier, method: Method, density: number, beta0: number): string | undefined {
  const { totalSteps: steps, warmupSteps: pruneSteps } = sparsifier.phases;
  if (method === 'dense' || density >= 1 || steps >= SHORT_RUN_STEPS || !sparsifier.layers.some((l) => l.sparsify)) return undefined;
  const pruning = pruneSteps > 0 ? `over the first ${pruneSteps}` : 'at its first step';
  const spartan = method === 'spartan' && beta0 < 30
    ? " Spartan's soft mask scales its early gradients by about the density: --beta0 30 helps."
    : '';
  return `this run takes ${steps} steps and prunes to density ${density} ${pruning}. Sparse runs under ${SHORT_RUN_STEPS} steps ` +
    `lose accuracy to dense training, and Spartan's can end at chance (README "Short runs"); more epochs or data help.${spartan}`;
}

/** A note for a sparse run that masks nothing (--sparsify naming no parameter): it trains dense. */
export function nothingMaskedNote(sparsifier: Sparsifier, method: Method, density: number): string | undefined {
  if (method === 'dense' || density >= 1 || sparsifier.layers.some((l) => l.sparsify)) return undefined;
  return `--sparsify names no parameter: nothing is masked, so this ${method} run trains dense (density 1), whatever --density ${density} says`;
}

/**
 * A note for each masked weight that falls back from --block to element masks; refuses a
 * --block that none of them divides into.
 */
export function blockNotes(sparsifier: Sparsifier, block: number | undefined): string[] {
  const fallbacks = sparsifier.stats().blockFallbacks;
  const masked = sparsifier.layers.filter((l) => l.sparsify).map((l) => l.name);
  if (block !== undefined && block !== 1 && masked.length > 0 && masked.every((n) => n in fallbacks))
    throw rangeError('ERR_SPARTAN_OPTION', `--block ${block}: no masked weight divides into ${block}x${block} tiles (${masked.join(', ')}), so every one would fall back to element masks; leave --block out, or give a size their dimensions divide by (the built-in mlp-256-128 takes 16)`);
  return Object.entries(fallbacks).map(([name, why]) => `${name}: ${why}`);
}

/** A note naming the options given that --method does not use, or undefined. */
export function ignoredOptionsNote(method: Method, flags: readonly string[]): string | undefined {
  const unused = Object.values(METHOD_OPTIONS).filter((o) => flags.includes(o.flag) && !o.methods.includes(method));
  if (unused.length === 0) return undefined;
  const parts = [...new Set(unused.map((o) => o.what))].map((what) => {
    const opts = unused.filter((o) => o.what === what).map((o) => `--${o.flag}`);
    return `${opts.join(', ')} ${opts.length === 1 ? 'applies' : 'apply'} to ${what} only`;
  });
  return `${parts.join('; ')}: ignored with --method ${method}`;
}

/** Masked weights the run pruned to nothing: no signal passes through them. */
export function emptyLayerWarnings(sparsifier: Sparsifier): string[] {
  const { perLayer } = sparsifier.stats().density;
  return sparsifier.layers
    .filter((l) => l.sparsify && perLayer[l.name] === 0)
    .map((l) => `${l.name} kept none of its weights: nothing passes through it. A longer run, a higher --density, or --budget erk|uniform (a share for every layer) avoid it`);
}
