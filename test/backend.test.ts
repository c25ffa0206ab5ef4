// backend(): what was built and whether CUDA is usable here (and why not).
import { expect } from 'chai';
import * as spartan from '../lib/index';

const info = spartan.backend();

describe('backend', () => {
  it('reports the CPU path, the build, the thread count and the CUDA status', () => {
    expect(info.cpu).to.equal(true);
    expect(info.threads).to.be.a('number').and.at.least(1);
    expect(info.build).to.be.oneOf(['cmake', 'gyp']);
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
});
