// Typed-array checks by internal slot. `instanceof` follows the prototype chain, so a Proxy of a
// Float32Array, or an object made with Object.create(Float32Array.prototype), passes it and then
// fails at its first `.length` with an engine TypeError that has no `code`. util.types looks at
// what the object is, so such values fail the type check instead, with ERR_SPARTAN_TYPE.
import { types } from 'node:util';

export const isFloat32Array = types.isFloat32Array;
export const isFloat64Array = types.isFloat64Array;
export const isUint8Array = types.isUint8Array;
export const isUint16Array = types.isUint16Array;
export const isUint32Array = types.isUint32Array;
export const isInt32Array = types.isInt32Array;
export const isBigInt64Array = types.isBigInt64Array;
export const isBigUint64Array = types.isBigUint64Array;

/** Whether a typed array's buffer was detached (transferred): Node 20 has no ArrayBuffer.prototype.detached. */
export function isDetached(x: ArrayBufferView): boolean {
  if (x.byteLength !== 0) return false;
  try {
    new Uint8Array(x.buffer); // throws on a detached buffer only
    return false;
  } catch {
    return true;
  }
}
