// The published entry points: compiled JS plus the addon, from CommonJS, ESM and TypeScript.
import { expect } from 'chai';
import { execFileSync } from 'node:child_process';
import * as path from 'node:path';

const root = path.resolve(__dirname, '..');
const node = (args: string[]) => execFileSync(process.execPath, args, { cwd: root, encoding: 'utf8' });

describe('package entry points', () => {
  it('require("spartan-sparsity") loads the compiled CommonJS build', () => {
    const out = node(['-e', `const s = require('spartan-sparsity'); const r = s.softTopK(Float32Array.of(1,2,3,4), 2, 1); console.log(require.resolve('spartan-sparsity'), r.lambda)`]);
    const [file, lambda] = out.trim().split(' ');
    expect(file).to.match(/dist[\\/]index\.js$/);
    expect(Number(lambda)).to.be.closeTo(-2.5, 1e-6);
  });

  it('import from plain Node ESM exposes the same names, the same classes and a default export', () => {
    const out = node([
      '--input-type=module',
      '-e',
      `import * as s from 'spartan-sparsity'; import d from 'spartan-sparsity'; import { createRequire } from 'node:module';
       const c = createRequire(process.cwd() + '/x.js')('spartan-sparsity');
       const names = Object.keys(s).filter((k) => !['default', 'module.exports', '__esModule'].includes(k)).sort();
       console.log(JSON.stringify({ same: JSON.stringify(names) === JSON.stringify(Object.keys(c).sort()), n: names.length,
         shared: s.SpartanError === c.SpartanError && d.softTopK === c.softTopK, lambda: s.softTopK(Float32Array.of(1,2,3,4), 2, 1).lambda }));`,
    ]);
    const r = JSON.parse(out);
    expect(r).to.deep.equal({ same: true, n: r.n, shared: true, lambda: r.lambda });
    expect(r.lambda).to.be.closeTo(-2.5, 1e-6);
    expect(r.n).to.be.at.least(20);
  });

  it('builds and runs an ONNX model with the package\'s own exports (GraphBuilder, DataType, modelFromGraph, GraphRunner)', () => {
    const out = node(['-e', `const s = require('spartan-sparsity');
      const b = new s.GraphBuilder();
      const y = b.op('Gemm', [b.input('x', s.DataType.FLOAT, ['N', 2]), b.initializer('w', [2, 1], Float32Array.of(3, 4))]);
      b.op('Relu', [y], {}, ['out']);
      b.output('out', s.DataType.FLOAT, ['N', 1]);
      const m = s.modelFromGraph(b.graph('tiny'));
      s.GraphRunner.create(s.encodeModel(m)).then(async (r) => {
        const o = await r.run({ x: { data: Float32Array.of(1, 1, -1, -1), dims: [2, 2] } });
        await r.release();
        console.log(JSON.stringify({ opset: m.opset, out: Array.from(o.out) }));
      });`]);
    expect(JSON.parse(out)).to.deep.equal({ opset: 17, out: [7, 0] });
  });

  it('ships type declarations that type-check from ESM and CommonJS consumers', function () {
    this.timeout(120000);
    const tsc = require.resolve('typescript/bin/tsc');
    execFileSync(process.execPath, [tsc, '-p', path.join(root, 'test', 'fixtures', 'tsconfig.json')], { cwd: root, encoding: 'utf8' });
  });
});
