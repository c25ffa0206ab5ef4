"""PyTorch peer for the BSR benchmark (run on the GPU machine, same grid as
benchmarks/gpu/bsr_check.cu): dense torch.matmul (cuBLAS; float32 both as true FP32
and with TF32 allowed) and torch's own BSR product (A.to_sparse_bsr(b) @ X) where this
torch build supports it. CUDA-event medians after warm-up.

    python3 benchmarks/peer/torch_bsr_peer.py > bsr_peer.json
"""
import json
import sys

import torch

from cuda_timing import median_ms  # the script's folder is on sys.path

SHAPES = [(1024, 1024, 1024), (4096, 4096, 4096), (8192, 8192, 8192), (3072, 768, 4096), (768, 3072, 4096)]
DENSITIES = [0.01, 0.05, 0.1, 0.25, 0.5, 1.0]
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def block_sparse(M, K, b, density, dtype, gen):
    nbr, nbc = (M + b - 1) // b, (K + b - 1) // b
    keep = torch.rand(nbr, nbc, device="cuda", generator=gen) < density
    mask = keep.repeat_interleave(b, 0).repeat_interleave(b, 1)[:M, :K]
    return (torch.randn(M, K, device="cuda", generator=gen) * mask).to(dtype)


def main():
    gen = torch.Generator(device="cuda").manual_seed(1)
    rows = []
    for M, K, N in SHAPES:
        for name, dt in DTYPES.items():
            if dt == torch.bfloat16 and M != 4096:
                continue
            X = torch.randn(K, N, device="cuda", generator=gen).to(dt)
            Ad = torch.randn(M, K, device="cuda", generator=gen).to(dt)
            torch.backends.cuda.matmul.allow_tf32 = False
            dense = median_ms(lambda: torch.matmul(Ad, X), reps=20)
            row = {"M": M, "K": K, "N": N, "dtype": name, "op": "torch.matmul", "ms": dense}
            if dt == torch.float32:
                torch.backends.cuda.matmul.allow_tf32 = True
                row["msTf32"] = median_ms(lambda: torch.matmul(Ad, X), reps=20)
                torch.backends.cuda.matmul.allow_tf32 = False
            rows.append(row)
            print(f"{M}x{K}x{N} {name} dense {dense:.3f} ms", file=sys.stderr)
            for b in (16, 32):
                for density in DENSITIES:
                    A = block_sparse(M, K, b, density, dt, gen)
                    try:
                        As = A.to_sparse_bsr((b, b))
                        ms = median_ms(lambda: As @ X, reps=20)
                        rows.append({"M": M, "K": K, "N": N, "dtype": name, "block": b, "density": density, "op": "torch-bsr", "ms": ms})
                    except Exception as e:  # noqa: BLE001 - record why torch cannot do it
                        rows.append({"M": M, "K": K, "N": N, "dtype": name, "block": b, "density": density, "op": "torch-bsr",
                                     "unavailable": str(e).splitlines()[0][:200]})
    print(json.dumps({"device": torch.cuda.get_device_name(), "torch": torch.__version__, "cuda": torch.version.cuda, "rows": rows}))


if __name__ == "__main__":
    main()
