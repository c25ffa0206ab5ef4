// `--name value` options of the benchmark scripts (they take a handful each; no parser needed),
// and where their result files go.
import * as fs from 'node:fs';
import * as path from 'node:path';

/** The value after `--name`, or undefined when it is not given. */
export function option(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

/** `--name` as a number, or `fallback`. */
export function numberOption(name: string, fallback: number): number {
  const v = option(name);
  return v === undefined ? fallback : Number(v);
}

/**
 * Where to write a result file: `file` itself when it does not exist yet or `--overwrite` is
 * given; otherwise the same name with the time added (`...-2026-11-25-0931.json`), so a trial
 * run never replaces a committed result of the same day. Says so when it moves the name.
 */
export function resultPath(file: string): string {
  if (!fs.existsSync(file) || process.argv.includes('--overwrite')) return file;
  const ext = path.extname(file);
  const time = new Date().toISOString().slice(11, 19).replace(/:/g, '');
  const moved = `${file.slice(0, file.length - ext.length)}-${time}${ext}`;
  console.error(`${path.basename(file)} exists (pass --overwrite to replace it): writing ${path.basename(moved)}`);
  return moved;
}
