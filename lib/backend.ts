// What the addon was built with and what it can use here.
import { native } from './native';
import { rangeError, typeError } from './errors';

export interface CudaDeviceInfo {
  index: number;
  name: string;
  computeCapability: string;
  totalMemory: number;
}

export interface BackendInfo {
  cpu: true;
  /** The addon was built with the CUDA kernels. */
  cudaCompiled: boolean;
  /** A CUDA driver and device are usable here. */
  cuda: boolean;
  /** Why CUDA is not usable: "not compiled ...", "no driver: ...", "no device: ...". */
  reason?: string;
  /** CPU threads the kernels use. */
  threads: number;
  /** "cmake" (cmake-js) or "gyp" (node-gyp). */
  build: string;
  /** The soft top-k forward's hand-written loops in use: the widest the CPU runs, capped by SPARTAN_SIMD. Results are the same for all three. */
  simd: 'avx512' | 'avx2' | 'portable';
  devices: CudaDeviceInfo[];
}

export function backend(): BackendInfo {
  const b = native.backend();
  const info: BackendInfo = { cpu: true, cudaCompiled: b.cudaCompiled, cuda: b.cuda, threads: b.threads, build: b.build, simd: b.simd, devices: b.devices };
  if (b.reason !== undefined) info.reason = b.reason;
  return info;
}

/** Sets the CPU thread count (0 = all cores, or SPARTAN_NUM_THREADS). Returns the count in use. */
export function setNumThreads(n: number): number {
  if (typeof n !== 'number') throw typeError('ERR_SPARTAN_TYPE', 'threads must be a number');
  if (!Number.isInteger(n) || n < 0 || n > 256) throw rangeError('ERR_SPARTAN_OPTION', `threads must be an integer in [0, 256] (got ${n})`);
  return native.setNumThreads(n);
}

/**
 * After each kernel the CPU threads spin for a few tens of microseconds, so that the next
 * kernel of a step starts without a wake-up. This ends that spin now: call it before handing
 * the cores to other work, e.g. an onnxruntime run between two sparsifier steps (the Trainer
 * does). Results never depend on it.
 */
export function parkThreads(): void {
  native.parkThreads();
}
