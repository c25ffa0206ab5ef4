// The …Async ops work on copies of their host arrays (native/addon/host_copies.h): a caller
// that transfers (detaches) or changes an array while the op runs on a worker thread gets a
// coded rejection or the result of the arrays as they were at the call, never a crash. Before
// the copies, transferring an async op's arrays and letting the GC run crashed Node (SIGSEGV).
import * as v8 from 'node:v8';
import * as vm from 'node:vm';
import { expect } from 'chai';
import * as spartan from '../lib/index';
import { bsr } from '../lib/index';
import { codeOf, expectRejectCode, failure } from './helpers';
import { freshSeed, normal, rng } from './reference';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;

/** Detaches a's buffer (its memory moves to a clone nobody keeps) and collects garbage. */
function transferAway(...arrays: ArrayBufferView[]): void {
  for (const a of arrays) structuredClone(a.buffer, { transfer: [a.buffer as ArrayBuffer] });
  gc();
}

describe('async ops on arrays changed while they run', function () {
  this.timeout(60000);
  const seed = freshSeed();
  const r = rng(seed);
  const n = 1 << 20;
  const values = () => Float32Array.from({ length: n }, () => Math.abs(normal(r)));

  it(`an output transferred while the op runs is ERR_SPARTAN_DETACHED naming it; the process lives (seed ${seed})`, async () => {
    const v = values(), out = new Float32Array(n), hard = new Uint8Array(n), grad = values();
    let p: Promise<unknown> = spartan.softTopKAsync(v, n / 10, 10, { out });
    transferAway(out);
    expect(await failure(p)).to.equal('ERR_SPARTAN_DETACHED: out was detached or resized while the call ran; its result is lost');

    const mask = spartan.softTopK(v, n / 10, 10).mask, vjp = new Float32Array(n);
    p = spartan.softTopKBackwardAsync(mask, grad, 10, { out: vjp });
    transferAway(vjp);
    await expectRejectCode(p, TypeError, 'ERR_SPARTAN_DETACHED');

    p = spartan.topKMaskAsync(v, n / 10, { out: hard });
    transferAway(hard);
    await expectRejectCode(p, TypeError, 'ERR_SPARTAN_DETACHED');

    const outs = [new Float32Array(n / 2), new Float32Array(n / 2)];
    p = spartan.softTopKSegmentedAsync([{ values: v.subarray(0, n / 2), out: outs[0] }, { values: v.subarray(n / 2), out: outs[1] }], n / 10, 10);
    transferAway(outs[1]);
    expect(await failure(p)).to.match(/^ERR_SPARTAN_DETACHED: segments\[1\]\.out was detached/);
    expect(outs[0].some((x) => x > 0), 'the other output is still written').to.equal(true);

    const scores = new Float32Array((1024 / 16) * (1024 / 16));
    p = spartan.blockScoresAsync(v, 1024, 1024, [16, 16], { out: scores });
    transferAway(scores);
    await expectRejectCode(p, TypeError, 'ERR_SPARTAN_DETACHED');
  });

  it('inputs transferred or changed after the call: the result is that of the arrays at the call', async () => {
    const v = values(), keep = v.slice();
    const want = spartan.softTopK(keep, n / 10, 10);
    const p = spartan.softTopKAsync(v, n / 10, 10);
    transferAway(v);
    const got = await p;
    expect(Buffer.from(got.mask.buffer).equals(Buffer.from(want.mask.buffer))).to.equal(true);
    expect(got.lambda).to.equal(want.lambda);

    const theta = values(), m = values().map((x) => Math.min(1, x));
    const thetaAtCall = theta.slice(), wantW = spartan.applyMask(thetaAtCall, m);
    const q = spartan.applyMaskAsync(theta, m);
    theta.fill(123); // the caller breaks the contract: the op still sees the values of the call
    m.fill(0);
    expect(Array.from(await q)).to.deep.equal(Array.from(wantW));

    const rows = 64, cols = 96, w = Float32Array.from({ length: rows * cols }, () => normal(r));
    const A = bsr.fromDense(w, rows, cols, [16, 16]), x = Float32Array.from({ length: cols * 3 }, () => normal(r));
    const wantY = bsr.matmul(A, x, { n: 3 });
    const y = bsr.matmulAsync(A, x, { n: 3 });
    transferAway(x, A.values);
    expect(Array.from(await y)).to.deep.equal(Array.from(wantY));
  });

  it('in place stays in place (out = theta), and a partly overlapping output is ERR_SPARTAN_ALIAS as in the synchronous op', async () => {
    const theta = values(), m = values().map((x) => Math.min(1, x));
    const want = spartan.applyMask(theta.slice(), m);
    expect(await spartan.applyMaskAsync(theta, m, { out: theta })).to.equal(theta);
    expect(Array.from(theta)).to.deep.equal(Array.from(want));

    const shared = new Float32Array(2000).fill(0.5), before = shared.slice();
    const segs = [{ values: shared.subarray(0, 1000) }, { values: new Float32Array(10), out: shared.subarray(990, 1000) }];
    expect(codeOf(() => spartan.softTopKSegmented(segs, 5, 1))).to.match(/^ERR_SPARTAN_ALIAS/);
    expect(await failure(spartan.softTopKSegmentedAsync(segs, 5, 1))).to.match(/^ERR_SPARTAN_ALIAS/);
    expect(Array.from(shared)).to.deep.equal(Array.from(before));
    // the output is the same bytes as an input read earlier, and another input overlaps both in part
    const f = Float32Array.from({ length: 8 }, (_, i) => (i + 1) / 10), fBefore = f.slice();
    const odd = [{ mask: f.subarray(0, 4), gradMask: f.subarray(2, 6), out: f.subarray(0, 4) }];
    expect(codeOf(() => spartan.softTopKBackwardSegmented(odd, 1))).to.match(/^ERR_SPARTAN_ALIAS/);
    expect(await failure(spartan.softTopKBackwardSegmentedAsync(odd, 1))).to.match(/^ERR_SPARTAN_ALIAS/);
    const t = Float32Array.from({ length: 8 }, (_, i) => i);
    expect(codeOf(() => spartan.applyMask(t.subarray(0, 4), t.subarray(2, 6), { out: t.subarray(0, 4) }))).to.match(/^ERR_SPARTAN_ALIAS/);
    expect(await failure(spartan.applyMaskAsync(t.subarray(0, 4), t.subarray(2, 6), { out: t.subarray(0, 4) }))).to.match(/^ERR_SPARTAN_ALIAS/);
    expect([Array.from(f), Array.from(t)]).to.deep.equal([Array.from(fBefore), [0, 1, 2, 3, 4, 5, 6, 7]]);
  });

  it('an async result is the synchronous one, bit for bit, with outputs given or not (the copies change nothing else)', async () => {
    const v = values(), g = values();
    const sync = spartan.softTopK(v, n / 10, 10);
    const out = new Float32Array(n);
    const asy = await spartan.softTopKAsync(v, n / 10, 10, { out });
    expect(asy.mask).to.equal(out);
    expect(Buffer.from(out.buffer).equals(Buffer.from(sync.mask.buffer))).to.equal(true);
    const wantBw = spartan.softTopKBackward(sync.mask, g.slice(), 10);
    const bw = await spartan.softTopKBackwardAsync(sync.mask, g, 10, { out: g }); // out = grad: in place
    expect(bw).to.equal(g);
    expect(Buffer.from(bw.buffer).equals(Buffer.from(wantBw.buffer))).to.equal(true);
  });

  it('arrays over a SharedArrayBuffer work, sync and async (they cannot be detached, so async uses them in place); a resizable buffer shrunk under an async output rejects', async () => {
    const shared = (a: Float32Array) => {
      const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
      s.set(a);
      return s;
    };
    const v = values(), want = spartan.softTopK(v, n / 10, 10);
    const sv = shared(v), sout = new Float32Array(new SharedArrayBuffer(4 * n));
    expect(Array.from(spartan.softTopK(sv, n / 10, 10).mask)).to.deep.equal(Array.from(want.mask));
    const got = await spartan.softTopKAsync(sv, n / 10, 10, { out: sout });
    expect(got.mask).to.equal(sout);
    expect(Array.from(sout)).to.deep.equal(Array.from(want.mask));
    expect(Array.from(await spartan.topKMaskAsync(sv, 1000))).to.deep.equal(Array.from(spartan.topKMask(v, 1000)));

    type Resizable = ArrayBuffer & { resize(bytes: number): void };
    const ResizableBuffer = ArrayBuffer as unknown as new (bytes: number, opts: { maxByteLength: number }) => Resizable; // ES2024, beyond this lib's types
    const rab = new ResizableBuffer(4 * n, { maxByteLength: 8 * n });
    const out = new Float32Array(rab);
    const p = spartan.softTopKAsync(v, n / 10, 10, { out });
    rab.resize(4 * (n - 8));
    expect(await failure(p)).to.equal('ERR_SPARTAN_DETACHED: out was detached or resized while the call ran; its result is lost');
  });
});
