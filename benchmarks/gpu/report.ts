// Turns a GPU run's outputs (scripts/gpu-run.sh: kernels.json, peer.json) into
// benchmarks/results/cuda-<device>-<date>.json and a markdown table with the CUDA
// issue's goals checked at ResNet-50 size (n = 25,502,912):
//   node --import tsx benchmarks/gpu/report.ts <dir with kernels.json and peer.json> [results dir]
import * as fs from 'node:fs';
import * as path from 'node:path';

interface KRow { case: string; segments: number; n: number; op: string; ms: number; gbs: number; passes: number }
interface PRow { case: string; n: number; op: string; ms: number; sinkhornIters?: number }
interface Kernels { device: string; computeCapability: string; copyGBs: number; rows: KRow[] }
interface Peer { device: string; torch: string; cuda: string; rows: PRow[] }

export function report(kernels: Kernels, peer: Peer | undefined, date: string): { json: object; markdown: string } {
  const bw = kernels.copyGBs;
  const readMs = (n: number) => (4 * n) / (bw * 1e6);  // one read of n floats at copy bandwidth
  const k = (c: string, op: string) => kernels.rows.find((r) => r.case === c && r.op === op);
  const p = (c: string, op: string) => peer?.rows.find((r) => r.case === c && r.op === op);
  const lines = [
    `CUDA kernels on ${kernels.device} (sm ${kernels.computeCapability}), ${date}; device-to-device copy ${bw.toFixed(0)} GB/s (read + write). ` +
      'Median of CUDA-event timings around each call (its host synchronisations included), rotating inputs larger than L2.',
    '',
    '| case | n | op | ms | GB/s | reads | passes | PyTorch peer ms | speed-up |',
    '|---|---|---|---|---|---|---|---|---|',
  ];
  const peerOp: Record<string, string> = { 'forward-cold': 'torch-reference-soft-topk', 'hard-mask': 'torch.topk' };
  for (const r of kernels.rows) {
    const q = peerOp[r.op] ? p(r.case, peerOp[r.op]) : undefined;
    lines.push(`| ${r.case}${r.segments > 1 ? ` (${r.segments} segments)` : ''} | ${r.n} | ${r.op} | ${r.ms.toFixed(3)} | ${r.gbs.toFixed(0)} | ${(r.ms / readMs(r.n)).toFixed(2)} | ${r.passes || ''} | ${q ? q.ms.toFixed(3) : ''} | ${q ? (q.ms / r.ms).toFixed(1) + '×' : ''} |`);
  }
  const N = 'resnet50-flat';
  const goal = (name: string, ok: boolean | undefined, detail: string) => ({ name, met: ok ?? null, detail });
  const fc = k(N, 'forward-cold'), fw = k(N, 'forward-warm'), bw_ = k(N, 'backward'), hm = k(N, 'hard-mask'), bs = k(N, 'block32-score+apply');
  const topk = p(N, 'torch.topk'), ref = p(N, 'torch-reference-soft-topk');
  const goals = [
    goal('forward <= 2 reads cold', fc && fc.ms / readMs(fc.n) <= 2, fc ? `${(fc.ms / readMs(fc.n)).toFixed(2)} reads` : 'missing'),
    goal('forward <= 1.2 reads warm', fw && fw.ms / readMs(fw.n) <= 1.2, fw ? `${(fw.ms / readMs(fw.n)).toFixed(2)} reads` : 'missing'),
    goal('backward <= 1.5x its byte floor (12 bytes/entry)', bw_ && bw_.ms / (3 * readMs(bw_.n)) <= 1.5, bw_ ? `${(bw_.ms / (3 * readMs(bw_.n))).toFixed(2)}x` : 'missing'),
    goal('hard mask faster than torch.topk', hm && topk && hm.ms < topk.ms, hm && topk ? `${hm.ms.toFixed(3)} vs ${topk.ms.toFixed(3)} ms` : 'missing'),
    goal('block score + apply >= 80 % of copy bandwidth', bs && bs.gbs >= 0.8 * bw, bs ? `${((100 * bs.gbs) / bw).toFixed(0)} %` : 'missing'),
    goal('soft top-k >= 20x the PyTorch reference', fc && ref && ref.ms / fc.ms >= 20, fc && ref ? `${(ref.ms / fc.ms).toFixed(1)}x` : 'missing'),
  ];
  lines.push('', 'Goals at ResNet-50 size (25,502,912 values):', '');
  for (const g of goals) lines.push(`- ${g.met === null ? 'not measured' : g.met ? 'met' : '**not met**'}: ${g.name} (${g.detail})`);
  return { json: { date, device: kernels.device, copyGBs: bw, kernels: kernels.rows, peer: peer ?? null, goals }, markdown: lines.join('\n') };
}

interface BsrRow { M: number; K: number; N: number; block: number; density: number; dtype: string; ms: number; msLinear: number; usefulTflops: number }
interface BsrPeerRow { M: number; K: number; N: number; dtype: string; op: string; ms?: number; msTf32?: number; block?: number; density?: number; unavailable?: string }

