// A whole (small) file, or one coded RangeError naming it: a dataset's or a model's.
import * as fs from 'node:fs';
import { rangeError, type SpartanErrorCode } from '../errors';

export function readFileCoded(file: string, code: SpartanErrorCode): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (e) {
    throw rangeError(code, `cannot read ${file}: ${(e as Error).message}`);
  }
}
