// Inputs in a SharedArrayBuffer rewritten while an async op runs: the README says such writes
// race with the op (results may mix old and new values); they must never crash the process.
// Before the fixes the hard top-k's band gather overran its buffers and the BSR product read
// block columns past x after validating them (segfaults).
import { spawnSync } from 'node:child_process';
import * as path from 'node:path';
import { expect } from 'chai';

describe('async ops whose SharedArrayBuffer inputs change while they run', () => {
  it('topKMaskAsync and bsr.matmulAsync resolve or reject with a code, and the process lives', function () {
    this.timeout(120000);
    const r = spawnSync(process.execPath, ['--import', 'tsx', path.join(__dirname, 'fixtures', 'shared-writes.ts')], { encoding: 'utf8' });
    expect(r.signal, r.stderr).to.equal(null);
    expect(r.status, r.stderr).to.equal(0);
    const outcomes = JSON.parse(r.stdout) as string[];
    expect(outcomes).to.have.length(10);
    for (const o of outcomes) expect(o).to.match(/: (resolved|ERR_SPARTAN_\w+)$/);
  });
});
