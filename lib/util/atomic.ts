// Atomic file writes: write a temporary file beside the target, fsync, rename, fsync the
// folder. A crash leaves either the old file or the new one, never a torn one.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { randomBytes } from 'node:crypto';
import { threadId } from 'node:worker_threads';

/** fs.writeSync's shape: bytes written from `data[offset, offset + length)`. */
export type WriteFn = (fd: number, data: Uint8Array, offset: number, length: number) => number;

const PIECE = 1 << 30;

/**
 * Writes all of `data` in pieces of at most 1 GiB: fs.writeSync refuses a length over 2 GiB,
 * which a large model's checkpoint can pass, and one write(2) may move fewer bytes than asked.
 */
export function writeAll(fd: number, data: Uint8Array, write: WriteFn = fs.writeSync): void {
  for (let done = 0; done < data.length; ) {
    const n = write(fd, data, done, Math.min(PIECE, data.length - done));
    if (!(n > 0)) throw new Error(`write made no progress at byte ${done} of ${data.length}`);
    done += n;
  }
}

/** Makes the rename itself durable; best effort, as some platforms cannot open a folder. */
function syncFolder(dir: string): void {
  let fd: number;
  try {
    fd = fs.openSync(dir, 'r');
  } catch {
    return;
  }
  try {
    fs.fsyncSync(fd);
  } catch {
    // a folder that cannot be synced (some file systems): the rename stands either way
  } finally {
    fs.closeSync(fd);
  }
}

/**
 * Makes `dir` and its missing parents, one mkdir a level. fs.mkdirSync's recursive form loops
 * forever (100 % CPU) where mkdir fails with ENOENT under a folder that exists (procfs:
 * /proc/nope), taking that for a missing parent; here the walk up to the nearest existing folder
 * ends at the root at the latest, and mkdir's own error is thrown.
 */
export function makeFolders(dir: string): void {
  const missing: string[] = [];
  for (let at = path.resolve(dir); ; at = path.dirname(at)) {
    try {
      fs.statSync(at);
      break;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT' || path.dirname(at) === at) throw e;
    }
    missing.push(at);
  }
  for (const d of missing.reverse()) {
    try {
      fs.mkdirSync(d);
    } catch (e) { // made meanwhile by another writer: fine if it is a folder
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST' || !fs.statSync(d).isDirectory()) throw e;
    }
  }
}

const tempPrefix = (file: string) => `.${path.basename(file)}.`;

/** Whether `other` is a name writeFileAtomic may give its temporary file while it writes `file`. */
export function isTempFileOf(file: string, other: string): boolean {
  const base = path.basename(other);
  return path.dirname(path.resolve(other)) === path.dirname(path.resolve(file)) && base.startsWith(tempPrefix(file)) && base.endsWith('.tmp');
}

/** The process id in the name of writeFileAtomic's temporary file for `file`, or undefined if `other` is not one. */
function writerOf(file: string, other: string): number | undefined {
  if (!isTempFileOf(file, other)) return undefined;
  const m = /^(\d+)\.\d+\.[0-9a-f]+\.tmp$/.exec(path.basename(other).slice(tempPrefix(file).length));
  return m ? Number(m[1]) : undefined;
}

/** Whether no process has id `pid` (EPERM: one does, of another user). */
function gone(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Removes the temporary files writers of `file` left when they died mid-write (SIGKILL, a crash):
 * only names of writeFileAtomic's pattern whose process no longer runs, so never a live writer's.
 * (Process ids are this host's: a folder shared with another host or container must not have a
 * run of its own writing there at the same time.) Best effort; returns the names removed.
 */
export function removeDeadTempFiles(file: string): string[] {
  const dir = path.dirname(path.resolve(file)), removed: string[] = [];
  let names: string[];
  try {
    names = fs.readdirSync(dir);
  } catch {
    return removed; // no folder yet: nothing left behind
  }
  for (const name of names) {
    const pid = writerOf(file, path.join(dir, name));
    if (pid === undefined || pid < 1 || !gone(pid)) continue;
    try {
      fs.rmSync(path.join(dir, name));
      removed.push(name);
    } catch {
      // removed by another run meanwhile, or not ours to remove: it stays
    }
  }
  return removed;
}

/**
 * `data` may come in pieces, written one after another (a large payload and its trailer, without
 * copying both into one buffer). `write` is for tests (a short or failing writer); the temporary
 * file never outlives a failure.
 */
export function writeFileAtomic(file: string, data: Uint8Array | string | readonly Uint8Array[], write?: WriteFn): void {
  const dir = path.dirname(path.resolve(file));
  // unique per process, worker thread and call; 'wx' refuses to reuse a name that exists
  const tmp = path.join(dir, `${tempPrefix(file)}${process.pid}.${threadId}.${randomBytes(6).toString('hex')}.tmp`);
  const fd = fs.openSync(tmp, 'wx');
  try {
    try {
      for (const piece of typeof data === 'string' ? [Buffer.from(data)] : Array.isArray(data) ? data : [data as Uint8Array]) writeAll(fd, piece, write);
      fs.fsyncSync(fd);
    } finally {
      fs.closeSync(fd);
    }
    fs.renameSync(tmp, file);
  } catch (e) {
    fs.rmSync(tmp, { force: true });
    throw e;
  }
  syncFolder(dir);
}