/** The BSR table (bsr_check's JSON lines against torch.matmul and torch's BSR) and the BSR issue's goals. */
export function bsrReport(rows: BsrRow[], peer: BsrPeerRow[]): { markdown: string; goals: { name: string; met: boolean | null; detail: string }[] } {
  const dense = (r: BsrRow) => peer.find((p) => p.op === 'torch.matmul' && p.M === r.M && p.K === r.K && p.N === r.N && p.dtype === r.dtype);
  // float32 runs on TF32 tensor cores here, so it is compared with cuBLAS allowed TF32 too
  const denseMs = (r: BsrRow) => { const d = dense(r); return d ? (r.dtype === 'float32' ? d.msTf32 ?? d.ms : d.ms) : undefined; };
  const torchBsr = (r: BsrRow) => peer.find((p) => p.op === 'torch-bsr' && p.M === r.M && p.K === r.K && p.N === r.N && p.dtype === r.dtype && p.block === r.block && Math.abs((p.density ?? 0) - r.density) < 0.02);
  const lines = ['| M×K×N | dtype | block | density | ms | useful TFLOP/s | dense ms (cuBLAS) | × dense | torch BSR ms |', '|---|---|---|---|---|---|---|---|---|'];
  for (const r of rows) {
    const d = denseMs(r), t = torchBsr(r);
    lines.push(`| ${r.M}×${r.K}×${r.N} | ${r.dtype} | ${r.block} | ${(100 * r.density).toFixed(0)} % | ${r.ms.toFixed(3)} | ${r.usefulTflops.toFixed(1)} | ${d?.toFixed(3) ?? ''} | ${d ? (d / r.ms).toFixed(2) : ''} | ${t?.ms?.toFixed(3) ?? (t?.unavailable ? 'n/a' : '')} |`);
  }
  const g1 = rows.find((r) => r.M === 4096 && r.K === 4096 && r.N === 4096 && r.dtype === 'float16' && r.block === 32 && Math.abs(r.density - 0.1) < 0.02);
  const sparse = rows.filter((r) => r.density <= 0.5 && denseMs(r) !== undefined);
  const slower = sparse.filter((r) => r.ms > denseMs(r)!);
  const goals = [
    { name: '>= 5x dense at 10 % density, 32x32 blocks, 4096^3 fp16', met: g1 && denseMs(g1) ? denseMs(g1)! / g1.ms >= 5 : null, detail: g1 && denseMs(g1) ? `${(denseMs(g1)! / g1.ms).toFixed(2)}x` : 'missing' },
    { name: 'never slower than dense above 50 % sparsity', met: sparse.length ? slower.length === 0 : null, detail: sparse.length ? `${slower.length} of ${sparse.length} cases slower` : 'missing' },
  ];
  lines.push('', 'Goals (BSR):', '', ...goals.map((g) => `- ${g.met === null ? 'not measured' : g.met ? 'met' : '**not met**'}: ${g.name} (${g.detail})`));
  return { markdown: lines.join('\n'), goals };
}

if (require.main === module) {
  const dir = process.argv[2];
  if (!dir) throw new Error('usage: report.ts <dir with kernels.json [and peer.json]>');
  const kernelsFile = path.join(dir, 'kernels.json');
  if (!fs.existsSync(kernelsFile) || fs.statSync(kernelsFile).size === 0)
    throw new Error(`${kernelsFile} is missing or empty: kernels_bench wrote nothing (see kernels.txt beside it; without a CUDA device it says "no CUDA device")`);
  const kernels = JSON.parse(fs.readFileSync(kernelsFile, 'utf8')) as Kernels;
  const peerFile = path.join(dir, 'peer.json');
  const peer = fs.existsSync(peerFile) && fs.statSync(peerFile).size > 0 ? (JSON.parse(fs.readFileSync(peerFile, 'utf8')) as Peer) : undefined;
  const date = new Date().toISOString().slice(0, 10);
  const { json, markdown } = report(kernels, peer, date);
  const bsrFile = path.join(dir, 'bsr.txt'), bsrPeerFile = path.join(dir, 'bsr_peer.json');
  let bsrMd = '';
  if (fs.existsSync(bsrFile)) {
    const rows = fs.readFileSync(bsrFile, 'utf8').split('\n').filter((l) => l.startsWith('JSON ')).map((l) => JSON.parse(l.slice(5)) as BsrRow);
    const bpeer = fs.existsSync(bsrPeerFile) && fs.statSync(bsrPeerFile).size > 0 ? (JSON.parse(fs.readFileSync(bsrPeerFile, 'utf8')).rows as BsrPeerRow[]) : [];
    const b = bsrReport(rows, bpeer);
    Object.assign(json, { bsr: rows, bsrPeer: bpeer, bsrGoals: b.goals });
    bsrMd = '\n\n' + b.markdown;
  }
  const stem = `cuda-${kernels.device.replace(/[^\w.-]+/g, '_')}-${date}`;
  const outDir = process.argv[3] ?? path.join(__dirname, '..', 'results');
  fs.writeFileSync(path.join(outDir, `${stem}.json`), JSON.stringify(json, null, 2) + '\n');
  console.log(markdown + bsrMd);
}
