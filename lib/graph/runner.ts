// Runs ONNX models with onnxruntime-node (CPU execution provider by default).
// onnxruntime-node loads on first use, so the kernels and tensors work (and load
// fast) without it, e.g. on a GPU box that only runs the CUDA suite.
import type * as ortTypes from 'onnxruntime-node';
import { encodeModel, type Model } from './model';
import { rangeError, SpartanError } from '../errors';
import { isBigInt64Array, isFloat32Array, isFloat64Array, isInt32Array, isUint8Array } from '../util/typedArrays';

let ortModule: typeof ortTypes | undefined;

/** The first line of an error's message (onnxruntime's run over several lines). */
const firstLine = (e: unknown): string => ((e as Error)?.message ?? String(e)).split('\n')[0];
/** onnxruntime's own words for an error: the first line of the one GraphRunner wrapped (its `cause`), or of `e`. */
export const onnxruntimeReason = (e: unknown): string => firstLine((e as { cause?: unknown })?.cause ?? e);
function ort(): typeof ortTypes {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  ortModule ??= require('onnxruntime-node') as typeof ortTypes;
  return ortModule;
}

export type InferenceSessionOptions = ortTypes.InferenceSession.SessionOptions;
export type Feed = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;
const ortType = (a: Feed): 'float32' | 'float64' | 'int64' | 'int32' | 'uint8' =>
  isFloat32Array(a) ? 'float32' : isFloat64Array(a) ? 'float64' : isBigInt64Array(a) ? 'int64' : isInt32Array(a) ? 'int32' : 'uint8';

export class GraphRunner {
  private constructor(private readonly session: ortTypes.InferenceSession) {}

  /** onnxruntime's refusal is ERR_SPARTAN_ONNX (its own error, as `cause`, carries the whole text). */
  static async create(model: Model | Uint8Array, options: ortTypes.InferenceSession.SessionOptions = {}): Promise<GraphRunner> {
    const bytes = isUint8Array(model) ? model : encodeModel(model);
    try {
      return new GraphRunner(await ort().InferenceSession.create(bytes, { executionProviders: ['cpu'], ...options }));
    } catch (e) {
      throw Object.assign(rangeError('ERR_SPARTAN_ONNX', `onnxruntime could not open the model (or refused its session options): ${firstLine(e)}`), { cause: e });
    }
  }

  get inputNames(): readonly string[] {
    return this.session.inputNames;
  }
  get outputNames(): readonly string[] {
    return this.session.outputNames;
  }

  /** Runs with feeds given as (data, dims; type 'bool' for a Uint8Array of 0/1 fed to a bool input); returns each output's data. */
  async run(feeds: Record<string, { data: Feed; dims: readonly number[]; type?: 'bool' }>, outputs?: string[]): Promise<Record<string, Feed>> {
    const t: Record<string, ortTypes.Tensor> = {};
    for (const [k, v] of Object.entries(feeds)) t[k] = new (ort().Tensor)(v.type === 'bool' && isUint8Array(v.data) ? 'bool' : ortType(v.data), v.data as never, v.dims);
    let r: ortTypes.InferenceSession.ReturnType;
    try {
      r = outputs ? await this.session.run(t, outputs) : await this.session.run(t);
    } catch (e) { // feeds of the wrong shape or type, a kernel's failure: ERR_SPARTAN_RUNTIME, onnxruntime's error as `cause`
      throw Object.assign(new SpartanError('ERR_SPARTAN_RUNTIME', `onnxruntime failed to run the model: ${firstLine(e)}`), { cause: e });
    }
    const out: Record<string, Feed> = {};
    for (const [k, v] of Object.entries(r)) out[k] = v.data as Feed;
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}
