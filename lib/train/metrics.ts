// Classification metrics of a batch's logits, on the host.

/** The sum over rows of -log softmax(logits)[label], in float64. */
export function crossEntropySum(logits: Float32Array, labels: BigInt64Array): number {
  const C = logits.length / labels.length;
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    let max = -Infinity;
    for (let c = 0; c < C; c++) max = Math.max(max, logits[i * C + c]);
    let z = 0;
    for (let c = 0; c < C; c++) z += Math.exp(logits[i * C + c] - max);
    sum += Math.log(z) + max - logits[i * C + Number(labels[i])];
  }
  return sum;
}

/** How many rows of logits [n, C] have their argmax at the label. */
export function countCorrect(logits: Float32Array, labels: BigInt64Array): number {
  const C = logits.length / labels.length;
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    let best = 0;
    for (let c = 1; c < C; c++) if (logits[i * C + c] > logits[i * C + best]) best = c;
    if (BigInt(best) === labels[i]) correct++;
  }
  return correct;
}
