// What a gradient rule needs from the derivation (autodiff.ts): the graph being written,
// the forward's shapes and folded constants, and where a gradient contribution goes.
import type { GraphBuilder } from './builder';
import type { Consts } from './fold';
import type { Dim, Node } from './model';

export interface GradContext {
  b: GraphBuilder;
  /** The forward model's opset (ReduceMean's axes became an input at 18). */
  opset: number;
  consts: Consts;
  /** Tensors that depend on a parameter: only they take a gradient. */
  needs: Set<string>;
  shape(x: string): Dim[];
  /** Adds a contribution to the gradient of `name` (ignored when it needs none). */
  add(name: string, grad: string): void;
  /** Sums a broadcast gradient of shape `outShape` back to the shape of `x`. */
  sumTo(grad: string, outShape: Dim[], x: string): string;
  /** A constant of the model's float type. */
  fconst(values: number[], dims: number[]): string;
  /** `x` cast to the model's float type. */
  toElem(x: string): string;
}

/** A gradient rule: adds the contributions of node `n`, given dY of its first output. */
export type GradRule = (ctx: GradContext, n: Node, dy: string) => void;
