import { expect } from 'chai';
import type { GraphBuilder } from '../lib/graph/builder';

/** Asserts that fn throws an error of `type` whose `code` is `code`. */
export function expectCode(fn: () => unknown, type: ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor, code: string): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected ${code}`).to.be.instanceOf(type);
  expect((caught as { code?: string }).code).to.equal(code);
}

export async function expectRejectCode(p: Promise<unknown>, type: ErrorConstructor | TypeErrorConstructor | RangeErrorConstructor, code: string): Promise<void> {
  let caught: unknown;
  try {
    await p;
  } catch (e) {
    caught = e;
  }
  expect(caught, `expected rejection ${code}`).to.be.instanceOf(type);
  expect((caught as { code?: string }).code).to.equal(code);
}

export function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what = 'value'): void {
  expect(actual.length, `${what} length`).to.equal(expected.length);
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs(actual[i] - expected[i]);
    if (!(d <= tol)) expect.fail(`${what}[${i}] = ${actual[i]}, expected ${expected[i]} (|diff| ${d} > ${tol})`);
  }
}

/** "<code>: <message>" of what fn throws, or "no error": one string to match against. */
export function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    return `${(e as { code?: string }).code}: ${(e as Error).message}`;
  }
  return 'no error';
}

/** "<code>: <message>" of what p rejects with, or "resolved": codeOf for promises. */
export const failure = (p: Promise<unknown>): Promise<string> => p.then(() => 'resolved', (e: { code?: string; message: string }) => `${e.code}: ${e.message}`);

/** A float32 initializer of `dims` for a small test model, uniform in [-0.5, 0.5) from `rand` (drawn in order). */
export function uniformInitializer(b: GraphBuilder, name: string, dims: number[], rand: () => number): string {
  return b.initializer(name, dims, Float32Array.from({ length: dims.reduce((x, y) => x * y, 1) }, () => rand() - 0.5));
}
