// A finiteness check over a gradient that names it in the error.
import { native } from '../native';

/** Throws ERR_SPARTAN_NON_FINITE naming `what` if x holds NaN or Inf; returns sum(x^2) (float64). */
export function checkFinite(x: Float32Array, what: string): number {
  try {
    return native.sumSquares(x);
  } catch (e) {
    (e as Error).message = (e as Error).message.replace(/^gradMask/, what);
    throw e;
  }
}
