// A Trainer's checkpoint file: its state and the caller's metadata, in one v8-serialised
// object, written atomically (a crash leaves the previous file or the new one, never half),
// then an 8-byte trailer: "SCRC" and the CRC-32 of the object's bytes, little-endian. v8
// ignores bytes after the object, so readers that predate the trailer still read these files,
// and files written before it (the object alone, ending where the file ends) still load,
// unchecked. A file damaged after it was written (a flipped bit in a weight, bytes cut off or
// appended) fails the check.
import * as path from 'node:path';
import * as v8 from 'node:v8';
import { crc32 } from 'node:zlib';
import { constants } from 'node:buffer';
import { rangeError, typeError } from '../errors';
import { makeFolders, writeFileAtomic } from '../util/atomic';
import { readAll } from '../util/readAll';
import type { SparsifierState } from '../sparsity/sparsifier';
import type { OptimizerState } from '../optim/optimizer';

/** Everything a Trainer changes while it trains. */
export interface TrainerState {
  params: Float32Array[];
  /** BatchNormalization's running statistics (Trainer.buffers), where the model has any. */
  buffers?: Float32Array[];
  sparsifier: SparsifierState;
  optimizer: OptimizerState;
}

// The layout. The name is the CLI's, which wrote the first ones (they still load). A later
// layout gets a new version, and the reader says which versions it knows rather than
// misreading one. Files from before the version field are version 1.
const FORMAT = 'spartan-cli-checkpoint', VERSION = 1;
const STATE_KEYS = ['params', 'buffers', 'sparsifier', 'optimizer'] as const;
const RESERVED = new Set<string>(['format', 'version', ...STATE_KEYS]);
const TRAILER_MAGIC = 'SCRC', TRAILER_BYTES = 8;

/**
 * A state's containers copied (never its typed arrays), each read once (a getter cannot hand
 * the checks one array and the writes another), each array's holes made undefined: every()
 * and some() skip holes, so a hole passed the loaders' checks and failed mid-write, after
 * other parts had loaded.
 */
export function denseState(s: TrainerState): TrainerState {
  const isObject = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null && !Array.isArray(x);
  const dense = (x: unknown) => (Array.isArray(x) ? Array.from(x) : x);
  const denseFields = (x: unknown) => (isObject(x) ? Object.fromEntries(Object.entries(x).map(([k, v]) => [k, dense(v)])) : x);
  const { params, buffers, sparsifier, optimizer } = s;
  const opt = isObject(optimizer) ? { ...optimizer, buffers: denseFields(optimizer.buffers) } : optimizer;
  return {
    params: dense(params), ...(buffers !== undefined ? { buffers: dense(buffers) } : {}),
    sparsifier: denseFields(sparsifier), optimizer: opt,
  } as TrainerState;
}

/** CRC-32 in pieces (1 GiB), chained: one call's length may be a 32-bit count in zlib. */
export function crc32Of(bytes: Uint8Array, piece = 1 << 30): number {
  let crc = 0;
  for (let at = 0; at < bytes.length; at += piece) crc = crc32(bytes.subarray(at, at + piece), crc);
  return crc;
}

function trailer(payload: Uint8Array): Buffer {
  const t = Buffer.alloc(TRAILER_BYTES);
  t.write(TRAILER_MAGIC, 0, 'latin1');
  t.writeUInt32LE(crc32Of(payload), 4);
  return t;
}

/** The object in a checkpoint file's bytes, its checksum verified where it has one. */
function contentsOf(file: string, bytes: Buffer): unknown {
  const at = bytes.length - TRAILER_BYTES;
  if (at >= 0 && bytes.toString('latin1', at, at + 4) === TRAILER_MAGIC) {
    const payload = bytes.subarray(0, at);
    if (crc32Of(payload) !== bytes.readUInt32LE(at + 4)) throw unusable(file, 'its checksum does not match its contents: the file was damaged after it was written');
    try {
      return v8.deserialize(payload);
    } catch (e) {
      throw unusable(file, (e as Error).message);
    }
  }
  // No trailer. A file from before it is one v8 value that ends where the file ends; v8 ignores
  // what follows a value, so a current file cut short or lengthened by a few bytes would
  // otherwise read as such a file, unchecked.
  const d = new v8.DefaultDeserializer(bytes);
  let value: unknown;
  try {
    d.readHeader();
    value = d.readValue();
  } catch (e) {
    throw unusable(file, (e as Error).message);
  }
  if (d.readRawBytes(0).byteOffset - bytes.byteOffset === bytes.length) return value; // written before the trailer
  throw unusable(file, 'it does not end with its checksum: the file was cut short or had bytes added after it was written');
}

