// Reads a whole file in pieces: fs.readFileSync refuses files over 2 GiB, which a large
// model's checkpoint (parameters, masks, optimizer moments) can pass; a Buffer holds up to
// buffer.constants.MAX_LENGTH (4 GiB on Node 20).
import * as fs from 'node:fs';
import { constants } from 'node:buffer';

/** fs.readSync's shape: bytes read into `data[offset, offset + length)` (0 at the end of the file). */
export type ReadFn = (fd: number, data: Uint8Array, offset: number, length: number, position: number) => number;

const PIECE = 1 << 30;

export function readAll(file: string, read: ReadFn = fs.readSync): Buffer {
  const fd = fs.openSync(file, 'r');
  try {
    const size = fs.fstatSync(fd).size;
    if (size > constants.MAX_LENGTH) throw new Error(`${size} bytes is more than this Node can hold in one buffer (${constants.MAX_LENGTH})`);
    const data = Buffer.allocUnsafe(size);
    for (let done = 0; done < size; ) {
      const n = read(fd, data, done, Math.min(PIECE, size - done), done);
      if (!(n > 0)) throw new Error(`the file ended at byte ${done} of ${size} (changed while being read?)`);
      done += n;
    }
    return data;
  } finally {
    fs.closeSync(fd);
  }
}
