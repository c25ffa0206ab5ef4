// Whether onnxruntime-node's CUDA execution provider is installed. Asked for a provider whose
// library is missing, onnxruntime prints a red error line to the console before it fails;
// checking the file first lets the Trainer give its own coded error alone.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The provider library's expected path when it is missing; undefined when present, or where this check cannot tell. */
export function missingOrtCudaProvider(): string | undefined {
  if (process.platform !== 'linux') return undefined; // elsewhere onnxruntime itself decides
  let dir: string;
  try {
    dir = path.join(path.dirname(require.resolve('onnxruntime-node/package.json')), 'bin', 'napi-v6', process.platform, process.arch);
  } catch {
    return undefined;
  }
  if (!fs.existsSync(path.join(dir, 'onnxruntime_binding.node'))) return undefined; // a layout this check does not know
  const lib = path.join(dir, 'libonnxruntime_providers_cuda.so');
  return fs.existsSync(lib) ? undefined : lib;
}