/** Writes state and meta (any v8-serialisable values, under keys of their own) to `file`, creating its folder. */
export function writeCheckpoint(file: string, state: TrainerState, meta: Record<string, unknown> = {}): void {
  if (typeof file !== 'string' || file === '') throw typeError('ERR_SPARTAN_TYPE', `the checkpoint path must be a non-empty string (got ${typeof file})`);
  if (typeof meta !== 'object' || meta === null) throw rangeError('ERR_SPARTAN_OPTION', 'checkpoint metadata must be an object');
  // read once (a getter or a Proxy trap that throws is the caller's error, coded; one whose value
  // changes between reads cannot have one value checked and another saved)
  let fields: [string, unknown][];
  try {
    fields = Object.entries(meta);
  } catch (e) {
    throw Object.assign(rangeError('ERR_SPARTAN_OPTION', `checkpoint metadata cannot be read: ${(e as Error)?.message ?? String(e)}`), { cause: e });
  }
  const clash = fields.map(([k]) => k).find((k) => RESERVED.has(k));
  if (clash) throw rangeError('ERR_SPARTAN_OPTION', `checkpoint metadata may not use the key "${clash}" (the checkpoint's own: ${[...RESERVED].join(', ')})`);
  let bytes: Buffer;
  try {
    bytes = v8.serialize({ format: FORMAT, version: VERSION, ...Object.fromEntries(fields), ...state });
  } catch (e) {
    // only now, on the failure path, each metadata value alone: is it the caller's?
    for (const [k, v] of fields)
      try {
        v8.serialize(v);
      } catch (m) {
        throw rangeError('ERR_SPARTAN_OPTION', `checkpoint metadata "${k}" cannot be saved: ${(m as Error).message} (values v8.serialize takes: numbers, strings, plain objects, arrays, typed arrays, ...)`);
      }
    throw tooLarge(file, (e as Error).message);
  }
  // the file must fit one buffer when it is read back, trailer included
  if (bytes.length > constants.MAX_LENGTH - TRAILER_BYTES) throw tooLarge(file, `${bytes.length} bytes of state`);
  try {
    makeFolders(path.dirname(path.resolve(file)));
    writeFileAtomic(file, [bytes, trailer(bytes)]);
  } catch (e) {  // a folder where the file should be, no permission, a full disk: the old file stands
    throw rangeError('ERR_SPARTAN_STATE', `cannot write the checkpoint ${file}: ${(e as Error).message}; the previous file, if any, is unchanged`);
  }
}

/** A checkpoint's state and metadata, or one ERR_SPARTAN_STATE naming the file (nothing is read from a damaged one). */
export function readCheckpoint(file: string): { state: TrainerState; meta: Record<string, unknown> } {
  let bytes: Buffer;
  try {
    bytes = readAll(file);
  } catch (e) {
    throw unusable(file, (e as Error).message);
  }
  const ck = contentsOf(file, bytes) as Record<string, unknown>;
  if (typeof ck !== 'object' || ck === null) throw unusable(file, 'not a checkpoint');
  if ((ck.format ?? FORMAT) !== FORMAT) throw unusable(file, `format ${String(ck.format)}`);
  if ((ck.version ?? 1) !== VERSION)
    throw rangeError('ERR_SPARTAN_STATE', `${file} is a version ${String(ck.version)} checkpoint; this spartan reads version ${VERSION} (use the version that wrote it, or start without it)`);
  if (!Array.isArray(ck.params) || !ck.sparsifier || !ck.optimizer) throw unusable(file, 'fields missing');
  const meta: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(ck)) if (!RESERVED.has(k)) meta[k] = v;
  const state = { params: ck.params, sparsifier: ck.sparsifier, optimizer: ck.optimizer, ...(ck.buffers ? { buffers: ck.buffers } : {}) } as TrainerState;
  return { state, meta };
}

function tooLarge(file: string, why: string) {
  return rangeError('ERR_SPARTAN_STATE', `cannot write the checkpoint ${file}: ${why} (one checkpoint holds at most ${constants.MAX_LENGTH - TRAILER_BYTES} bytes of state, Node's largest buffer less its checksum); the previous file is unchanged`);
}

export function unusable(file: string, why: string) {
  return rangeError('ERR_SPARTAN_STATE', `${file} is not a usable checkpoint (${why}); remove it, or start without it`);
}
