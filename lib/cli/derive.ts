// spartan graph derive <forward.onnx> -o <train.onnx> --logits <name> ...
import { deriveTrainingGraph } from '../graph/autodiff';
import { TRAINING_OPSET } from '../graph/opsetLift';
import { BATCH_NORM_MODES, type BatchNormMode } from '../graph/trainMode';
import { encodeModel, type Model } from '../graph/model';
import { untieInitializers, untiedNote } from '../graph/untie';
import { constantsNote, splitParameters } from '../graph/params';
import { rangeError } from '../errors';
import { writeFileAtomic } from '../util/atomic';
import { onnxruntimeReason, GraphRunner } from '../graph/runner';
import { checkDistinct, checkOutputFile } from './outputs';
import { readModelFile } from './modelFile';
import { parseCommand, refuseEmpty } from './args';

/** ERR_SPARTAN_ONNX naming `what` (and what was not done) unless onnxruntime opens the model. */
async function checkOpens(model: Model | Uint8Array, what: string): Promise<void> {
  try {
    await (await GraphRunner.create(model)).release();
  } catch (e) {
    throw Object.assign(rangeError('ERR_SPARTAN_ONNX', `onnxruntime refuses ${what}: ${onnxruntimeReason(e)}`), { cause: e });
  }
}

export async function runDerive(argv: string[]): Promise<number> {
  const { values, positionals, tokens } = parseCommand('graph derive', {
    args: argv,
    allowPositionals: true,
    tokens: true,
    options: {
      output: { type: 'string', short: 'o' },
      logits: { type: 'string' },
      labels: { type: 'string', default: 'labels' },
      params: { type: 'string' },
      loss: { type: 'string', default: 'cross-entropy' },
      'label-smoothing': { type: 'string', default: '0' },
      'class-axis': { type: 'string' },
      'keep-tied': { type: 'boolean', default: false },
      'batch-norm': { type: 'string', default: 'as-exported' },
      dropout: { type: 'string', default: 'random' },
    },
  });
  refuseEmpty(tokens);
  if (positionals.length !== 1 || !values.output || !values.logits)
    throw rangeError('ERR_SPARTAN_OPTION', 'graph derive needs <forward.onnx>, -o <train.onnx> and --logits <output name>');
  if (values.loss !== 'cross-entropy' && values.loss !== 'mse') throw rangeError('ERR_SPARTAN_OPTION', `--loss must be cross-entropy or mse`);
  const batchNorm = values['batch-norm'] as BatchNormMode;
  if (!BATCH_NORM_MODES.includes(batchNorm)) throw rangeError('ERR_SPARTAN_OPTION', `--batch-norm must be ${BATCH_NORM_MODES.join(', ')} (got ${batchNorm})`);
  const dropout = values.dropout as 'random' | 'mask-inputs';
  if (dropout !== 'random' && dropout !== 'mask-inputs') throw rangeError('ERR_SPARTAN_OPTION', `--dropout must be random or mask-inputs (got ${dropout})`);
  const classAxis = values['class-axis'] === undefined ? undefined : Number(values['class-axis']);
  if (classAxis !== undefined && !/^-?\d+$/.test(values['class-axis']!))
    throw rangeError('ERR_SPARTAN_OPTION', `--class-axis must be an integer axis of the logits, 1 for PyTorch's [N, C, ...] or -1 for the last (got ${values['class-axis']})`);
  const labelSmoothing = Number(values['label-smoothing']);
  if (!/^\d*\.?\d+(e-?\d+)?$/i.test(values['label-smoothing']!) || !(labelSmoothing >= 0 && labelSmoothing < 1))
    throw rangeError('ERR_SPARTAN_OPTION', `--label-smoothing must be a number in [0, 1) (got ${values['label-smoothing']})`);
  if (values.loss === 'mse' && (classAxis !== undefined || labelSmoothing !== 0))
    throw rangeError('ERR_SPARTAN_OPTION', `--${classAxis !== undefined ? 'class-axis' : 'label-smoothing'} is for the cross-entropy loss: it has no meaning with --loss mse`);
  checkOutputFile('output', values.output);
  checkDistinct([['output', values.output]], [['the forward model it reads', positionals[0]]]);
  const decoded = readModelFile(positionals[0]);
  // a model older than opset 17 is read as 17 (opsetLift.ts), which can make an invalid node
  // valid (a Softmax axis past the rank, an attribute of the wrong type): onnxruntime opens the
  // model at its own opset first, so that no training graph comes from a model it refuses
  if (decoded.opset < TRAINING_OPSET) await checkOpens(decoded, `the model ${positionals[0]} (opset ${decoded.opset}), so nothing was derived`);
  const { model: forward, untied } = values['keep-tied'] ? { model: decoded, untied: [] } : untieInitializers(decoded);
  const train = deriveTrainingGraph(forward, {
    logits: values.logits,
    labels: values.labels,
    params: values.params ? values.params.split(',').map((s) => s.trim()).filter(Boolean) : undefined,
    loss: values.loss,
    labelSmoothing,
    classAxis,
    batchNorm,
    dropout,
  });
  const bytes = encodeModel(train);
  // onnxruntime opens the graph before it is written: a model the checks let through that it
  // would refuse (a type clash, say) is an error now, not a file that fails where it is used
  await checkOpens(bytes, `the training graph derived from ${positionals[0]}, so nothing was written`);
  writeFileAtomic(values.output, bytes);
  if (untied.length) console.error(`note: ${untiedNote(untied)} (--keep-tied keeps them merged)`);
  const constants = values.params ? [] : splitParameters(forward).constants;
  if (constants.length) console.error(`note: ${constantsNote(constants)} (--params trains them all the same)`);
  const grads = train.graph.outputs.filter((o) => o.name.startsWith('grad.')).length;
  const state = train.graph.outputs.filter((o) => o.name.startsWith('state.')).length;
  console.log(`wrote ${values.output}: inputs ${train.graph.inputs.map((i) => i.name).join(', ')}; outputs loss and ${grads} gradients` +
    (state ? `, and ${state} running statistics (state.<name>: feed each back as <name> next step)` : '') +
    (dropout === 'mask-inputs' && train.graph.inputs.some((i) => i.name.startsWith('dropout_mask.')) ? '; feed each dropout_mask.<name> 0 or 1 / (1 - ratio) per entry' : ''));
  return 0;
}
