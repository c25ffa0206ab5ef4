// `--name value` options of the benchmark scripts (they take a handful each; no parser needed),
// and their result files.
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

/** The value after `--name`, or undefined when it is not given. */
export function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** `--name` as a number, or `fallback`. */
export function numberArg(name: string, fallback: number): number {
  const v = option(name);
  return v === undefined ? fallback : Number(v);
}

/** The comma-separated values after `--name` (or in `fallback`), empty items dropped. */
export function listOption(name: string, fallback: string): string[] {
  return (option(name) ?? fallback).split(',').filter((x) => x !== '');
}

/**
 * Writes `data` as benchmarks/results/<what>-<host>-<date><suffix>.json and returns the path.
 * When that file exists (a committed result of the same day) and `--overwrite` is not given,
 * the time is added to the name (`...-2026-11-25-093112.json`), so a trial run never replaces
 * it; it says so.
 */
export function writeResult(what: string, date: string, data: unknown, suffix = ''): string {
  const dir = path.join(__dirname, 'results');
  fs.mkdirSync(dir, { recursive: true });
  const stem = path.join(dir, `${what}-${os.hostname().replace(/[^\w.-]/g, '_')}-${date.slice(0, 10)}${suffix}`);
  let file = `${stem}.json`;
  if (fs.existsSync(file) && !process.argv.includes('--overwrite')) {
    const moved = `${stem}-${new Date().toISOString().slice(11, 19).replace(/:/g, '')}.json`;
    console.error(`${path.basename(file)} exists (pass --overwrite to replace it): writing ${path.basename(moved)}`);
    file = moved;
  }
  fs.writeFileSync(file, JSON.stringify(data, null, 2) + '\n');
  console.log(`wrote ${path.relative(process.cwd(), file)}`);
  return file;
}
