// Every ```ts example in README.md, typechecked and run, so the README cannot drift from the
// API. A block is named by the `<!-- example: name -->` line above it; each name has a spec
// below: what the snippet's free variables are (`prelude`, which reaches the library as
// `lib.`), which literal sizes shrink for the test (`shrink`: each must occur, so an edited
// README fails here instead of running at full size), and what to check afterwards on the
// snippet's own top-level variables. The CUDA examples are typechecked here and run only
// where a GPU is present.
import { expect } from 'chai';
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as lib from '../lib/index';
import { freshSeed, sum } from './reference';

const ROOT = path.resolve(__dirname, '..');
const GENERATED = path.join(ROOT, '.cache', 'readme-examples');

interface Example { name: string; code: string; line: number }

/** The README's ts blocks with their names; an unnamed one is an error. */
function readmeExamples(): Example[] {
  const lines = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8').split('\n');
  const found: Example[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```ts') continue;
    const marker = /^<!-- example: ([a-z0-9-]+) -->$/.exec(lines[i - 1] ?? '');
    if (!marker) throw new Error(`README.md:${i + 1}: a ts block without an "<!-- example: name -->" line above it`);
    const end = lines.indexOf('```', i + 1);
    found.push({ name: marker[1], code: lines.slice(i + 1, end).join('\n'), line: i + 1 });
    i = end;
  }
  return found;
}

type Vars = Record<string, unknown>;
interface Spec {
  /** Declarations of the snippet's free variables (the library is `lib`; `rng` is test/reference's). */
  prelude?: string;
  /** [literal in the snippet, what the test runs instead]; every occurrence is replaced. */
  shrink?: [string, string][];
  /** Needs a CUDA device to run. */
  cuda?: boolean;
  /** The check runs onnxruntime (named in the test's title: the GPU run leaves those out). */
  onnxruntime?: boolean;
  /** Runs in a fresh temporary folder (the snippet reads or writes files by relative path). */
  inTempDir?: boolean;
  /** The snippet's top-level variables the check reads. */
  expose: string[];
  check(v: Vars, logged: string[], dir: string): void | Promise<void>;
}

const count = (a: ArrayLike<number>, keep: (x: number) => boolean = (x) => x !== 0) => {
  let c = 0;
  for (let i = 0; i < a.length; i++) if (keep(a[i])) c++;
  return c;
};
const f32 = (v: unknown) => v as Float32Array;
/** Row-major y = relu?(x · Wᵀ + b) in float64: x [n, inp], W [out, inp]. */
function denseLinear(x: Float32Array, w: Float32Array, b: Float32Array | undefined, n: number, out: number, inp: number, relu: boolean): Float64Array {
  const y = new Float64Array(n * out);
  for (let r = 0; r < n; r++) {
    for (let o = 0; o < out; o++) {
      let s = b ? b[o] : 0;
      for (let c = 0; c < inp; c++) s += x[r * inp + c] * w[o * inp + c];
      y[r * out + o] = relu ? Math.max(0, s) : s;
    }
  }
  return y;
}
function expectAllClose(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string) {
  expect(got.length, `${what}: length`).to.equal(want.length);
  for (let i = 0; i < want.length; i++) {
    if (Math.abs(got[i] - want[i]) > tol * (1 + Math.abs(want[i]))) expect.fail(`${what}[${i}] = ${got[i]}, want ${want[i]}`);
  }
}

const SEED = freshSeed();
const random = `const rand = rng(${SEED});`;

