// Per-layer densities for the non-global budgets.
import { typeError } from '../errors';
import { numberOption, positiveInt } from '../options';

export type BudgetMode = 'global' | 'uniform' | 'erk';

/**
 * Erdős–Rényi-Kernel densities (RigL): density_l proportional to sum(shape_l) / prod(shape_l),
 * scaled so the parameter-weighted mean is `density`; layers that would exceed 1 are
 * capped at 1 and the rest re-scaled, until none exceeds 1.
 */
export function erkDensities(shapes: readonly (readonly number[])[], density: number): number[] {
  const given: unknown = shapes; // (Array.isArray on the typed parameter would widen it to any[])
  if (!Array.isArray(given) || given.some((s) => !Array.isArray(s) || s.length === 0))
    throw typeError('ERR_SPARTAN_TYPE', 'shapes must be an array of shapes (each a non-empty array of dimensions)');
  shapes.forEach((s, i) => s.forEach((d, j) => positiveInt(d, `shapes[${i}][${j}]`)));
  numberOption(density, 'density', (v) => v > 0 && v <= 1, 'in (0, 1]');
  const numel = shapes.map((s) => s.reduce((a, b) => a * b, 1));
  const raw = shapes.map((s, i) => s.reduce((a, b) => a + b, 0) / numel[i]);
  const dense = new Array<boolean>(shapes.length).fill(false);
  const budget = density * numel.reduce((a, b) => a + b, 0);
  for (;;) {
    let fixed = 0, scaled = 0;
    numel.forEach((n, i) => (dense[i] ? (fixed += n) : (scaled += raw[i] * n)));
    const eps = (budget - fixed) / scaled;
    let changed = false;
    raw.forEach((r, i) => {
      if (!dense[i] && eps * r > 1) {
        dense[i] = true;
        changed = true;
      }
    });
    if (!changed) return raw.map((r, i) => (dense[i] ? 1 : Math.max(0, eps * r)));
  }
}
