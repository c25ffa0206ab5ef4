// A small seeded generator (mulberry32) for draws that must repeat exactly from a seed,
// such as the Trainer's dropout masks (a resumed run draws what the uninterrupted one did).

/** Uniform floats in [0, 1) from a 32-bit state seeded by the given integers. */
export function seededUniform(...seed: number[]): () => number {
  let a = 0x9e3779b9;
  for (const s of seed) a = Math.imul(a ^ (s >>> 0), 0x85ebca6b) ^ Math.imul((s / 2 ** 32) | 0, 0xc2b2ae35); // the high bits of large seeds count too
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
