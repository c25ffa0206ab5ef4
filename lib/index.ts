// spartan-sparsity: differentiable sparsity (Spartan soft top-k, IMP, Top-KAST).
export { backend, parkThreads, setNumThreads } from './backend';
export type { BackendInfo, CudaDeviceInfo } from './backend';
export { SpartanError } from './errors';
export { Tensor, tensor, empty, synchronize } from './tensor';
export type { Device, DType, TensorOptions } from './tensor';
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
export type { TopKOptions, TopKSegment, HardMaskOf } from './ops/topK';
export { blockScores, blockScoresAsync, expandBlockMask, expandBlockMaskAsync, applyMask, applyMaskAsync } from './ops/block';
export type { ApplyMaskOptions } from './ops/block';
export type { BlockDims } from './options';
export { Sparsifier } from './sparsity/sparsifier';
export type { Method, SparsifierOptions, SparsifierStats, SparsifierState, DataOf } from './sparsity/sparsifier';
export type { ParamSpec, HardOf } from './sparsity/layer';
export { phases, densityAt, betaAt, adjustedDensity, phaseAt } from './sparsity/schedules';
export type { Phases, Phase, DensityCurve, BetaCurve } from './sparsity/schedules';
export { erkDensities } from './sparsity/budgets';
export type { BudgetMode } from './sparsity/budgets';
export { SGD } from './optim/sgd';
export type { SgdOptions } from './optim/sgd';
export { AdamW } from './optim/adamw';
export type { AdamWOptions } from './optim/adamw';
export type { NamedParam, ParamData, OptimizerState, StepResult } from './optim/optimizer';
export { decodeModel, encodeModel } from './graph/model';
export type { Model, Graph, Node, TensorValue, ValueInfo, Attr, Dim } from './graph/model';
export { deriveTrainingGraph } from './graph/autodiff';
export { untieInitializers } from './graph/untie';
export { inferenceForm, withBatchStatistics, withDropoutMasks, runningStatisticNames, stateOutput, dropoutMaskInput } from './graph/trainMode';
export type { BatchNormMode } from './graph/trainMode';
export type { DeriveOptions } from './graph/autodiff';
export { GraphBuilder, model as modelFromGraph } from './graph/builder';
export { DataType } from './graph/schema';
export { GraphRunner } from './graph/runner';
export { builtInModels, lenet300100, lenet5, mlp256128, type BuiltInModel } from './models/lenet';
export { loadMnist, loadFashionMnist, batches, head } from './data/dataset';
export type { Dataset, ImageDataset, Batch, InputArray, InputValues, LabelArray } from './data/dataset';
export { Trainer } from './train/trainer';
export type { TrainerOptions, EpochMetrics } from './train/trainer';
export type { TrainerState } from './train/checkpoint';
export * as bsr from './bsr/index';
export { SparseLinear } from './bsr/index';
