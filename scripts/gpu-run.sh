#!/usr/bin/env bash
# Runs on the lent GPU machine (repository root, .gpu/ carried from scripts/gpu-pack.sh):
# the GPU test suite, the CUDA kernel benchmarks, the BSR check and the PyTorch peer,
# in one call. Everything it produces goes to $OUT (default ./gpu-out).
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-$PWD/gpu-out}"
mkdir -p "$OUT"
log() { echo "== $*" | tee -a "$OUT/summary.txt"; }

log "device"
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv | tee -a "$OUT/summary.txt"

if ! command -v node > /dev/null; then
  mkdir -p .gpu/node-bin && xz -dc .gpu/node.xz > .gpu/node-bin/node && chmod +x .gpu/node-bin/node
  export PATH="$PWD/.gpu/node-bin:$PATH"
fi
[ -d node_modules ] || tar -xJf .gpu/node_modules.tar.xz
export SPARTAN_ADDON_PATH="$PWD/.gpu/spartan.node"
node -e "console.log(JSON.stringify(require('./lib/native.ts') && 0))" > /dev/null 2>&1 || true
node --import tsx -e "const s = require('./lib/index.ts'); console.log(JSON.stringify(s.backend()))" | tee "$OUT/backend.json"

log "GPU test suite (tensor, CUDA parity) and the CPU op suites"
# (tests that need onnxruntime-node or tsc, which are not carried, are left out by --grep)
node_modules/.bin/mocha --no-config --node-option import=tsx --timeout 600000 --reporter spec --grep 'onnxruntime|\(tsc\)' --invert \
  test/cuda.test.ts test/tensor.test.ts test/spec-examples.test.ts test/soft-topk.test.ts test/backward.test.ts \
  test/topk.test.ts test/block.test.ts test/errors.test.ts test/bsr.test.ts test/bsr-cuda.test.ts \
  test/optim.test.ts test/sparsifier-device.test.ts test/readme-examples.test.ts > "$OUT/mocha.txt" 2>&1
echo "mocha rc=$?" | tee -a "$OUT/summary.txt"
grep -E "passing|failing|pending" "$OUT/mocha.txt" | tee -a "$OUT/summary.txt"

log "CUDA kernel benchmarks"
.gpu/bin/kernels_bench ${QUICK:+--quick} > "$OUT/kernels.json" 2> "$OUT/kernels.txt"
echo "kernels_bench rc=$?" | tee -a "$OUT/summary.txt"

log "Sparsifier step (weights, backward, SGD, masks) on CPU and CUDA Tensors"
node --import tsx benchmarks/sparsifier.ts > "$OUT/sparsifier.txt" 2>&1
echo "sparsifier bench rc=$?" | tee -a "$OUT/summary.txt"
cp benchmarks/results/sparsifier-cpu-cuda-*.json "$OUT"/ 2> /dev/null
tail -n 12 "$OUT/sparsifier.txt"

log "BSR check and timings"
.gpu/bin/bsr_check ${QUICK:+--quick} > "$OUT/bsr.txt" 2>&1
echo "bsr_check rc=$?" | tee -a "$OUT/summary.txt"

log "PyTorch peer"
python3 benchmarks/peer/torch_peer.py ${QUICK:+--quick} > "$OUT/peer.json" 2> "$OUT/peer.txt"
echo "torch_peer rc=$?" | tee -a "$OUT/summary.txt"
python3 benchmarks/peer/torch_bsr_peer.py > "$OUT/bsr_peer.json" 2> "$OUT/bsr_peer.txt"
echo "torch_bsr_peer rc=$?" | tee -a "$OUT/summary.txt"

log "report (goals at ResNet-50 size)"
node --import tsx benchmarks/gpu/report.ts "$OUT" "$OUT" > "$OUT/report.md" 2>&1
echo "report rc=$?" | tee -a "$OUT/summary.txt"
cat "$OUT/report.md"

log "tables"
tail -n 40 "$OUT/kernels.txt" "$OUT/peer.txt" "$OUT/bsr.txt"
