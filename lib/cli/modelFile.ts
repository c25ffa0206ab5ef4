// Reading a model file named on the command line: one ERR_SPARTAN_ONNX naming the file,
// whether it cannot be read or is not an ONNX model.
import { rangeError } from '../errors';
import { readFileCoded } from '../util/readFile';
import { decodeModel, type Model } from '../graph/model';

export function readModelFile(file: string): Model {
  const bytes = readFileCoded(file, 'ERR_SPARTAN_ONNX');
  try {
    return decodeModel(bytes);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code !== 'ERR_SPARTAN_ONNX') throw e;
    const hint = err.message.startsWith('not an ONNX model') ? ' (is it an .onnx file, such as torch.onnx.export writes?)' : '';
    throw rangeError('ERR_SPARTAN_ONNX', `${file}: ${err.message}${hint}`);
  }
}
