// Float initializers that hold NaN or +-Inf (a -inf mask PyTorch exports from a buffer) are
// constants, not parameters: not trained, not masked, left in the exported model as they were.
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { decodeModel, encodeModel, Trainer, type Dataset } from '../lib/index';
import { GraphBuilder, model } from '../lib/graph/builder';
import { defaultParameters, splitParameters } from '../lib/graph/params';
import { DataType } from '../lib/graph/schema';
import { rng } from './reference';

/** x [N, 4] -> Gemm -> logits [N, 3] with class 2 masked to -inf (a Where against a -inf fill [1, 3]). */
function maskedHead() {
  const b = new GraphBuilder();
  const x = b.input('x', DataType.FLOAT, ['N', 4]);
  const rand = rng(5);
  b.initializer('W', [3, 4], Float32Array.from({ length: 12 }, () => rand() - 0.5));
  b.initializer('bias', [3], new Float32Array(3));
  b.initializer('keep', [1, 3], Uint8Array.of(1, 1, 0), DataType.BOOL);
  b.initializer('fill', [1, 3], new Float32Array(3).fill(-Infinity));
  const h = b.op('Gemm', [x, 'W', 'bias'], { transB: { i: 1 } });
  b.op('Where', ['keep', h, 'fill'], {}, ['logits']);
  b.output('logits', DataType.FLOAT, ['N', 3]);
  return model(b.graph('masked-head'));
}

/** Class 0 where x0 + x1 > 0, else 1 (class 2, masked, never). */
function task(count: number, seed: number): Dataset {
  const rand = rng(seed), inputs = new Float32Array(count * 4), labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    for (let j = 0; j < 4; j++) inputs[i * 4 + j] = rand() * 2 - 1;
    labels[i] = inputs[i * 4] + inputs[i * 4 + 1] > 0 ? 0 : 1;
  }
  return { inputs, inputShape: [4], count, labels };
}

describe('initializers holding NaN or infinite values are constants', function () {
  this.timeout(120000);

  it('are no default parameter, and are named as such', () => {
    const m = maskedHead();
    expect(defaultParameters(m).map((t) => t.name)).to.deep.equal(['W', 'bias']);
    expect(splitParameters(m).constants).to.deep.equal(['fill']);
  });

  it('a Spartan run trains around one (it would mask it, and weight decay would make it NaN) and exports it unchanged', async () => {
    const t = await Trainer.create({
      forward: maskedHead(), logits: 'logits', epochs: 3, batchSize: 32, trainCount: 600, seed: 1,
      sparsity: { method: 'spartan', density: 0.5, betaMax: 30 }, optimizer: { kind: 'sgd', lr: 0.2, momentum: 0.9, weightDecay: 1e-4 },
    });
    try {
      expect(t.params.map((p) => p.name)).to.deep.equal(['W', 'bias']);
      expect(t.constants).to.deep.equal(['fill']);
      expect(t.sparsifier.layers.filter((l) => l.sparsify).map((l) => l.name)).to.deep.equal(['W']);
      const train = task(600, 1);
      for (let e = 0; e < 3; e++) expect(Number.isFinite((await t.trainEpoch(train, e)).loss)).to.equal(true);
      expect((await t.evaluate(task(300, 2))).accuracy).to.be.at.least(0.9);
      const fill = t.exportSparse().graph.initializers.find((i) => i.name === 'fill')!;
      expect(Array.from(fill.data as Float32Array)).to.deep.equal([-Infinity, -Infinity, -Infinity]);
    } finally {
      await t.release();
    }
  });

  it('spartan graph derive leaves one out of the parameters and says so (--params can still name it)', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-constants-')), file = path.join(dir, 'm.onnx'), out = path.join(dir, 't.onnx');
    fs.writeFileSync(file, encodeModel(maskedHead()));
    const cli = path.join(__dirname, '..', 'lib', 'cli', 'main.ts');
    const derive = (...extra: string[]) => spawnSync(process.execPath, ['--import', 'tsx', cli, 'graph', 'derive', file, '-o', out, '--logits', 'logits', ...extra], { encoding: 'utf8' });
    const plain = derive();
    expect(plain.status, plain.stderr).to.equal(0);
    expect(plain.stderr).to.contain('note: the initializer fill holds NaN or infinite values: kept as a constant, not trained (--params trains them all the same)');
    expect(decodeModel(fs.readFileSync(out)).graph.outputs.map((o) => o.name).filter((n) => n !== 'logits')).to.deep.equal(['loss', 'grad.W', 'grad.bias']);
    const named = derive('--params', 'W,fill');
    expect(named.status, named.stderr).to.equal(0);
    expect(named.stderr).to.not.contain('note:');
    expect(decodeModel(fs.readFileSync(out)).graph.outputs.map((o) => o.name).filter((n) => n !== 'logits')).to.deep.equal(['loss', 'grad.W', 'grad.fill']);
  });
});
