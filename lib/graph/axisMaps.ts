// Linear maps along one axis: a Resize (nearest or linear) and a reflect / edge / wrap Pad
// each move values along an axis by a fixed map, out = A in with A of [out, in] (at most
// two non-zeros a row). Their gradient is A^T applied to dY along that axis, which the
// derivation writes as a MatMul with a constant. The forward stays onnxruntime's own op,
// so A must be exactly what onnxruntime computes: the finite-difference tests check it.
import { rangeError } from '../errors';
import type { GraphBuilder } from './builder';
import { attrS, nodeLabel, type Node } from './model';
import type { PadMode, ResizeAxis } from './shapes';

/** A map along `axis`: `rows[o]` lists (input index, weight) pairs of output entry o. */
export interface AxisMap {
  axis: number;
  inSize: number;
  rows: [number, number][][];
}

/** x_original of output index o on one axis (ONNX's coordinate_transformation_mode). */
function sourceCoordinate(mode: string, o: number, g: ResizeAxis, name: string): number {
  const inSize = g.in as number, outSize = g.out as number, scale = Math.fround(g.scale);
  switch (mode) {
    case 'half_pixel': return (o + 0.5) / scale - 0.5;
    case 'pytorch_half_pixel': return outSize > 1 ? (o + 0.5) / scale - 0.5 : 0;
    case 'align_corners': return outSize === 1 ? 0 : (o * (inSize - 1)) / (outSize - 1);
    case 'asymmetric': return o / scale;
    case 'tf_half_pixel_for_nn': return (o + 0.5) / scale;
    default: throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${name}": Resize coordinate_transformation_mode "${mode}" is not supported`);
  }
}

function nearestIndex(mode: string, x: number, name: string): number {
  switch (mode) {
    case 'round_prefer_floor': return x === Math.floor(x) + 0.5 ? Math.floor(x) : Math.round(x);
    case 'round_prefer_ceil': return Math.round(x);
    case 'floor': return Math.floor(x);
    case 'ceil': return Math.ceil(x);
    default: throw rangeError('ERR_SPARTAN_UNSUPPORTED_OP', `node "${name}": Resize nearest_mode "${mode}" is not supported`);
  }
}

/** The maps of a Resize node, one per axis it changes (geometry from shapes.ts). */
export function resizeMaps(n: Node, geometry: ResizeAxis[]): AxisMap[] {
  const name = nodeLabel(n);
  const mode = attrS(n, 'mode', 'nearest'), ctm = attrS(n, 'coordinate_transformation_mode', 'half_pixel'), nearest = attrS(n, 'nearest_mode', 'round_prefer_floor');
  const maps: AxisMap[] = [];
  geometry.forEach((g, axis) => {
    if (g.scale === 1 && g.in === g.out) return;
    const inSize = g.in as number, outSize = g.out as number;
    const rows = Array.from({ length: outSize }, (_, o): [number, number][] => {
      const x = sourceCoordinate(ctm, o, g, name);
      if (mode === 'nearest') return [[Math.min(inSize - 1, Math.max(0, nearestIndex(nearest, x, name))), 1]];
      const c = Math.min(inSize - 1, Math.max(0, x)); // onnxruntime clamps the coordinate to the input
      const lo = Math.floor(c), hi = Math.min(lo + 1, inSize - 1), t = c - lo;
      return hi === lo ? [[lo, 1]] : [[lo, 1 - t], [hi, t]];
    });
    maps.push({ axis, inSize, rows });
  });
  return maps;
}

/**
 * The maps of a reflect / edge / wrap Pad (numpy's reflect: the edge entry is not repeated).
 * As onnxruntime does, negative pads crop first, and the positive ones pad what is left.
 */
export function padMaps(n: Node, mode: Exclude<PadMode, 'constant'>, amounts: { dim: number | string; before: number; after: number }[]): AxisMap[] {
  const maps: AxisMap[] = [];
  amounts.forEach((p, axis) => {
    if (p.before === 0 && p.after === 0) return;
    if (typeof p.dim !== 'number') throw rangeError('ERR_SPARTAN_ONNX', `node "${nodeLabel(n)}": Pad needs known sizes on the axes it pads`);
    const cropBegin = Math.max(0, -p.before), kept = p.dim - cropBegin - Math.max(0, -p.after);
    const outSize = p.dim + p.before + p.after;
    const rows = Array.from({ length: outSize }, (_, o): [number, number][] => {
      let i = o - Math.max(0, p.before); // in the cropped range [0, kept)
      if (mode === 'edge') i = Math.min(kept - 1, Math.max(0, i));
      else if (mode === 'wrap') i = ((i % kept) + kept) % kept;
      else if (kept === 1) i = 0;
      else {
        const period = 2 * (kept - 1);
        i = ((i % period) + period) % period;
        if (i >= kept) i = period - i;
      }
      return [[cropBegin + i, 1]];
    });
    maps.push({ axis, inSize: p.dim, rows });
  });
  return maps;
}

/**
 * dX = A^T dY along each map's axis: MatMul(dY, A) on the last axis, MatMul(A^T, dY) on the
 * one before it, and the axis moved last and back elsewhere. `constant` writes a matrix.
 */
export function applyAdjoint(b: GraphBuilder, dy: string, rank: number, maps: AxisMap[], constant: (values: number[], dims: number[]) => string): string {
  let g = dy;
  for (const m of maps) {
    const outSize = m.rows.length;
    const a = new Array<number>(outSize * m.inSize).fill(0); // A [out, in]
    m.rows.forEach((row, o) => row.forEach(([i, w]) => (a[o * m.inSize + i] += w)));
    if (m.axis === rank - 1) g = b.op('MatMul', [g, constant(a, [outSize, m.inSize])]);
    else if (m.axis === rank - 2) {
      const at = new Array<number>(a.length);
      for (let o = 0; o < outSize; o++) for (let i = 0; i < m.inSize; i++) at[i * outSize + o] = a[o * m.inSize + i];
      g = b.op('MatMul', [constant(at, [m.inSize, outSize]), g]);
    } else {
      const perm = Array.from({ length: rank }, (_, i) => i).filter((i) => i !== m.axis).concat(m.axis);
      const inv = perm.map((_, i) => perm.indexOf(i));
      const moved = b.op('MatMul', [b.op('Transpose', [g], { perm: { ints: perm } }), constant(a, [outSize, m.inSize])]);
      g = b.op('Transpose', [moved], { perm: { ints: inv } });
    }
  }
  return g;
}

