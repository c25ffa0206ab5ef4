// Gradient checks for derived training graphs: run the graph in onnxruntime-node and
// compare every gradient entry with central differences of its own loss.
import { expect } from 'chai';
import { deriveTrainingGraph } from '../lib/graph/autodiff';
import type { Model } from '../lib/graph/model';
import { GraphRunner } from '../lib/graph/runner';

export type Feeds = Record<string, { data: Float64Array | Float32Array | BigInt64Array | Int32Array; dims: number[] }>;

/** The parameters a derived training graph takes (one grad.<name> output each), with the forward model's values. */
function trainedParams(fwd: Model, train: Model) {
  const names = new Set(train.graph.outputs.filter((o) => o.name.startsWith('grad.')).map((o) => o.name.slice('grad.'.length)));
  return fwd.graph.initializers.filter((t) => names.has(t.name));
}

/** One run of the training graph derived from `fwd`, its parameters at the model's values: loss, gradients, outputs. */
export async function trainingOutputs(fwd: Model, feeds: Feeds, opts: Parameters<typeof deriveTrainingGraph>[1]) {
  const train = deriveTrainingGraph(fwd, opts);
  const runner = await GraphRunner.create(train);
  try {
    return await runner.run({ ...feeds, ...Object.fromEntries(trainedParams(fwd, train).map((p) => [p.name, { data: p.data as Float64Array, dims: p.dims }])) });
  } finally {
    await runner.release();
  }
}

/**
 * Checks every entry of every parameter's gradient against central differences at steps
 * h and h/2 (which must agree, or agree once extrapolated with h/4: no kink inside the
 * window). Returns the number of entries checked.
 */
export async function checkGradients(fwd: Model, feeds: Feeds, opts: Parameters<typeof deriveTrainingGraph>[1], tol: number, h = 1e-6) {
  const train = deriveTrainingGraph(fwd, opts);
  const runner = await GraphRunner.create(train);
  const params = trainedParams(fwd, train);
  const values = Object.fromEntries(params.map((p) => [p.name, { data: (p.data as Float64Array).slice(), dims: p.dims }]));
  const run = async () => runner.run({ ...feeds, ...values });
  const base = await run();
  let checked = 0;
  const kinks: string[] = [];
  for (const p of params) {
    const grad = base[`grad.${p.name}`] as Float64Array | Float32Array;
    expect(grad.length).to.equal(p.data.length);
    for (let i = 0; i < grad.length; i++) {
      const v = values[p.name].data, keep = v[i];
      const central = async (step: number) => {
        v[i] = keep + step;
        const lp = (await run()).loss[0] as number;
        v[i] = keep - step;
        const lm = (await run()).loss[0] as number;
        v[i] = keep;
        return (lp - lm) / (2 * step);
      };
      const coarse = await central(h);
      let fd = await central(h / 2);
      // smooth points: the two agree to O(h^2); a ReLU / max-pool switch inside the window: they do not.
      // A strongly curved smooth point (float32's large steps) can differ by more than tol too: its
      // error falls as h^2, so Richardson's extrapolations from (h, h/2) and (h/2, h/4) agree, and
      // that is the reference then; a switch inside the window breaks the h^2 law, and they do not.
      if (Math.abs(coarse - fd) > tol * (1 + Math.abs(fd))) {
        const fine = await central(h / 4);
        const wide = (4 * fd - coarse) / 3, narrow = (4 * fine - fd) / 3;
        if (Math.abs(wide - narrow) > tol * (1 + Math.abs(narrow))) {
          kinks.push(`grad.${p.name}[${i}] (steps h, h/2, h/4: ${coarse}, ${fd}, ${fine})`);
          continue;
        }
        fd = narrow;
      }
      expect(Math.abs(grad[i] - fd), `grad.${p.name}[${i}]: ${grad[i]} vs ${fd}`).to.be.at.most(tol * (1 + Math.abs(fd)));
      checked++;
    }
  }
  await runner.release();
  expect(kinks, 'entries at a kink (the test functions are smooth)').to.deep.equal([]);
  return checked;
}
