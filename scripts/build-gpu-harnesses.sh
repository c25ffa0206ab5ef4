#!/usr/bin/env bash
# Builds the standalone CUDA harnesses (benchmarks/gpu: the kernel benchmarks and the BSR
# check) into the folder $1, for the GPU architectures $2 (nvcc -gencode flags; default sm_90).
# scripts/gpu-pack.sh ships them to a GPU machine; CI builds them too, so a source the kernels
# need but the harness link line lacks fails here rather than on the lent machine.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT_DIR="${1:?usage: build-gpu-harnesses.sh <out dir> [gencode flags]}"
GEN="${2:--gencode=arch=compute_90,code=sm_90}"
mkdir -p "$OUT_DIR"
NVCC="nvcc -O3 -std=c++17 --expt-relaxed-constexpr $GEN -Inative/include"
$NVCC benchmarks/gpu/kernels_bench.cu native/cuda/{memory,soft_topk_forward,soft_topk_backward,hard_topk,block_ops}.cu \
  native/cpu/{thread_pool,hard_topk,hard_topk_counted}.cpp -o "$OUT_DIR/kernels_bench"
$NVCC benchmarks/gpu/bsr_check.cu native/cuda/bsr_matmul.cu native/cpu/bsr_matmul.cpp native/cpu/thread_pool.cpp \
  -o "$OUT_DIR/bsr_check"