const SPECS: Record<string, Spec> = {
  'soft-topk': {
    expose: ['theta', 'k', 'mask', 'lambda', 'hard', 'W', 'gradScores', 'again'],
    check(v) {
      const theta = f32(v.theta), mask = f32(v.mask), hard = v.hard as Uint8Array | Float32Array, W = f32(v.W);
      const k = v.k as number;
      expect(sum(mask), 'Σm = k').to.be.closeTo(k, 1e-3 * k);
      expect(count(hard), 'hard top-k keeps k').to.equal(Math.round(k));
      for (let i = 0; i < theta.length; i++) {
        if (Math.abs(W[i] - hard[i] * theta[i] * mask[i]) > 1e-7) expect.fail(`W[${i}] = ${W[i]}, want h·θ·m = ${hard[i] * theta[i] * mask[i]}`);
      }
      expect(Number.isFinite(v.lambda as number)).to.equal(true);
      expect(count(f32(v.gradScores), Number.isFinite), 'finite gradient').to.equal(theta.length);
      const again = v.again as { mask: Float32Array; lambda: number; passes: number };
      expect(sum(again.mask), 'warm-started Σm = k').to.be.closeTo(k, 1e-3 * k);
      expect(again.passes, 'warm start from the answer: the validating pass and one evaluation').to.equal(2);
    },
  },
  sparsifier: {
    prelude: `${random}
      const w1 = Float32Array.from({ length: 300 * 784 }, () => (rand() - 0.5) * 0.1);
      const b1 = new Float32Array(300);
      const w2 = Float32Array.from({ length: 128 * 256 }, () => (rand() - 0.5) * 0.1);
      const batch = undefined;
      // ∂L/∂W of L = ½‖W − 0.01‖²
      const runTrainingGraph = (W: Record<string, Float32Array>, _batch: unknown) =>
        Object.fromEntries(Object.entries(W).map(([n, w]) => [n, w.map((x) => x - 0.01)]));`,
    shrink: [['10_000', '30']],
    expose: ['w1', 'w2', 'sp'],
    check(v, logged) {
      const w1 = f32(v.w1), w2 = f32(v.w2);
      const kept = count(w1) + count(w2), total = w1.length + w2.length;
      expect(kept / total, 'finalized density of the sparsified weights').to.be.within(0.045, 0.055);
      // fc2's mask is 16×16 blocks: every block all kept or all zero
      for (let br = 0; br < 128 / 16; br++) {
        for (let bc = 0; bc < 256 / 16; bc++) {
          let nz = 0;
          for (let r = 0; r < 16; r++) for (let c = 0; c < 16; c++) nz += w2[(br * 16 + r) * 256 + bc * 16 + c] !== 0 ? 1 : 0;
          expect([0, 256], `block (${br}, ${bc}) of fc2`).to.include(nz);
        }
      }
      expect(logged.length, 'one stats line per 100 steps').to.equal(1);
    },
  },
  'sparsifier-cuda': {
    cuda: true,
    prelude: `${random}
      const hostParams = [
        { name: 'fc1.weight', data: Float32Array.from({ length: 300 * 784 }, () => rand() - 0.5), shape: [300, 784] },
        { name: 'fc1.bias', data: new Float32Array(300), shape: [300] },
      ];
      const gradW = Object.fromEntries(hostParams.map((p) => [p.name, lib.tensor(p.data.map((x) => x * 0.1), { device: 'cuda', shape: p.shape })]));`,
    expose: ['sp', 'W', 'params', 'hostParams'],
    check(v) {
      expect((v.sp as lib.Sparsifier).device).to.equal('cuda');
      for (const t of Object.values(v.W as Record<string, lib.Tensor>)) expect(t.device).to.equal('cuda');
      // the optimizer's step moved the weights on the device, to finite values
      const before = (v.hostParams as { data: Float32Array }[])[0].data;
      const after = ((v.params as { data: lib.Tensor }[])[0].data).toArray() as Float32Array;
      expect(after.length).to.equal(before.length);
      expect(count(after, Number.isFinite), 'finite').to.equal(after.length);
      expect(count(after.map((x, i) => (x !== before[i] ? 1 : 0))), 'weights moved').to.be.above(after.length / 2);
    },
  },
  trainer: {
    inTempDir: true,
    onnxruntime: true,
    prelude: `fs.writeFileSync('mlp.onnx', lib.encodeModel(lib.lenet300100(1)));`,
    shrink: [
      ["loadMnist('train')", "lib.head(loadMnist('train'), 10000)"],
      ["loadMnist('test')", "lib.head(loadMnist('test'), 1000)"],
      ['const epochs = 20', 'const epochs = 2'],
    ],
    expose: ['test'],
    async check(v, logged, dir) {
      expect(logged, 'a line per epoch').to.have.length(2);
      const accuracy = Number(/test ([\d.]+)/.exec(logged[1])![1]);
      expect(accuracy, 'test accuracy after 2 epochs on 10,000 images').to.be.above(0.7);
      expect(fs.existsSync(path.join(dir, 'run.ckpt')), 'checkpoint written').to.equal(true);
      // the exported model keeps 5 % of the parameters (biases count, as kept), and
      // onnxruntime scores it as evaluate() did
      const density = Number(/density ([\d.]+)/.exec(logged[1])![1]);
      expect(density, 'reported density').to.be.closeTo(0.05, 1e-4);
      const model = lib.decodeModel(fs.readFileSync(path.join(dir, 'sparse.onnx')));
      const params = model.graph.initializers;
      const kept = params.reduce((a, t) => a + count(t.data as Float32Array), 0);
      const total = params.reduce((a, t) => a + t.data.length, 0);
      expect(kept / total, 'exported nonzeros').to.be.closeTo(density, 1e-3);
      const test = v.test as lib.ImageDataset;
      const runner = await lib.GraphRunner.create(model);
      const out = await runner.run({ [model.graph.inputs[0].name]: { data: test.inputs, dims: [test.count, ...test.inputShape] } }, ['logits']);
      await runner.release();
      const logits = out.logits as Float32Array;
      let correct = 0;
      for (let i = 0; i < test.count; i++) {
        const row = logits.subarray(i * 10, i * 10 + 10);
        if (row.indexOf(Math.max(...row)) === Number(test.labels![i])) correct++;
      }
      expect(correct / test.count, 'exported model in onnxruntime').to.equal(accuracy);
    },
  },
  'tensors-cuda': {
    cuda: true,
    prelude: `${random}
      const out = 300, inp = 784, k = 1000;
      const weights = Float32Array.from({ length: out * inp }, () => rand() - 0.5);`,
    expose: ['host', 'k'],
    check(v) {
      expect(sum(f32(v.host)), 'Σm = k').to.be.closeTo(v.k as number, 1e-3 * (v.k as number));
    },
  },
  bsr: {
    onnxruntime: true,
    prelude: `${random}
      const batch = 8;
      const uniform = (n: number) => Float32Array.from({ length: n }, () => rand() - 0.5);
      const weight = uniform(300 * 784), bias = uniform(300), x = uniform(batch * 784);
      const xT = new Float32Array(784 * batch);
      for (let r = 0; r < batch; r++) for (let c = 0; c < 784; c++) xT[c * batch + r] = x[r * 784 + c];
      const blockMask = Uint8Array.from({ length: 19 * 49 }, () => (rand() < 0.2 ? 1 : 0));
      const bytes = lib.encodeModel(lib.lenet300100(1));
      const images = Float32Array.from({ length: batch * 784 }, () => rand());`,
    expose: ['weight', 'bias', 'x', 'batch', 'blockMask', 'h', 'y', 'z', 'images', 'logits', 'bytes'],
    async check(v) {
      const batch = v.batch as number, weight = f32(v.weight), bias = f32(v.bias), x = f32(v.x);
      expectAllClose(f32(v.h), denseLinear(x, weight, bias, batch, 300, 784, true), 1e-4, 'SparseLinear (every block kept)');
      // the block mask: dropped 16×16 blocks contribute nothing; y in bfloat16 (8 mantissa bits)
      const mask = v.blockMask as Uint8Array;
      const masked = weight.map((w, i) => (mask[Math.floor(Math.floor(i / 784) / 16) * 49 + Math.floor((i % 784) / 16)] ? w : 0));
      const want = denseLinear(x, masked, bias, batch, 300, 784, true);
      expectAllClose(f32(v.y), want, 0.05, 'bsr.linear, bfloat16 blocks');
      const z = f32(v.z); // A·X without bias or relu, [300, batch]
      const noBias = denseLinear(x, masked, undefined, batch, 300, 784, false);
      for (let o = 0; o < 300; o++) for (let r = 0; r < batch; r++) {
        if (Math.abs(z[o * batch + r] - noBias[r * 300 + o]) > 0.05 * (1 + Math.abs(noBias[r * 300 + o]))) expect.fail(`z[${o}, ${r}]`);
      }
      const model = lib.decodeModel(v.bytes as Uint8Array);
      const runner = await lib.GraphRunner.create(model);
      const out = await runner.run({ [model.graph.inputs[0].name]: { data: f32(v.images), dims: [batch, 1, 28, 28] } }, ['logits']);
      await runner.release();
      expectAllClose(f32(v.logits), out.logits as Float32Array, 1e-4, 'SparseModel vs onnxruntime');
    },
  },
};

