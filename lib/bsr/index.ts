// Block-sparse (BSR) matrices and products: the `bsr` namespace of the package.
export { BsrMatrix } from './matrix';
export type { BsrParts, BlockSize } from './matrix';
export type { BsrDtype, HalfDtype } from './half';
export { encodeHalf, decodeHalf } from './half';
export { fromDense } from './fromDense';
export type { FromDenseOptions } from './fromDense';
export { matmul, matmulAsync, linear, linearAsync } from './matmul';
export { toDevice, DeviceBsrMatrix } from './device';
export type { BsrMatmulOptions, BsrLinearOptions } from './matmul';
export { SparseLinear } from './sparseLinear';
export type { SparseLinearOptions, SparseLinearFromDenseOptions } from './sparseLinear';
export { sparseLinearsFromModel, SparseModel } from './model';
export type { SparseLayer, SparseModelOptions } from './model';
