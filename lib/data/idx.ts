// IDX files (the MNIST format): a big-endian header, then uint8 data.
import { rangeError } from '../errors';
import { readFileCoded } from '../util/readFile';

export interface IdxArray {
  dims: number[];
  data: Uint8Array;
}

export function readIdx(file: string): IdxArray {
  const buf = readFileCoded(file, 'ERR_SPARTAN_DATASET');
  if (buf.length < 8 || buf[0] !== 0 || buf[1] !== 0 || buf[2] !== 0x08) throw rangeError('ERR_SPARTAN_DATASET', `${file} is not a uint8 IDX file`);
  const rank = buf[3];
  const dims = Array.from({ length: rank }, (_, i) => buf.readUInt32BE(4 + 4 * i));
  const offset = 4 + 4 * rank, count = dims.reduce((a, b) => a * b, 1);
  if (buf.length < offset + count) throw rangeError('ERR_SPARTAN_DATASET', `${file} is truncated`);
  return { dims, data: new Uint8Array(buf.buffer, buf.byteOffset + offset, count) };
}
