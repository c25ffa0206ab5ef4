// backend(): what was built and whether CUDA is usable here (and why not).
import { spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { expect } from 'chai';
import * as spartan from '../lib/index';

const info = spartan.backend();

describe('backend', () => {
  it('reports the CPU path, the build, the thread count and the CUDA status', () => {
    expect(info.cpu).to.equal(true);
    expect(info.threads).to.be.a('number').and.at.least(1);
    expect(info.build).to.be.oneOf(['cmake', 'gyp']);
    expect(info.simd).to.be.oneOf(['avx512', 'avx2', 'portable']);
    expect(info.cudaCompiled).to.be.a('boolean');
    expect(info.cuda).to.be.a('boolean');
    if (!info.cuda) expect(info.reason).to.match(/^(not compiled|no driver|no device)/);
    if (!info.cudaCompiled) expect(info.reason).to.match(/^not compiled/);
    if (info.build === 'gyp') expect(info.cudaCompiled).to.equal(false);
  });

  it('changes the thread count and gives identical results with 1 and many threads', () => {
    const v = Float32Array.from({ length: 300000 }, (_, i) => Math.abs(Math.sin(i * 12.9898) * 43758.5453) % 1);
    const before = spartan.backend().threads;
    try {
      expect(spartan.setNumThreads(1)).to.equal(1);
      const one = spartan.softTopK(v, 30000, 25);
      expect(spartan.setNumThreads(3)).to.equal(3);
      const three = spartan.softTopK(v, 30000, 25);
      // chunk partial sums merge in chunk order: bit-identical whatever the thread count
      expect(three.lambda).to.equal(one.lambda);
      expect(Buffer.from(three.mask.buffer).equals(Buffer.from(one.mask.buffer))).to.equal(true);
      // parking the threads between kernels (as the Trainer does before each onnxruntime run) changes nothing
      spartan.parkThreads();
      const parked = spartan.softTopK(v, 30000, 25);
      spartan.parkThreads();
      expect(Buffer.from(parked.mask.buffer).equals(Buffer.from(three.mask.buffer))).to.equal(true);
    } finally {
      spartan.setNumThreads(before);
    }
  });
});

describe('CUDA', () => {
  const why = info.cuda ? '' : ` [skipped: ${info.reason}]`;
  it(`lists the devices when CUDA is usable${why}`, function () {
    if (!info.cuda) {
      console.log(`      CUDA tests skipped: ${info.reason}`);
      this.skip();
    }
    expect(info.devices.length).to.be.at.least(1);
    for (const d of info.devices) {
      expect(d.name).to.be.a('string').and.not.equal('');
      expect(d.computeCapability).to.match(/^\d+\.\d+$/);
      expect(d.totalMemory).to.be.above(0);
    }
  });

  it('SPARTAN_SIMD caps the soft top-k loops (avx2, portable) with bit-identical results; another value is ignored with a warning', function () {
    this.timeout(120000);
    const child = (simd: string) => {
      const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, 'fixtures', 'simd-hash.ts')], { encoding: 'utf8', env: { ...process.env, SPARTAN_SIMD: simd } });
      expect(r.status, r.stderr).to.equal(0);
      return { ...(JSON.parse(r.stdout) as { simd: string; hash: string }), stderr: r.stderr };
    };
    const widest = child(''); // unset: the widest this CPU runs
    if (process.platform === 'linux' && process.arch === 'x64') {
      const flags = new Set((fs.readFileSync('/proc/cpuinfo', 'utf8').match(/^flags\s*:(.*)$/m)?.[1] ?? '').trim().split(/\s+/));
      expect(widest.simd).to.equal(flags.has('avx512f') && flags.has('avx512dq') ? 'avx512' : flags.has('avx2') ? 'avx2' : 'portable');
    }
    const avx2 = child('avx2'), portable = child('portable'), bogus = child('avx-1024');
    expect(portable.simd).to.equal('portable');
    expect(avx2.simd).to.equal(widest.simd === 'portable' ? 'portable' : 'avx2');
    expect(bogus.simd).to.equal(widest.simd);
    expect(bogus.stderr).to.contain(`SPARTAN_SIMD=avx-1024 is not avx512, avx2 or portable: ignored (the soft top-k uses ${widest.simd})`);
    expect(widest.stderr).to.not.contain('SPARTAN_SIMD');
    for (const other of [avx2, portable, bogus]) expect(other.hash, other.simd).to.equal(widest.hash);
    if (widest.simd === 'portable') console.log('      (this CPU has neither AVX2 nor AVX-512: only the portable loops ran)');
  });
});
