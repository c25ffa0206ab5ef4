// Fused optimizer steps against float64 references (PyTorch semantics).
import { expect } from 'chai';
import * as spartan from '../lib/index';
import { freshSeed, normal, rng } from './reference';

const seed = freshSeed();
const rand = rng(seed);

describe(`optimizers (seed ${seed})`, () => {
  const n = 5000;
  const make = () => [{ name: 'w', data: Float32Array.from({ length: n }, () => normal(rand)) }, { name: 'b', data: Float32Array.from({ length: 7 }, () => normal(rand)) }];

  for (const cfg of [{ momentum: 0 }, { momentum: 0.9 }, { momentum: 0.9, nesterov: true, weightDecay: 1e-2 }, { momentum: 0.5, dampening: 0.1, weightDecay: 1e-3 }]) {
    it(`SGD ${JSON.stringify(cfg)} matches the reference over 5 steps`, () => {
      const params = make();
      const ref = params.map((p) => Float64Array.from(p.data));
      const buf = params.map((p) => new Float64Array(p.data.length));
      const opt = new spartan.SGD(params, { lr: 0.1, noDecay: ['b'], ...cfg });
      for (let t = 1; t <= 5; t++) {
        const grads = Object.fromEntries(params.map((p) => [p.name, Float32Array.from(p.data, () => normal(rand))]));
        opt.step(grads);
        params.forEach((p, pi) => {
          const wd = p.name === 'b' ? 0 : cfg.weightDecay ?? 0;
          for (let i = 0; i < p.data.length; i++) {
            let d = grads[p.name][i] + wd * ref[pi][i];
            if (cfg.momentum) {
              buf[pi][i] = t === 1 ? d : cfg.momentum * buf[pi][i] + (1 - (cfg.dampening ?? 0)) * d;
              d = cfg.nesterov ? d + cfg.momentum * buf[pi][i] : buf[pi][i];
            }
            ref[pi][i] -= 0.1 * d;
          }
          for (let i = 0; i < p.data.length; i++) expect(p.data[i]).to.be.closeTo(ref[pi][i], 1e-5 * (1 + Math.abs(ref[pi][i])));
        });
      }
    });
  }

  it('AdamW matches the reference over 5 steps (bias correction, decoupled decay)', () => {
    const params = make();
    const ref = params.map((p) => Float64Array.from(p.data));
    const m = params.map((p) => new Float64Array(p.data.length)), v = params.map((p) => new Float64Array(p.data.length));
    const opt = new spartan.AdamW(params, { lr: 1e-2, weightDecay: 0.1, beta1: 0.8, beta2: 0.99, eps: 1e-6 });
    for (let t = 1; t <= 5; t++) {
      const grads = Object.fromEntries(params.map((p) => [p.name, Float32Array.from(p.data, () => normal(rand))]));
      opt.step(grads);
      params.forEach((p, pi) => {
        for (let i = 0; i < p.data.length; i++) {
          const g = grads[p.name][i];
          ref[pi][i] *= 1 - 1e-2 * 0.1;
          m[pi][i] = 0.8 * m[pi][i] + 0.2 * g;
          v[pi][i] = 0.99 * v[pi][i] + 0.01 * g * g;
          ref[pi][i] -= (1e-2 * (m[pi][i] / (1 - 0.8 ** t))) / (Math.sqrt(v[pi][i] / (1 - 0.99 ** t)) + 1e-6);
          expect(p.data[i]).to.be.closeTo(ref[pi][i], 1e-5 * (1 + Math.abs(ref[pi][i])));
        }
      });
    }
  });

  it('clips the global gradient norm inside the fused step', () => {
    const params = make();
    const before = params.map((p) => p.data.slice());
    const grads = Object.fromEntries(params.map((p) => [p.name, Float32Array.from(p.data, () => 3 * normal(rand))]));
    let sq = 0;
    for (const g of Object.values(grads)) for (const x of g) sq += x * x;
    const opt = new spartan.SGD(params, { lr: 1, clipNorm: 1 });
    const r = opt.step(grads);
    expect(r.gradNorm).to.be.closeTo(Math.sqrt(sq), 1e-6 * Math.sqrt(sq));
    let moved = 0;
    params.forEach((p, pi) => p.data.forEach((x, i) => (moved += (before[pi][i] - x) ** 2)));
    expect(Math.sqrt(moved)).to.be.closeTo(1, 1e-4);
  });

  it('checked sums (the Trainer\'s, from the Sparsifier) replace the scan of those gradients only', () => {
    const a = make(), b = a.map((p) => ({ name: p.name, data: p.data.slice() }));
    const grads = Object.fromEntries(a.map((p) => [p.name, Float32Array.from(p.data, () => normal(rand))]));
    const sq = (x: Float32Array) => x.reduce((acc, v) => acc + v * v, 0);
    const oa = new spartan.SGD(a, { lr: 0.1, momentum: 0.9 }), ob = new spartan.SGD(b, { lr: 0.1, momentum: 0.9 });
    const ra = oa.step(grads), rb = ob.step(grads, new Map([['w', sq(grads.w)]]));
    a.forEach((p, i) => expect(Buffer.from(p.data.buffer).equals(Buffer.from(b[i].data.buffer)), p.name).to.equal(true));
    expect(rb.gradNorm).to.be.closeTo(ra.gradNorm, 1e-9 * ra.gradNorm);
    // the given sum is what the step uses (w is not scanned): vouching 0 leaves b's norm alone
    const c = make();
    expect(new spartan.SGD(c, { lr: 0.1 }).step(grads, new Map([['w', 0]])).gradNorm).to.be.closeTo(Math.sqrt(sq(grads.b)), 1e-9);
    // a gradient the caller did not vouch for is still scanned: NaN there stops the step
    const bad = { w: grads.w, b: grads.b.slice() };
    bad.b[3] = NaN;
    const keep = b.map((p) => p.data.slice());
    expect(() => ob.step(bad, new Map([['w', sq(grads.w)]]))).to.throw(/grads\["b"\]\[3\]/);
    b.forEach((p, i) => expect(Buffer.from(p.data.buffer).equals(Buffer.from(keep[i].buffer)), 'nothing moved').to.equal(true));
  });

  it('state() / load() resume the optimizer exactly', () => {
    const a = make(), b = a.map((p) => ({ name: p.name, data: p.data.slice() }));
    const oa = new spartan.AdamW(a, { lr: 1e-2 });
    const grads = [0, 1, 2].map(() => Object.fromEntries(a.map((p) => [p.name, Float32Array.from(p.data, () => normal(rand))])));
    oa.step(grads[0]);
    const ob = new spartan.AdamW(b, { lr: 1e-2 });
    b.forEach((p, i) => p.data.set(a[i].data));
    ob.load(oa.state());
    oa.step(grads[1]);
    ob.step(grads[1]);
    a.forEach((p, i) => expect(Buffer.from(p.data.buffer).equals(Buffer.from(b[i].data.buffer))).to.equal(true));
  });
});

