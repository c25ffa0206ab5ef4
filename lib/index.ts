// spartan-sparsity: differentiable sparsity (Spartan soft top-k, IMP, Top-KAST).
export { backend, setNumThreads } from './backend';
export type { BackendInfo, CudaDeviceInfo } from './backend';
export { SpartanError } from './errors';
export type { SpartanErrorCode } from './errors';
export {
  softTopK,
  softTopKAsync,
  softTopKBackward,
  softTopKBackwardAsync,
  softTopKSegmented,
  softTopKSegmentedAsync,
  softTopKBackwardSegmented,
  softTopKBackwardSegmentedAsync,
} from './ops/softTopK';
export type {
  Costs,
  SoftTopKOptions,
  SoftTopKResult,
  SoftTopKBackwardOptions,
  SoftTopKSegment,
  SoftTopKBackwardSegment,
  SegmentedSoftTopKResult,
} from './ops/softTopK';
export { topKMask, topKMaskAsync, topKMaskSegmented, topKMaskSegmentedAsync } from './ops/topK';
export type { TopKOptions, TopKSegment } from './ops/topK';
export { blockScores, blockScoresAsync, expandBlockMask, expandBlockMaskAsync, applyMask, applyMaskAsync } from './ops/block';
export type { ApplyMaskOptions } from './ops/block';
export type { BlockDims } from './options';
