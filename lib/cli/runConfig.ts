// The configuration `spartan train` records in its --json output and checkpoints, and the
// comparison --resume makes. Options added after the first checkpoints were written are
// absent from those; they compare as the defaults a run takes without them.
import type { EpochMetrics } from '../train/trainer';
import type { Method } from '../sparsity/sparsifier';

const SPARSE: readonly Method[] = ['spartan', 'imp', 'topkast'];

/**
 * The options only some methods read (by config key). The others take them without effect on
 * the training: `spartan train` names them in a note, and --resume does not compare them, but
 * for those that shape the saved state all the same (`layout`: a dense run's masks are still
 * cut into the --block tiles of the weights --sparsify names).
 */
export const METHOD_OPTIONS: Readonly<Record<string, { flag: string; methods: readonly Method[]; what: string; layout?: true }>> = {
  density: { flag: 'density', methods: SPARSE, what: 'the sparse methods' },
  budget: { flag: 'budget', methods: SPARSE, what: 'the sparse methods' },
  block: { flag: 'block', methods: SPARSE, what: 'the sparse methods', layout: true },
  sparsify: { flag: 'sparsify', methods: SPARSE, what: 'the sparse methods', layout: true },
  betaMax: { flag: 'beta-max', methods: ['spartan'], what: 'Spartan' },
  beta0: { flag: 'beta0', methods: ['spartan'], what: 'Spartan' },
};

/** Whether a resumed run of `method` must match its checkpoint's config key `key`. */
const resumeCompares = (method: unknown, key: string) =>
  !Object.hasOwn(METHOD_OPTIONS, key) || METHOD_OPTIONS[key].layout === true || METHOD_OPTIONS[key].methods.includes(method as Method);

/**
 * What an older checkpoint's missing option means: the value the run took (the library's
 * defaults; the CLI passes these to the Trainer, so the record is what ran). The first
 * checkpoints (48831ed) lacked all five; sparsify and block are absent when not given.
 */
const DEFAULTS = { budget: 'global', weightDecay: 1e-4, decayOn: 'all', batchNorm: 'batch', beta0: 1 } as const;

/** What the CLI records beside the Trainer's state in a checkpoint. */
export interface CheckpointMeta {
  config: unknown;
  epoch: number;
  history: (EpochMetrics & { testAccuracy: number })[];
}

type Filled<T> = Omit<T, keyof typeof DEFAULTS> & { [K in keyof typeof DEFAULTS]: Exclude<T[K & keyof T], undefined> | (typeof DEFAULTS)[K] };

/** The config with each defaulted option filled in: what --json shows, a checkpoint keeps and the run takes. */
export function withDefaults<T extends Record<string, unknown>>(config: T): Filled<T> {
  const out: Record<string, unknown> = { ...config };
  for (const [k, v] of Object.entries(DEFAULTS)) out[k] ??= v;
  return out as never;
}

const asRecord = (x: unknown) => (typeof x === 'object' && x !== null ? x : {}) as Record<string, unknown>;

/**
 * The fields a checkpoint was written with that differ from this run's, "epochs 2 → 3, seed 1 → 2";
 * '' when none. Options the run's method does not read (beta0 for IMP) may differ, unless they
 * shape the saved state.
 */
export function configChanges(then: unknown, now: Record<string, unknown>): string {
  const old = withDefaults(asRecord(then)), cur = withDefaults(now);
  const keys = [...new Set([...Object.keys(old), ...Object.keys(cur)])].filter((k) => old.method !== cur.method || resumeCompares(cur.method, k));
  const show = (v: unknown) => (v === undefined ? 'unset' : JSON.stringify(v));
  return keys.filter((k) => JSON.stringify(old[k]) !== JSON.stringify(cur[k])).map((k) => `${k} ${show(old[k])} → ${show(cur[k])}`).join(', ');
}
