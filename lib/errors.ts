// Errors thrown by spartan-sparsity. Argument errors are TypeError or RangeError;
// device and runtime faults are SpartanError. Every one carries a stable `code`.
export type SpartanErrorCode =
  | 'ERR_SPARTAN_TYPE'
  | 'ERR_SPARTAN_DETACHED'
  | 'ERR_SPARTAN_LENGTH'
  | 'ERR_SPARTAN_SHAPE'
  | 'ERR_SPARTAN_NON_FINITE'
  | 'ERR_SPARTAN_COST'
  | 'ERR_SPARTAN_BUDGET'
  | 'ERR_SPARTAN_BETA'
  | 'ERR_SPARTAN_MASK_RANGE'
  | 'ERR_SPARTAN_ALIAS'
  | 'ERR_SPARTAN_OPTION'
  | 'ERR_SPARTAN_STATE'
  | 'ERR_SPARTAN_ONNX'
  | 'ERR_SPARTAN_DATASET'
  | 'ERR_SPARTAN_LABELS'
  | 'ERR_SPARTAN_UNSUPPORTED_OP'
  | 'ERR_SPARTAN_OUT_OF_MEMORY'
  | 'ERR_SPARTAN_NOT_BUILT'
  | 'ERR_SPARTAN_CUDA'
  | 'ERR_SPARTAN_DEVICE'
  | 'ERR_SPARTAN_DISPOSED'
  | 'ERR_SPARTAN_RUNTIME'
  | 'ERR_SPARTAN_INTERNAL';

export class SpartanError extends Error {
  readonly code: SpartanErrorCode;
  constructor(code: SpartanErrorCode, message: string) {
    super(message);
    this.name = 'SpartanError';
    this.code = code;
  }
}

export function typeError(code: SpartanErrorCode, message: string): TypeError & { code: SpartanErrorCode } {
  return Object.assign(new TypeError(message), { code });
}

export function rangeError(code: SpartanErrorCode, message: string): RangeError & { code: SpartanErrorCode } {
  return Object.assign(new RangeError(message), { code });
}
