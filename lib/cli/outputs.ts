// Output paths of the CLI, checked before any work starts (a run must not end, after hours,
// on a folder that does not exist).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rangeError } from '../errors';

/** An output file can be written: its folder exists and is writable, and it is not a folder itself. */
export function checkOutputFile(flag: string, file: string): void {
  const dir = path.dirname(path.resolve(file));
  const bad = (why: string) => rangeError('ERR_SPARTAN_OPTION', `--${flag} ${file}: ${why}`);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw bad(`the folder ${dir} does not exist`);
  if (fs.existsSync(file) && fs.statSync(file).isDirectory()) throw bad('is a folder');
  try {
    fs.accessSync(dir, fs.constants.W_OK);
  } catch {
    throw bad(`the folder ${dir} is not writable`);
  }
}
