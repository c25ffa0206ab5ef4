// Classification metrics of a batch's logits, on the host.
//
// The logits are [A, C, P] in memory: A the dims before the class axis (the batch, and any
// positions before it), P the product of the dims after it (1 with classes last; H·W for
// PyTorch's [N, C, H, W]). The labels are [A, P]: label i is at a = floor(i / P), p = i % P,
// and its class c's logit at (a·C + c)·P + p.

/** The sum over labels of -log softmax(logits)[label], in float64. */
export function crossEntropySum(logits: Float32Array, labels: BigInt64Array, after = 1): number {
  const C = logits.length / labels.length;
  let sum = 0;
  for (let i = 0; i < labels.length; i++) {
    const base = (i - (i % after)) * C + (i % after);
    let max = -Infinity;
    for (let c = 0; c < C; c++) max = Math.max(max, logits[base + c * after]);
    let z = 0;
    for (let c = 0; c < C; c++) z += Math.exp(logits[base + c * after] - max);
    sum += Math.log(z) + max - logits[base + Number(labels[i]) * after];
  }
  return sum;
}

/** How many labels have the argmax of their logits over the classes at them (ties: the first). */
export function countCorrect(logits: Float32Array, labels: BigInt64Array, after = 1): number {
  const C = logits.length / labels.length;
  let correct = 0;
  for (let i = 0; i < labels.length; i++) {
    const base = (i - (i % after)) * C + (i % after);
    let best = 0;
    for (let c = 1; c < C; c++) if (logits[base + c * after] > logits[base + best * after]) best = c;
    if (BigInt(best) === labels[i]) correct++;
  }
  return correct;
}