/** The example as a module exporting `example()`, which runs it and returns the exposed variables. */
function generate(ex: Example, spec: Spec): string {
  let code = ex.code;
  for (const [from, to] of spec.shrink ?? []) {
    if (!code.includes(from)) throw new Error(`README example "${ex.name}" no longer contains ${JSON.stringify(from)}: update its spec`);
    code = code.split(from).join(to);
  }
  const lines = code.split('\n');
  const imports = lines.filter((l) => l.startsWith('import ')).map((l) => l.replace("from 'spartan-sparsity'", "from '../../lib/index'"));
  const body = lines.filter((l) => !l.startsWith('import '));
  return [
    `// generated by test/readme-examples.test.ts from README.md:${ex.line} (example "${ex.name}")`,
    ...imports,
    "import * as lib from '../../lib/index';",
    "import * as fs from 'node:fs';",
    "import { rng } from '../../test/reference';",
    'void fs; void lib; void rng;',
    'export async function example(): Promise<Record<string, unknown>> {',
    spec.prelude ?? '',
    ...body,
    `  return { ${spec.expose.join(', ')} };`,
    '}',
    '',
  ].join('\n');
}

describe('README examples', function () {
  this.timeout(300_000);
  const examples = readmeExamples();
  const files = new Map<string, string>();

  before(() => {
    fs.rmSync(GENERATED, { recursive: true, force: true });
    fs.mkdirSync(GENERATED, { recursive: true });
    for (const ex of examples) {
      const file = path.join(GENERATED, `${ex.name}.ts`);
      fs.writeFileSync(file, generate(ex, SPECS[ex.name]));
      files.set(ex.name, file);
    }
  });

  it('every ts block is named, once, and has a spec here', () => {
    const names = examples.map((e) => e.name);
    expect(new Set(names).size, 'names are unique').to.equal(names.length);
    expect([...names].sort()).to.deep.equal(Object.keys(SPECS).sort());
  });

  it('every example typechecks against the library (tsc)', () => {
    fs.writeFileSync(path.join(GENERATED, 'tsconfig.json'), JSON.stringify({
      extends: '../../tsconfig.json',
      compilerOptions: { noEmit: true, rootDir: '../..', declaration: false, sourceMap: false, types: ['node'] },
      include: ['*.ts'],
    }));
    const tsc = path.join(ROOT, 'node_modules', '.bin', 'tsc');
    const r = spawnSync(tsc, ['-p', GENERATED], { encoding: 'utf8' });
    expect(r.error, 'tsc started').to.equal(undefined);
    expect(r.status, `tsc:\n${r.stdout}${r.stderr}`).to.equal(0);
  });

  for (const ex of examples) {
    const spec = SPECS[ex.name];
    if (!spec) continue; // the naming test above fails
    it(`runs "${ex.name}" (README.md:${ex.line}) and its results hold${spec.onnxruntime ? ', checked in onnxruntime' : ''}`, async function () {
      if (spec.cuda && !lib.backend().cuda) {
        console.log(`      README example "${ex.name}" not run (typechecked only): ${lib.backend().reason}`);
        this.skip();
      }
      const dir = spec.inTempDir ? fs.mkdtempSync(path.join(os.tmpdir(), `readme-${ex.name}-`)) : process.cwd();
      const cwd = process.cwd();
      const logged: string[] = [];
      const log = console.log;
      let vars: Vars;
      try {
        process.chdir(dir);
        console.log = (...a: unknown[]) => void logged.push(a.join(' '));
        // eslint-disable-next-line @typescript-eslint/no-require-imports
        vars = await (require(files.get(ex.name)!) as { example(): Promise<Vars> }).example();
      } finally {
        console.log = log;
        process.chdir(cwd);
      }
      try {
        await spec.check(vars, logged, dir);
      } finally {
        if (spec.inTempDir) fs.rmSync(dir, { recursive: true, force: true });
      }
    });
  }
});
