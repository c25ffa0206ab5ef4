#!/usr/bin/env node
// Builds the native addon at `npm install`:
//   cmake-js (CMakeLists.txt) when CMake is on the PATH, else node-gyp (binding.gyp, CPU only).
// Environment:
//   SPARTAN_BUILD = auto | cmake | gyp   (default auto)
//   SPARTAN_CUDA  = auto | on | off      (default auto: CUDA kernels when nvcc is found)
'use strict';
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const path = require('node:path');

const root = path.resolve(__dirname, '..');
const build = (process.env.SPARTAN_BUILD || 'auto').toLowerCase();
const cuda = (process.env.SPARTAN_CUDA || 'auto').toLowerCase();

function fail(message) {
  console.error(`spartan-sparsity: ${message}`);
  process.exit(1);
}
if (!['auto', 'cmake', 'gyp'].includes(build)) fail(`SPARTAN_BUILD must be auto, cmake or gyp (got "${build}")`);
if (!['auto', 'on', 'off'].includes(cuda)) fail(`SPARTAN_CUDA must be auto, on or off (got "${cuda}")`);

function run(cmd, args) {
  console.log(`spartan-sparsity: ${[path.basename(cmd), ...args].join(' ')}`);
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.error) fail(`could not run ${cmd}: ${r.error.message}`);
  return r.status === 0;
}

function hasCmake() {
  const r = spawnSync('cmake', ['--version'], { stdio: 'ignore' });
  return !r.error && r.status === 0;
}

function nodeGypScript() {
  const candidates = [
    process.env.npm_config_node_gyp, // set by npm for lifecycle scripts
    path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'),
  ];
  try {
    candidates.push(require.resolve('node-gyp/bin/node-gyp.js'));
  } catch {}
  return candidates.find((p) => p && fs.existsSync(p));
}

function buildCmake() {
  const cmakeJs = require.resolve('cmake-js/bin/cmake-js');
  return run(process.execPath, [cmakeJs, 'rebuild', `--CDSPARTAN_CUDA=${cuda.toUpperCase()}`]);
}

function buildGyp() {
  if (cuda === 'on') fail('SPARTAN_CUDA=on needs the CMake build (node-gyp builds the CPU kernels only)');
  const gyp = nodeGypScript();
  if (!gyp) fail('node-gyp was not found (it ships with npm); install CMake or node-gyp');
  return run(process.execPath, [gyp, 'rebuild']);
}

const useCmake = build === 'cmake' || (build === 'auto' && hasCmake());
if (build === 'cmake' && !hasCmake()) fail('SPARTAN_BUILD=cmake but cmake is not on the PATH');
const ok = useCmake ? buildCmake() : buildGyp();
if (!ok) fail(`the ${useCmake ? 'cmake-js' : 'node-gyp'} build failed (see above)`);
