// spartan graph derive <forward.onnx> -o <train.onnx> --logits <name> ...
import * as fs from 'node:fs';
import { parseArgs } from 'node:util';
import { deriveTrainingGraph } from '../graph/autodiff';
import { decodeModel, encodeModel } from '../graph/model';
import { untieInitializers, untiedNote } from '../graph/untie';
import { rangeError } from '../errors';
import { writeFileAtomic } from '../util/atomic';
import { checkOutputFile } from './outputs';

export async function runDerive(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      output: { type: 'string', short: 'o' },
      logits: { type: 'string' },
      labels: { type: 'string', default: 'labels' },
      params: { type: 'string' },
      loss: { type: 'string', default: 'cross-entropy' },
      'label-smoothing': { type: 'string', default: '0' },
      'keep-tied': { type: 'boolean', default: false },
    },
  });
  if (positionals.length !== 1 || !values.output || !values.logits)
    throw rangeError('ERR_SPARTAN_OPTION', 'graph derive needs <forward.onnx>, -o <train.onnx> and --logits <output name>');
  if (values.loss !== 'cross-entropy' && values.loss !== 'mse') throw rangeError('ERR_SPARTAN_OPTION', `--loss must be cross-entropy or mse`);
  checkOutputFile('output', values.output);
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(positionals[0]);
  } catch (e) {
    throw rangeError('ERR_SPARTAN_ONNX', `cannot read ${positionals[0]}: ${(e as Error).message}`);
  }
  const decoded = decodeModel(bytes);
  const { model: forward, untied } = values['keep-tied'] ? { model: decoded, untied: [] } : untieInitializers(decoded);
  const train = deriveTrainingGraph(forward, {
    logits: values.logits,
    labels: values.labels,
    params: values.params ? values.params.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
    loss: values.loss,
    labelSmoothing: Number(values['label-smoothing']),
  });
  writeFileAtomic(values.output, encodeModel(train));
  if (untied.length) console.error(`note: ${untiedNote(untied)} (--keep-tied keeps them merged)`);
  const grads = train.graph.outputs.filter((o) => o.name.startsWith('grad.')).length;
  console.log(`wrote ${values.output}: inputs ${train.graph.inputs.map((i) => i.name).join(', ')}; outputs loss and ${grads} gradients`);
  return 0;
}
