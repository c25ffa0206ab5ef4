// Parameter shapes of reference models, for benchmarks.

/** LeNet-300-100: 784-300-100-10 MLP (weights [out, in], biases). */
export function lenet300100(): [string, number[]][] {
  return [['fc1.weight', [300, 784]], ['fc1.bias', [300]], ['fc2.weight', [100, 300]], ['fc2.bias', [100]], ['fc3.weight', [10, 100]], ['fc3.bias', [10]]];
}

/** torchvision ResNet-50 conv and fc weights (25,502,912 values; norms and the fc bias left out). */
export function resnet50Weights(): [string, number[]][] {
  const out: [string, number[]][] = [['conv1.weight', [64, 3, 7, 7]]];
  let inC = 64;
  [[3, 64], [4, 128], [6, 256], [3, 512]].forEach(([blocks, width], li) => {
    for (let b = 0; b < blocks; b++) {
      const p = `layer${li + 1}.${b}`;
      out.push([`${p}.conv1.weight`, [width, inC, 1, 1]], [`${p}.conv2.weight`, [width, width, 3, 3]], [`${p}.conv3.weight`, [width * 4, width, 1, 1]]);
      if (b === 0) out.push([`${p}.downsample.0.weight`, [width * 4, inC, 1, 1]]);
      inC = width * 4;
    }
  });
  out.push(['fc.weight', [1000, 2048]]);
  return out;
}