describe('optimizers on Tensors', () => {
  const info = spartan.backend();
  const data = (n: number, s: number) => { const r = rng(s); return Float32Array.from({ length: n }, () => normal(r)); };

  function run(device: spartan.Device, kind: 'sgd' | 'adamw', s: number) {
    const host = [{ name: 'w', data: data(3000, s) }, { name: 'b', data: data(5, s + 1) }];
    const params = host.map((p) => ({ name: p.name, data: spartan.tensor(p.data, { device }) }));
    const opt = kind === 'sgd' ? new spartan.SGD(params, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3, clipNorm: 10 })
      : new spartan.AdamW(params, { lr: 1e-2, weightDecay: 0.01 });
    const ref = kind === 'sgd' ? new spartan.SGD(host, { lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3, clipNorm: 10 })
      : new spartan.AdamW(host, { lr: 1e-2, weightDecay: 0.01 });
    for (let t = 0; t < 3; t++) {
      const g = host.map((p, i) => data(p.data.length, s + 10 * t + i));
      const a = ref.step(Object.fromEntries(host.map((p, i) => [p.name, g[i]])));
      const b = opt.step(Object.fromEntries(params.map((p, i) => [p.name, spartan.tensor(g[i], { device })])));
      expect(b.gradNorm).to.be.closeTo(a.gradNorm, 1e-9 * a.gradNorm);
    }
    params.forEach((p, i) => {
      const got = p.data.toFloat32Array();
      // cpu: the same kernels, bit for bit; cuda: the gradient norm (hence the clip scale) sums in another order
      if (device === 'cpu') expect(Array.from(got)).to.deep.equal(Array.from(host[i].data));
      else got.forEach((x, j) => expect(x).to.be.closeTo(host[i].data[j], 1e-6 * (1 + Math.abs(host[i].data[j]))));
    });
    // state() is host data; load() puts it back where the parameters live
    const st = opt.state();
    expect(st.buffers.w[0]).to.be.instanceOf(Float32Array);
    const opt2 = kind === 'sgd' ? new spartan.SGD(params, { lr: 0.05, momentum: 0.9 }) : new spartan.AdamW(params, { lr: 1e-2 });
    opt2.load(st);
    expect(Array.from(opt2.state().buffers.w[0])).to.deep.equal(Array.from(st.buffers.w[0]));
  }

  it('cpu Tensors: SGD and AdamW equal the Float32Array optimizers bit for bit; state round-trips', () => {
    run('cpu', 'sgd', freshSeed());
    run('cpu', 'adamw', freshSeed());
  });

  it('gradients must be like their parameters; one device per optimizer', () => {
    const p = [{ name: 'w', data: spartan.tensor(data(4, 1)) }];
    const opt = new spartan.SGD(p, { lr: 0.1 });
    let code: string | undefined;
    try { opt.step({ w: data(4, 2) }); } catch (e) { code = (e as { code?: string }).code; }
    expect(code).to.equal('ERR_SPARTAN_DEVICE');
    try { opt.step({ w: 'x' as unknown as Float32Array }); } catch (e) { code = (e as { code?: string }).code; }
    expect(code).to.equal('ERR_SPARTAN_TYPE');
    try { new spartan.SGD([{ name: 'a', data: data(3, 1) }, { name: 'u', data: spartan.tensor(Uint8Array.from([1])) as never }], { lr: 1 }); } catch (e) { code = (e as { code?: string }).code; }
    expect(code).to.equal('ERR_SPARTAN_TYPE');
    // dispose(): the optimizer is done (its device buffers freed), the parameters stay
    opt.dispose();
    opt.dispose();
    expect(p[0].data.disposed).to.equal(false);
    for (const call of [() => opt.step({ w: spartan.tensor(data(4, 3)) }), () => opt.state()]) {
      code = undefined;
      try { call(); } catch (e) { code = (e as { code?: string }).code; }
      expect(code).to.equal('ERR_SPARTAN_DISPOSED');
    }
  });

  it(`CUDA Tensors: SGD and AdamW match the CPU optimizers${info.cuda ? '' : ` [skipped: ${info.reason}]`}`, function () {
    if (!info.cuda) {
      console.log(`      CUDA optimizer test skipped: ${info.reason}`);
      this.skip();
    }
    run('cuda', 'sgd', freshSeed());
    run('cuda', 'adamw', freshSeed());
  });
});
