// Renders a CPU results JSON as the README's markdown tables:
//   node --import tsx benchmarks/table.ts benchmarks/results/cpu-<host>-<date>.json [--write-readme]
import * as fs from 'node:fs';
import * as path from 'node:path';

interface Row { op: string; n: number; beta?: number; ms: number; gbs: number; memcpyRatio: number; passes?: number }
const file = process.argv[2];
if (!file) throw new Error('usage: table.ts <results.json> [--write-readme]');
const d = JSON.parse(fs.readFileSync(file, 'utf8'));
const rows: Row[] = d.rows;
const find = (op: string, n: number, beta?: number) => rows.find((r) => r.op.trim() === op && r.n === n && (beta === undefined || r.beta === beta));
const x = (a?: number, b?: number) => (a && b ? `${(a / b).toFixed(1)}×` : '—');
const log2 = (n: number) => `2^${Math.log2(n)}`;
const m = d.machine;
const lines: string[] = [];
lines.push(`Measured ${d.date.slice(0, 10)} on ${m.cpu}, ${m.cores} cores (${m.threads} threads used), ${m.memGiB} GiB, ${m.platform}, Node ${m.node}; ` +
  `memcpy ${d.memcpyGBs.toFixed(1)} GB/s (read + write). Raw data: \`${path.relative(path.join(__dirname, '..'), file)}\`.`, '');
const big = 2 ** 24;
lines.push(`**Soft top-k forward, n = 2^24, 10 % density** (native vs plain TypeScript on the same input):`, '');
lines.push('| β | native ms | passes | ×copy | TS reference ms (sort + Sinkhorn 1 %) | speed-up | TS exact Newton ms | speed-up |', '|---|---|---|---|---|---|---|---|');
for (const beta of [1, 10, 100, 1000]) {
  const a = find('softTopK', big, beta), ref = find('TS reference (sort+Sinkhorn)', big, beta), nt = find('TS exact Newton', big, beta);
  if (!a) continue;
  lines.push(`| ${beta} | ${a.ms.toFixed(1)} | ${a.passes} | ${a.memcpyRatio.toFixed(1)} | ${ref?.ms.toFixed(0) ?? '—'} | ${x(ref?.ms, a.ms)} | ${nt?.ms.toFixed(0) ?? '—'} | ${x(nt?.ms, a.ms)} |`);
}
// (results before 2026-11-25's second session named the own-λ row 'softTopK warm (beta +1%)':
// its timed calls started from the previous call's λ at the same β, the answer already)
for (const r of rows) if (r.op === 'softTopK warm (beta +1%)') r.op = 'softTopK warm (own λ)';
const own = find('softTopK warm (own λ)', big), next = find('softTopK warm (λ of β −1 %)', big), cold = find('softTopK', big, 10);
if (own) lines.push('', `Warm-started at β = 10 from its own λ (a re-solve of unchanged scores): ${own.ms.toFixed(1)} ms, ${own.passes} passes` +
  (next ? `; from the λ of β 1 % lower (a schedule's next step): ${next.ms.toFixed(1)} ms, ${next.passes} passes` : '') +
  (cold ? `; cold (the histogram's guess): ${cold.ms.toFixed(1)} ms, ${cold.passes} passes.` : '.'));
lines.push('', '**Every op by size** (median ms; ×copy in brackets; soft top-k at β = 10):', '');
const ops = ['softTopK', 'softTopK warm (own λ)', 'softTopK warm (λ of β −1 %)', 'softTopKBackward', 'topKMask', 'blockScores 16x16', 'blockScores 32x32', 'applyMask 16x16 block', 'applyMask 32x32 block', 'expandBlockMask 16x16', 'applyMask element+hard'];
const sizes = [...new Set(rows.map((r) => r.n))].sort((a, b) => a - b);
lines.push(`| op | ${sizes.map(log2).join(' | ')} |`, `|---|${sizes.map(() => '---').join('|')}|`);
for (const op of ops) {
  const cells = sizes.map((n) => {
    const r = find(op, n, op.startsWith('softTopK') && op !== 'softTopKBackward' ? 10 : undefined);
    return r ? `${r.ms < 10 ? r.ms.toFixed(2) : r.ms.toFixed(1)} (${r.memcpyRatio.toFixed(1)})` : '—';
  });
  if (cells.some((c) => c !== '—')) lines.push(`| ${op} | ${cells.join(' | ')} |`); // (an op this run did not time: no row)
}
const table = lines.join('\n');
if (process.argv.includes('--write-readme')) {
  const readme = path.join(__dirname, '..', 'README.md');
  const s = fs.readFileSync(readme, 'utf8');
  const re = /<!-- bench:cpu -->[\s\S]*<!-- \/bench:cpu -->/;
  if (!re.test(s)) throw new Error('README.md has no <!-- bench:cpu --> section');
  fs.writeFileSync(readme, s.replace(re, `<!-- bench:cpu -->\n${table}\n<!-- /bench:cpu -->`));
} else {
  console.log(table);
}
