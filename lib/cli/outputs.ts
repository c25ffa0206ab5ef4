// Output paths of the CLI, checked before any work starts (a run must not end, after hours,
// on a folder that does not exist, nor overwrite its own input or checkpoint).
import * as fs from 'node:fs';
import * as path from 'node:path';
import { rangeError } from '../errors';
import { isTempFileOf } from '../util/atomic';

/** The file `spartan train --checkpoint <dir>` keeps its checkpoint in. */
export const checkpointFile = (dir: string) => path.join(dir, 'checkpoint.bin');

const writable = (dir: string) => {
  try {
    fs.accessSync(dir, fs.constants.W_OK);
    return true;
  } catch {
    return false;
  }
};

/** The nearest existing folder or file on the way up from `p` (resolved): `p` itself where it exists. */
function nearestExisting(p: string): string {
  let at = path.resolve(p);
  while (!fs.existsSync(at) && path.dirname(at) !== at) at = path.dirname(at);
  return at;
}

/** `p` with symlinks followed as far as it exists (an output usually does not yet). */
function realPath(p: string): string {
  const at = nearestExisting(p);
  return path.join(fs.realpathSync(at), path.relative(at, path.resolve(p)));
}

/**
 * An output file can be written: its folder exists and is writable, and it is a regular file
 * if it exists (the atomic rename would replace a folder, FIFO or device with one).
 */
export function checkOutputFile(flag: string, file: string): void {
  const dir = path.dirname(path.resolve(file));
  const bad = (why: string) => rangeError('ERR_SPARTAN_OPTION', `--${flag} ${file}: ${why}`);
  if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw bad(`the folder ${dir} does not exist`);
  const st = fs.statSync(file, { throwIfNoEntry: false });
  if (st?.isDirectory()) throw bad('is a folder');
  if (st && !st.isFile()) throw bad('is not a regular file (a device, FIFO or socket), which the write would replace');
  if (!writable(dir)) throw bad(`the folder ${dir} is not writable`);
}

/**
 * The checkpoint folder can be made and written: it is a writable folder, or its nearest
 * existing ancestor is one (it is created, with its parents, after the first epoch, so any of
 * these would fail only then), and a checkpoint file already there is a regular file.
 */
export function checkCheckpointDir(dir: string): void {
  const at = nearestExisting(dir), self = at === path.resolve(dir);
  const bad = (why: string) => rangeError('ERR_SPARTAN_OPTION', `--checkpoint ${dir} ${why}`);
  if (!fs.statSync(at).isDirectory()) throw bad(self ? 'is a file, not a folder' : `cannot be made: ${at} is a file`);
  if (!writable(at)) throw bad(self ? 'is not writable' : `cannot be made: ${at} is not writable`);
  const st = fs.statSync(checkpointFile(dir), { throwIfNoEntry: false });
  if (st && !st.isFile()) throw bad(`holds ${checkpointFile(dir)}, which is not a regular file${st.isDirectory() ? ' but a folder' : ''}`);
}

/**
 * Each output is a file of its own, by real path: not another output, not an input (`what`
 * names it), not the checkpoint file or its temporary files, and not the checkpoint folder or a
 * folder above it (the rename onto the folder would fail after the last epoch). The checkpoint
 * file is not an input either.
 */
export function checkDistinct(outputs: [flag: string, file: string | undefined][], inputs: [what: string, file: string][], checkpoint?: string): void {
  const taken = inputs.map(([what, file]) => ({ what, at: realPath(file) }));
  const ck = checkpoint === undefined ? undefined : realPath(checkpoint);
  if (checkpoint !== undefined) {
    const at = realPath(checkpointFile(checkpoint)), clash = taken.find((t) => t.at === at);
    if (clash) throw rangeError('ERR_SPARTAN_OPTION', `--checkpoint ${checkpoint}: its ${checkpointFile(checkpoint)} would overwrite ${clash.what}`);
    taken.push({ what: `the checkpoint ${checkpointFile(checkpoint)}`, at });
  }
  const given: { flag: string; file: string; at: string }[] = [];
  for (const [flag, file] of outputs) {
    if (file === undefined) continue;
    const at = realPath(file), clash = taken.find((t) => t.at === at);
    const bad = (why: string) => rangeError('ERR_SPARTAN_OPTION', `--${flag} ${file}: ${why}`);
    if (clash) throw bad(`would overwrite ${clash.what}`);
    if (ck !== undefined && (ck === at || ck.startsWith(at + path.sep))) throw bad(`is ${ck === at ? 'the' : 'a folder above the'} --checkpoint folder ${checkpoint}`);
    if (ck !== undefined && isTempFileOf(checkpointFile(ck), at)) throw bad(`is a temporary file of the checkpoint writer in ${checkpoint}`);
    taken.push({ what: `the --${flag} file`, at });
    given.push({ flag, file, at });
  }
  // a run removes dead writers' temporary files beside its outputs (removeDeadTempFiles): no
  // file it reads or writes may be named like one (--model .m.onnx.<pid>.0.<hex>.tmp beside --export m.onnx)
  for (const { flag, file, at } of given) {
    const named = taken.find((t) => isTempFileOf(at, t.at));
    if (named) throw rangeError('ERR_SPARTAN_OPTION', `${named.what} (${named.at}) is named like a temporary file of --${flag} ${file}, which a run removes once its writer is gone: rename it`);
  }
}
