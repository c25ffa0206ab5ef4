#!/usr/bin/env node
// The `spartan` command line: `spartan graph derive ...` and `spartan train ...`.
import { runDerive } from './derive';
import { runTrain } from './train';

const USAGE = `usage:
  spartan graph derive <forward.onnx> -o <train.onnx> --logits <output> [--labels labels] [--params a,b,...]
                       [--loss cross-entropy|mse] [--label-smoothing 0] [--class-axis -1] [--keep-tied]
                       [--batch-norm as-exported|batch|frozen] [--dropout random|mask-inputs]
  spartan train [--dataset mnist|fashion-mnist] [--data-dir <folder>] [--model lenet-300-100|lenet-5|mlp-256-128|<forward.onnx>]
                [--logits <output>] [--method spartan|imp|topkast|dense] [--density 0.05] [--epochs 20]
                [--budget global|erk|uniform] [--block N] [--beta-max 100] [--beta0 1] [--seed 1] [--batch-size 128]
                [--lr 0.1 (lenet-5: 0.05)] [--train-count N] [--json out.json] [--export sparse.onnx] [--checkpoint dir] [--resume]
                [--sparsify a,b,...] [--weight-decay 1e-4] [--decay-on all|weights] [--batch-norm batch|frozen|as-exported]
                [--ep cpu|cuda]
  (a single value shown is the default; without them, --block masks by element, --train-count takes
   every image, --params every float initializer of rank >= 1 with no NaN or Inf that a gradient reaches (not
   BatchNormalization's running statistics, nor Resize, Pad, Clip or Dropout settings), --sparsify every weight of rank >= 2,
   and --json, --export and --checkpoint write nothing; spartan <command> --help prints this)`;

const asksHelp = (args: string[]) => args.includes('--help') || args.includes('-h');

async function main(argv: string[]): Promise<number> {
  if (asksHelp(argv)) {
    console.log(USAGE);
    return 0;
  }
  if (argv[0] === 'graph' && argv[1] === 'derive') return runDerive(argv.slice(2));
  if (argv[0] === 'train') return runTrain(argv.slice(1));
  console.error(argv.length ? `spartan: unknown command "${argv.join(' ')}"\n${USAGE}` : USAGE);
  return 2; // no command is a usage error too
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (e: Error & { code?: string }) => {
    console.error(`spartan: ${e.message}${e.code ? ` (${e.code})` : ''}`);
    process.exit(1);
  },
);
