// Checks for option objects and shapes: the policy-level argument checks that the
// native layer does not know about. Array contents are checked natively.
import { rangeError, typeError, type SpartanErrorCode } from './errors';

/**
 * The keys of an options type, listed once: the compiler checks that the list names every key
 * of T and nothing else, so the list cannot drift from the interface.
 */
export function optionKeys<T extends object>(keys: { [K in keyof Required<T>]: true }): readonly string[] {
  return Object.keys(keys);
}

/** Refuses a key `known` does not list: a misspelt option (`cost`, `betamax`) would otherwise be ignored without a word. */
export function checkKnownKeys(o: object, known: readonly string[], name: string): void {
  for (const k of Object.keys(o))
    if (!known.includes(k)) throw rangeError('ERR_SPARTAN_OPTION', `${name} has no option "${k}" (it takes ${known.map((x) => `"${x}"`).join(', ')})`);
}

/** An options object (undefined and null read as {}), whose keys are all among `known`. */
export function optionsObject<T extends object>(opts: T | undefined, name: string, known: readonly string[]): Partial<T> {
  if (opts === undefined || opts === null) return {};
  if (typeof opts !== 'object' || Array.isArray(opts) || ArrayBuffer.isView(opts))
    throw typeError('ERR_SPARTAN_OPTION', `${name} must be an object`);
  checkKnownKeys(opts, known, name);
  return opts;
}

/** A boolean option, `otherwise` when absent: a string such as 'false' is truthy, so it is refused, not read as true. */
export function booleanOption(x: unknown, name: string, otherwise: boolean): boolean {
  if (x === undefined) return otherwise;
  if (typeof x !== 'boolean') throw typeError('ERR_SPARTAN_TYPE', `${name} must be true or false (got ${JSON.stringify(x)})`);
  return x;
}

/** An optional list of names (a string alone would spread into its letters). */
export function nameList(x: unknown, name: string): readonly string[] | undefined {
  if (x !== undefined && (!Array.isArray(x) || x.some((n) => typeof n !== 'string')))
    throw typeError('ERR_SPARTAN_TYPE', `${name} must be an array of parameter names (got ${typeof x === 'string' ? JSON.stringify(x) : typeof x})`);
  return x as readonly string[] | undefined;
}

export type BlockDims = readonly [number, number];

/** A number: ERR_SPARTAN_TYPE when it is not one (a string '2' would pass most range tests), `code` when `ok` refuses it. */
export function numberOption(x: unknown, name: string, ok: (v: number) => boolean, what: string, code: SpartanErrorCode = 'ERR_SPARTAN_OPTION'): number {
  if (typeof x !== 'number') throw typeError('ERR_SPARTAN_TYPE', `${name} must be a number (got ${typeof x})`);
  if (!ok(x)) throw rangeError(code, `${name} must be ${what} (got ${x})`);
  return x;
}

/** A positive safe integer; a size or a dimension by default (ERR_SPARTAN_SHAPE). */
export function positiveInt(x: unknown, name: string, code: SpartanErrorCode = 'ERR_SPARTAN_SHAPE'): number {
  return numberOption(x, name, (v) => Number.isSafeInteger(v) && v >= 1, 'a positive integer', code);
}

export function blockDims(block: unknown, name = 'block'): [number, number] {
  if (!Array.isArray(block) || block.length !== 2)
    throw typeError('ERR_SPARTAN_TYPE', `${name} must be a pair [b0, b1]`);
  return [positiveInt(block[0], `${name}[0]`), positiveInt(block[1], `${name}[1]`)];
}

export function matrixShape(rows: unknown, cols: unknown, block: [number, number]): [number, number] {
  const r = positiveInt(rows, 'rows');
  const c = positiveInt(cols, 'cols');
  if (r % block[0] !== 0 || c % block[1] !== 0)
    throw rangeError('ERR_SPARTAN_SHAPE', `a ${r}x${c} matrix does not divide into ${block[0]}x${block[1]} blocks`);
  return [r, c];
}

// Length of a typed array, or 0 when `x` is not one (the native call then names the type error).
export function lengthOf(x: unknown): number {
  return ArrayBuffer.isView(x) && !(x instanceof DataView) ? (x as Float32Array).length : 0;
}

export function float32Out(out: unknown, n: number): Float32Array {
  return out === undefined || out === null ? new Float32Array(n) : (out as Float32Array);
}
