// Block scores, mask expansion and the fused apply against plain loops.
import { expect } from 'chai';
import * as spartan from '../lib/index';
import { codeOf, expectClose, failure } from './helpers';
import { freshSeed, maxAbsDiff, normal, rng } from './reference';

const seed = freshSeed();
const rand = rng(seed);

function scoresRef(t: Float32Array, rows: number, cols: number, b0: number, b1: number): Float64Array {
  const out = new Float64Array((rows / b0) * (cols / b1));
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) out[Math.floor(r / b0) * (cols / b1) + Math.floor(c / b1)] += Math.abs(t[r * cols + c]);
  return out;
}

describe(`block ops (seed ${seed})`, () => {
  for (const [rows, cols, b0, b1] of [[64, 96, 16, 16], [128, 64, 32, 32], [96, 160, 32, 16], [6, 10, 3, 5], [1, 7, 1, 7]]) {
    it(`${rows}x${cols} in ${b0}x${b1} tiles: scores, expansion, apply`, () => {
      const theta = Float32Array.from({ length: rows * cols }, () => normal(rand));
      const s = spartan.blockScores(theta, rows, cols, [b0, b1]);
      const ref = scoresRef(theta, rows, cols, b0, b1);
      for (let i = 0; i < ref.length; i++) expect(s[i]).to.be.closeTo(ref[i], 1e-6 * ref[i]);
      const nb = s.length;
      const m = Float32Array.from({ length: nb }, () => rand());
      const hard = Uint8Array.from({ length: nb }, () => (rand() < 0.5 ? 1 : 0));
      const full = spartan.expandBlockMask(m, rows, cols, [b0, b1]);
      const fullHard = spartan.expandBlockMask(hard, rows, cols, [b0, b1]);
      expect(fullHard).to.be.instanceOf(Uint8Array);
      for (let r = 0; r < rows; r++)
        for (let c = 0; c < cols; c++) {
          const bi = Math.floor(r / b0) * (cols / b1) + Math.floor(c / b1);
          expect(full[r * cols + c]).to.equal(m[bi]);
          expect(fullHard[r * cols + c]).to.equal(hard[bi]);
        }
      const applied = spartan.applyMask(theta, m, { shape: [rows, cols], block: [b0, b1], hard });
      const expected = theta.map((t, i) => Math.fround(t * full[i]) * fullHard[i]);
      expect(maxAbsDiff(applied, expected)).to.equal(0);
      // element masks: soft, hard-only, and in place
      const em = Float32Array.from(theta, () => rand());
      expectClose(spartan.applyMask(theta, em), theta.map((t, i) => t * em[i]), 0, 'element');
      expectClose(spartan.applyMask(theta, fullHard), theta.map((t, i) => t * fullHard[i]), 0, 'hard element');
      const copy = theta.slice();
      expect(spartan.applyMask(copy, em, { out: copy })).to.equal(copy);
      expectClose(copy, theta.map((t, i) => t * em[i]), 0, 'in place');
    });
  }

  it('async forms agree with the sync forms', async () => {
    const theta = Float32Array.from({ length: 256 * 256 }, () => normal(rand));
    const s = await spartan.blockScoresAsync(theta, 256, 256, [32, 32]);
    expect(Array.from(s)).to.deep.equal(Array.from(spartan.blockScores(theta, 256, 256, [32, 32])));
    const m = s.map((x) => x / 2000); // block scores scaled into [0, 1]: a float block mask
    const full = await spartan.expandBlockMaskAsync(m, 256, 256, [32, 32]);
    expect(Array.from(full)).to.deep.equal(Array.from(spartan.expandBlockMask(m, 256, 256, [32, 32])));
    const applied = await spartan.applyMaskAsync(theta, m, { shape: [256, 256], block: [32, 32] });
    expect(applied.length).to.equal(256 * 256);
  });

  it('huge sizes given as numbers: the input length is checked before the output is allocated (a coded error, not V8\'s)', async () => {
    expect(codeOf(() => spartan.expandBlockMask(new Float32Array(4), 2 ** 31, 8, [4, 4]))).to.equal('ERR_SPARTAN_LENGTH: blockMask has length 4; expected 1073741824');
    expect(codeOf(() => spartan.expandBlockMask(new Uint8Array(4), 2 ** 16, 2 ** 16, [4, 4]))).to.equal('ERR_SPARTAN_LENGTH: blockMask has length 4; expected 268435456');
    expect(codeOf(() => spartan.blockScores(new Float32Array(64), 2 ** 34, 8, [4, 4]))).to.equal('ERR_SPARTAN_LENGTH: theta has length 64; expected 137438953472');
    expect(codeOf(() => spartan.blockScores(spartan.tensor(new Float32Array(64)), 2 ** 34, 8, [4, 4]))).to.equal('ERR_SPARTAN_LENGTH: theta has length 64; expected 137438953472');
    expect(await failure(spartan.blockScoresAsync(new Float32Array(64), 2 ** 34, 8, [4, 4]))).to.equal('ERR_SPARTAN_LENGTH: theta has length 64; expected 137438953472');
    expect(await failure(spartan.expandBlockMaskAsync(new Float32Array(4), 2 ** 31, 8, [4, 4]))).to.equal('ERR_SPARTAN_LENGTH: blockMask has length 4; expected 1073741824');
    // type errors stay the native call's, which checks the type before the length
    expect(codeOf(() => spartan.blockScores(new Float64Array(64) as never, 64, 8, [4, 4]))).to.match(/^ERR_SPARTAN_TYPE: theta must be a Float32Array/);
    const gone = new Float32Array(8);
    structuredClone(gone.buffer, { transfer: [gone.buffer] });
    expect(codeOf(() => spartan.expandBlockMask(gone, 8, 8, [4, 2]))).to.match(/^ERR_SPARTAN_DETACHED/);
  });
});
