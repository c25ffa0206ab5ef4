// Loads the compiled addon (build/Release/spartan.node, from cmake-js or node-gyp).
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface NativeSoftTopKResult {
  lambda: number;
  mass: number;
  totalCost: number;
  iterations: number;
  passes: number;
  converged: boolean;
}
export interface NativeTopKResult {
  kept: number;
  keptCost: number;
  threshold: number;
  /** The CPU band path's suggested hint for a similar next call (NaN where none was asked or taken). */
  nextLo: number;
  nextHi: number;
  /** Whether this call's hint held the k-th value. */
  hintHeld: boolean;
}
export interface NativeBackend {
  cpu: true;
  cudaCompiled: boolean;
  cuda: boolean;
  reason?: string;
  threads: number;
  build: string;
  simd: 'avx512' | 'avx2' | 'portable';
  cudaRuntimeVersion?: number;
  cudaDriverVersion?: number;
  devices: { index: number; name: string; computeCapability: string; totalMemory: number }[];
}

/** One CUDA allocation (native/addon/device_buffer.h); freed by free() or by the GC. */
export interface DeviceBuffer {
  readonly bytes: number;
  readonly freed: boolean;
  free(): void;
}

type Costs = Float32Array | number | undefined;
export interface NativeAddon {
  softTopKForward(
    segments: { values: unknown; costs: Costs; out: unknown }[],
    groups: { first: number; count: number; k: unknown; beta: unknown; lambda?: unknown }[],
    async: boolean,
    segmented: boolean,
  ): NativeSoftTopKResult[] | Promise<NativeSoftTopKResult[]>;
  softTopKBackward(
    segments: { mask: unknown; grad: unknown; costs: Costs; out: unknown }[],
    groups: { first: number; count: number; beta: unknown }[],
    async: boolean,
    segmented: boolean,
  ): undefined | Promise<undefined>;
  topKMask(
    segments: { values: unknown; costs: Costs; out: unknown }[],
    /** bandLo/bandHi/margin: a speed hint for the CPU band path (results never depend on it). */
    groups: { first: number; count: number; k: unknown; bandLo?: number; bandHi?: number; margin?: number }[],
    async: boolean,
    segmented: boolean,
  ): NativeTopKResult[] | Promise<NativeTopKResult[]>;
  blockScores(theta: unknown, rows: unknown, cols: unknown, b0: unknown, b1: unknown, out: unknown, async: boolean): undefined | Promise<undefined>;
  expandBlockMask(mask: unknown, rows: unknown, cols: unknown, b0: unknown, b1: unknown, out: unknown, async: boolean): undefined | Promise<undefined>;
  applyMask(
    theta: unknown, mask: unknown, hard: unknown, rows: unknown, cols: unknown, b0: unknown, b1: unknown,
    perBlock: boolean, out: unknown, async: boolean,
  ): undefined | Promise<undefined>;
  maskUpstream(gradW: Float32Array, theta: Float32Array, rows: number, cols: number, b0: number, b1: number, out: Float32Array): undefined;
  spartanParamGrad(
    gradW: Float32Array, theta: Float32Array, mask: Float32Array, vjp: Float32Array,
    rows: number, cols: number, b0: number, b1: number, out: Float32Array,
  ): undefined;
  /**
   * The Spartan gradient of theta for element masks: maskUpstream, softTopKBackward (cost 1) and
   * spartanParamGrad fused, bit for bit. Checks its outputs are finite; returns sum(out^2) per segment.
   */
  spartanElementGrad(
    segments: { gradW: Float32Array; theta: Float32Array; mask: Float32Array; hard?: Uint8Array; out: Float32Array }[],
    groups: { first: number; count: number; beta: number }[],
  ): Float64Array;
  sumSquares(x: Float32Array): number;
  countChanges(a: Uint8Array, b: Uint8Array): number;
  sgdStep(theta: Float32Array, grad: Float32Array, buf: Float32Array | null, config: object): undefined;
  adamwStep(theta: Float32Array, grad: Float32Array, m: Float32Array, v: Float32Array, config: object): undefined;
  backend(): NativeBackend;
  DeviceBuffer: new (bytes: number, kind: 'float32' | 'uint8' | 'int32' | 'uint16') => DeviceBuffer;
  cudaUpload(buffer: DeviceBuffer, data: Float32Array | Uint8Array | Int32Array | Uint16Array, async: boolean): undefined | Promise<undefined>;
  cudaDownload(buffer: DeviceBuffer, data: Float32Array | Uint8Array, async: boolean): undefined | Promise<undefined>;
  cudaCopy(dst: DeviceBuffer, src: DeviceBuffer): undefined;
  cudaSynchronize(): undefined;
  setNumThreads(n: number): number;
  parkThreads(): undefined;
}

function packageRoot(): string {
  // dist/native.js and lib/native.ts both sit one level below the package root.
  return path.resolve(__dirname, '..');
}

function load(): NativeAddon {
  const root = packageRoot();
  const candidates = [
    process.env.SPARTAN_ADDON_PATH,
    path.join(root, 'build', 'Release', 'spartan.node'),
    path.join(root, 'build', 'Debug', 'spartan.node'),
  ].filter((p): p is string => !!p);
  for (const file of candidates) {
    if (fs.existsSync(file)) return require(file) as NativeAddon;
  }
  const err = new Error(
    `spartan-sparsity: the native addon is not built (looked in ${candidates.join(', ')}). ` +
      'Run `npm install` (or `npm run build:addon`) in the package folder.',
  ) as Error & { code: string };
  err.code = 'ERR_SPARTAN_NOT_BUILT';
  throw err;
}

export const native: NativeAddon = load();

// The native side reads SPARTAN_SIMD once and takes any other value as unset: say so.
const simd = process.env.SPARTAN_SIMD;
if (simd !== undefined && simd !== '' && !['avx512', 'avx2', 'portable'].includes(simd))
  process.emitWarning(`SPARTAN_SIMD=${simd} is not avx512, avx2 or portable: ignored (the soft top-k uses ${native.backend().simd})`, { code: 'SPARTAN_SIMD' });
