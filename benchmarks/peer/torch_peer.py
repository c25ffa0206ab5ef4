"""PyTorch peer for the CUDA kernel benchmarks (run on the GPU machine).

The soft top-k as the paper's reference code computes it: a full sort of the
scores, the threshold from cumsum + searchsorted, then Sinkhorn sweeps on the
two-point transport problem until the budget is met to 1 % tolerance; and the
hard threshold with torch.topk and torch.kthvalue. Times are CUDA events, median
of many runs after warm-up, at the same sizes as benchmarks/gpu/kernels_bench.cu.

    python3 benchmarks/peer/torch_peer.py [--quick] > peer.json
"""
import json
import sys

import torch

from cuda_timing import median_ms  # the script's folder is on sys.path


def resnet50_segments():
    s = [64 * 3 * 7 * 7]
    inc = 64
    for blocks, w in ((3, 64), (4, 128), (6, 256), (3, 512)):
        for b in range(blocks):
            s += [w * inc, w * w * 9, w * 4 * w] + ([w * 4 * inc] if b == 0 else [])
            inc = w * 4
    return s + [1000 * 2048]


def soft_topk_reference(v, k, beta, tol=0.01, max_iter=200):
    """Sort + cumsum/searchsorted threshold, then Sinkhorn sweeps (entropic OT between
    the scores and the two bins {kept, dropped} with masses k and n - k)."""
    n = v.numel()
    sorted_v, _ = torch.sort(v, descending=True)
    csum = torch.cumsum(torch.ones_like(sorted_v), 0)
    idx = torch.searchsorted(csum, torch.tensor([float(k)], device=v.device)).clamp(max=n - 1)
    t = sorted_v[idx]  # the hard threshold: start the duals there
    # Cost matrix of the two bins: C[:, 0] = -v (kept), C[:, 1] = 0 (dropped).
    log_mu = torch.zeros(n, device=v.device, dtype=torch.float32)  # unit mass per entry
    log_nu = torch.log(torch.tensor([float(k), float(n - k)], device=v.device))
    f = torch.zeros(n, device=v.device)
    g = torch.stack([-beta * t.squeeze(), torch.zeros((), device=v.device)])
    C = torch.stack([-v, torch.zeros_like(v)], 1) * beta
    for it in range(max_iter):
        f = log_mu - torch.logsumexp(g[None, :] - C, 1)
        g = log_nu - torch.logsumexp(f[:, None] - C, 0)
        mask = torch.exp(f + g[0] - C[:, 0])
        if abs(float(mask.sum()) - k) <= tol * k:
            return mask, it + 1
    return mask, max_iter


def main():
    quick = "--quick" in sys.argv
    dev = torch.device("cuda")
    props = torch.cuda.get_device_properties(dev)
    rows = []
    cases = [("flat", [1 << lg]) for lg in range(20, 23 if quick else 27)]
    cases += [("resnet50-flat", [25502912]), ("resnet50-layers", resnet50_segments())]
    gen = torch.Generator(device=dev).manual_seed(1)
    for name, segs in cases:
        n = sum(segs)
        v = torch.randn(n, device=dev, generator=gen).abs()
        k = int(0.1 * n)
        iters = []

        def ref():
            _, it = soft_topk_reference(v, k, 10.0)
            iters.append(it)

        reps = 7 if n > (1 << 24) else 21
        rows.append({"case": name, "n": n, "op": "torch-reference-soft-topk", "ms": median_ms(ref, 2, reps), "sinkhornIters": iters[-1]})
        rows.append({"case": name, "n": n, "op": "torch.topk", "ms": median_ms(lambda: torch.topk(v, k, sorted=False), 3, reps)})
        rows.append({"case": name, "n": n, "op": "torch.kthvalue", "ms": median_ms(lambda: torch.kthvalue(v, n - k + 1), 3, reps)})
        for r in rows[-3:]:
            print(f"{name:16s} {n:10d} {r['op']:28s} {r['ms']:10.3f} ms", file=sys.stderr)
    print(json.dumps({"device": props.name, "torch": torch.__version__, "cuda": torch.version.cuda, "rows": rows}))


if __name__ == "__main__":
    main()
