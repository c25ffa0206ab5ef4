// writeFileAtomic: every byte reaches the file however the OS splits the write, and a write
// that fails leaves the old file and no temporary one.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { expect } from 'chai';
import { writeAll, writeFileAtomic, type WriteFn } from '../lib/util/atomic';
import { freshSeed, rng } from './reference';

describe('writeFileAtomic', () => {
  let dir: string;
  beforeEach(() => (dir = fs.mkdtempSync(path.join(os.tmpdir(), 'spartan-atomic-'))));
  afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

  const randomBytes = (n: number, seed: number) => {
    const r = rng(seed);
    return Uint8Array.from({ length: n }, () => Math.floor(r() * 256));
  };
  // A writer that moves at most `most` bytes a call, as write(2) may (about 2 GiB at most on Linux).
  const shortWriter = (most: number, calls: number[]): WriteFn => (fd, data, offset, length) => {
    calls.push(Math.min(most, length));
    return fs.writeSync(fd, data, offset, Math.min(most, length));
  };

  it('writes every byte when each write moves only part of them', () => {
    const seed = freshSeed(), data = randomBytes(10_007, seed), calls: number[] = [];
    const file = path.join(dir, 'ck.bin');
    writeFileAtomic(file, data, shortWriter(1000, calls));
    expect(fs.readFileSync(file).equals(Buffer.from(data)), `seed ${seed}`).to.equal(true);
    expect(calls).to.have.length(11);
    expect(fs.readdirSync(dir)).to.deep.equal(['ck.bin']);
  });

  it('a failing write keeps the old file and removes the temporary one', () => {
    const file = path.join(dir, 'ck.bin');
    fs.writeFileSync(file, 'the previous checkpoint');
    const failing: WriteFn = (fd, data, offset, length) => {
      if (offset > 0) throw Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
      return fs.writeSync(fd, data, offset, Math.min(100, length));
    };
    expect(() => writeFileAtomic(file, randomBytes(1000, 1), failing)).to.throw(/ENOSPC/);
    expect(fs.readFileSync(file, 'utf8')).to.equal('the previous checkpoint');
    expect(fs.readdirSync(dir)).to.deep.equal(['ck.bin']);
  });

  it('a write that makes no progress is an error, not an endless loop', () => {
    expect(() => writeAll(0, new Uint8Array(10), () => 0)).to.throw(/no progress at byte 0 of 10/);
    const file = path.join(dir, 'out.onnx');
    expect(() => writeFileAtomic(file, 'abc', () => 0)).to.throw(/no progress/);
    expect(fs.readdirSync(dir)).to.deep.equal([]);
  });

  it('an empty file and a string are written too', () => {
    writeFileAtomic(path.join(dir, 'empty'), new Uint8Array(0));
    writeFileAtomic(path.join(dir, 'text.json'), '{"a": "é"}\n');
    expect(fs.statSync(path.join(dir, 'empty')).size).to.equal(0);
    expect(fs.readFileSync(path.join(dir, 'text.json'), 'utf8')).to.equal('{"a": "é"}\n');
  });
});
