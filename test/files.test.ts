// writeFileAtomic: every byte reaches the file however the OS splits the write, and a write
// that fails leaves the old file and no temporary one. readAll: every byte comes back however
// the reads split, and a file that ends early is an error.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { expect } from 'chai';
import { makeFolders, removeDeadTempFiles, writeAll, writeFileAtomic, type WriteFn } from '../lib/util/atomic';
import { spawnSync } from 'node:child_process';
import { readAll, type ReadFn } from '../lib/util/readAll';
import { crc32Of } from '../lib/train/checkpoint';
import { freshSeed, rng } from './reference';

describe('whole files: atomic writes and pieced reads (lib/util)', () => {
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

  it('asks for at most 1 GiB a write (fs.writeSync refuses more than 2 GiB: a checkpoint of a large model)', () => {
    const lengths: number[] = [];
    const big = { length: 3 * 2 ** 30 + 5 } as unknown as Uint8Array; // only its length is read; the writer below takes no bytes
    writeAll(7, big, (fd, data, offset, length) => (expect([fd, data, offset]).to.deep.equal([7, big, lengths.reduce((a, b) => a + b, 0)]), lengths.push(length), length));
    expect(lengths).to.deep.equal([2 ** 30, 2 ** 30, 2 ** 30, 5]);
  });

  it('a write that makes no progress is an error, not an endless loop', () => {
    expect(() => writeAll(0, new Uint8Array(10), () => 0)).to.throw(/no progress at byte 0 of 10/);
    const file = path.join(dir, 'out.onnx');
    expect(() => writeFileAtomic(file, 'abc', () => 0)).to.throw(/no progress/);
    expect(fs.readdirSync(dir)).to.deep.equal([]);
  });

  it('an empty file, a string and pieces (one after another) are written too', () => {
    writeFileAtomic(path.join(dir, 'empty'), new Uint8Array(0));
    writeFileAtomic(path.join(dir, 'text.json'), '{"a": "é"}\n');
    writeFileAtomic(path.join(dir, 'pieces'), [Uint8Array.of(1, 2), new Uint8Array(0), Uint8Array.of(3)]);
    expect(fs.statSync(path.join(dir, 'empty')).size).to.equal(0);
    expect(fs.readFileSync(path.join(dir, 'text.json'), 'utf8')).to.equal('{"a": "é"}\n');
    expect([...fs.readFileSync(path.join(dir, 'pieces'))]).to.deep.equal([1, 2, 3]);
  });

  it('readAll reads every byte when each read returns only part of them', () => {
    const seed = freshSeed(), data = randomBytes(5_003, seed), file = path.join(dir, 'ck.bin');
    fs.writeFileSync(file, data);
    const calls: number[] = [];
    const short: ReadFn = (fd, buf, offset, length, position) => {
      calls.push(position);
      return fs.readSync(fd, buf, offset, Math.min(777, length), position);
    };
    expect(readAll(file, short).equals(Buffer.from(data)), `seed ${seed}`).to.equal(true);
    expect(calls).to.deep.equal([0, 777, 1554, 2331, 3108, 3885, 4662]);
    expect(readAll(file).equals(Buffer.from(data))).to.equal(true);
    fs.writeFileSync(path.join(dir, 'empty'), '');
    expect(readAll(path.join(dir, 'empty')).length).to.equal(0);
  });

  it('readAll of a file that ends before its size says so rather than returning stale bytes', () => {
    const file = path.join(dir, 'ck.bin');
    fs.writeFileSync(file, randomBytes(100, 2));
    const ending: ReadFn = (fd, buf, offset, length, position) => (position >= 40 ? 0 : fs.readSync(fd, buf, offset, Math.min(40, length), position));
    expect(() => readAll(file, ending)).to.throw(/ended at byte 40 of 100/);
    expect(() => readAll(path.join(dir, 'missing'))).to.throw(/ENOENT/);
  });

  it('removeDeadTempFiles removes the temporary files of writers that no longer run, and nothing else', () => {
    const file = path.join(dir, 'ck.bin'), dead = spawnSync(process.execPath, ['-e', '']).pid!;
    fs.writeFileSync(file, 'the checkpoint');
    const gone = [`.ck.bin.${dead}.0.0123456789ab.tmp`, `.ck.bin.${dead}.7.abcdef.tmp`];
    // a live writer's (this process; pid 1, which may be another user's: EPERM), other names, a folder
    const kept = [`.ck.bin.${process.pid}.0.0123456789ab.tmp`, '.ck.bin.1.0.0123456789ab.tmp', `.ck.bin.${dead}.0.0123456789ab.tmp.bak`, `.ck.bin.${dead}.tmp`,
      `.ck.bin.0.0.0123456789ab.tmp`, `.other.bin.${dead}.0.0123456789ab.tmp`, `ck.bin.${dead}.0.0123456789ab.tmp`, 'ck.bin'];
    for (const n of [...gone, ...kept.slice(0, -1)]) fs.writeFileSync(path.join(dir, n), 'x');
    fs.mkdirSync(path.join(dir, `.ck.bin.${dead}.1.0123456789ab.tmp`));
    expect(removeDeadTempFiles(file).sort()).to.deep.equal([...gone].sort());
    expect(fs.readdirSync(dir).sort()).to.deep.equal([...kept, `.ck.bin.${dead}.1.0123456789ab.tmp`].sort());
    // the name writeFileAtomic gives its temporary file, under a dead writer's pid
    let named = '';
    const before = new Set(fs.readdirSync(dir));
    writeFileAtomic(file, 'new', (fd, data, offset, length) => {
      named = fs.readdirSync(dir).find((n) => !before.has(n))!;
      return fs.writeSync(fd, data, offset, length);
    });
    expect(named).to.match(new RegExp(`^\\.ck\\.bin\\.${process.pid}\\.`));
    fs.writeFileSync(path.join(dir, named.replace(`.${process.pid}.`, `.${dead}.`)), 'x');
    expect(removeDeadTempFiles(file)).to.deep.equal([named.replace(`.${process.pid}.`, `.${dead}.`)]);
    expect(removeDeadTempFiles(path.join(dir, 'missing', 'ck.bin'))).to.deep.equal([]); // no folder yet
  });

  it('makeFolders makes the missing folders level by level; where mkdir cannot (procfs, a file in the way) it throws, where the recursive mkdirSync spun forever', () => {
    const deep = path.join(dir, 'a', 'b', 'c');
    makeFolders(deep);
    makeFolders(deep); // there already
    expect(fs.statSync(deep).isDirectory()).to.equal(true);
    fs.writeFileSync(path.join(dir, 'f'), '');
    expect(() => makeFolders(path.join(dir, 'f', 'g'))).to.throw(/ENOTDIR/);
    if (fs.existsSync('/proc/self')) expect(() => makeFolders('/proc/nope/deeper')).to.throw(/ENOENT: no such file or directory, mkdir '\/proc\/nope'/);
  });

  it("a checkpoint's CRC-32 taken in chained pieces equals zlib's over the whole", () => {
    const seed = freshSeed(), data = randomBytes(5_003, seed);
    for (const piece of [1, 7, 4096, 5_003, 1 << 30]) expect(crc32Of(data, piece), `piece ${piece}, seed ${seed}`).to.equal(zlib.crc32(data));
    expect(crc32Of(new Uint8Array(0))).to.equal(0);
  });
});
