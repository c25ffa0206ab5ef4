// What `spartan train` prints while it runs: the progress bar a terminal redraws in place,
// and the line each finished epoch leaves (all a log file gets).

/** β as the lines show it: '-' where the method has none (dense, IMP, Top-KAST: NaN). */
const betaText = (beta: number) => (Number.isFinite(beta) ? beta.toFixed(1) : '-');
const percent = (x: number | undefined) => (x === undefined || !Number.isFinite(x) ? '-' : `${(x * 100).toFixed(2)} %`);

export interface BarState {
  epoch: number; // counted from 0
  epochs: number;
  done: number; // the epoch's fraction done, 0 to 1
  loss: number; // the last batch's
  accuracy: number | undefined; // the epoch's training accuracy so far
  density: number;
  beta: number;
}

/** One line of the bar (no line break; the caller returns the carriage). */
export function progressBar(s: BarState): string {
  const bar = '#'.repeat(Math.round(Math.min(1, Math.max(0, s.done)) * 30)).padEnd(30, '.');
  return `epoch ${s.epoch + 1}/${s.epochs} [${bar}] loss ${s.loss.toFixed(4)} acc ${percent(s.accuracy)} density ${s.density.toFixed(4)} beta ${betaText(s.beta)}`;
}

export interface EpochLine {
  epoch: number; // counted from 0
  epochs: number;
  loss: number;
  trainAccuracy: number | undefined;
  testAccuracy: number;
  density: number;
  beta: number;
  seconds: number;
}

/** The line a finished epoch prints, a terminal's or not. */
export function epochLine(e: EpochLine): string {
  return `epoch ${e.epoch + 1}/${e.epochs}: loss ${e.loss.toFixed(4)}, train ${percent(e.trainAccuracy)}, test ${percent(e.testAccuracy)}, density ${e.density.toFixed(4)}, beta ${betaText(e.beta)}, ${e.seconds.toFixed(1)} s`;
}
