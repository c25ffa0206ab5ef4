// Per-layer densities for the non-global budgets.
export type BudgetMode = 'global' | 'uniform' | 'erk';

/**
 * Erdős–Rényi-Kernel densities (RigL): density_l proportional to sum(shape_l) / prod(shape_l),
 * scaled so the parameter-weighted mean is `density`; layers that would exceed 1 are
 * capped at 1 and the rest re-scaled, until none exceeds 1.
 */
export function erkDensities(shapes: readonly (readonly number[])[], density: number): number[] {
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
