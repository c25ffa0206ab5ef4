// Reading a model file named on the command line: one ERR_SPARTAN_ONNX naming the file,
// whether it cannot be read or is not an ONNX model.
import * as fs from 'node:fs';
import { rangeError } from '../errors';
import { decodeModel, type Model } from '../graph/model';

export function readModelFile(file: string): Model {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw rangeError('ERR_SPARTAN_ONNX', `cannot read ${file}: ${(e as Error).message}`);
  }
  try {
    return decodeModel(bytes);
  } catch (e) {
    const err = e as Error & { code?: string };
    if (err.code !== 'ERR_SPARTAN_ONNX') throw e;
    throw rangeError('ERR_SPARTAN_ONNX', `${file}: ${err.message} (is it an .onnx file, such as torch.onnx.export writes?)`);
  }
}
