// Option values as the CLI's commands read them.
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { rangeError } from '../errors';

/**
 * parseArgs, with its errors as ERR_SPARTAN_OPTION: an unknown option names itself and where the
 * list is (Node's own message advises `--` for a positional argument, which is never meant here).
 */
export function parseCommand<T extends ParseArgsConfig>(command: string, config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (e) {
    const { code, message } = e as { code?: unknown; message?: string };
    if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS_')) throw e;
    const unknown = /^Unknown option '([^']+)'/.exec(message ?? '');
    throw rangeError('ERR_SPARTAN_OPTION', unknown ? `unknown option ${unknown[1]} (spartan ${command} --help lists the options)` : `${message} (spartan ${command} --help lists the options)`);
  }
}

/**
 * Refuses an option given an empty (or blank) value, `--seed ''` or `--json=`: an unset shell
 * variable, never a choice, which would otherwise read as 0, as absent, or as no names.
 */
export function refuseEmpty(tokens: readonly { kind: string; name?: string; value?: string }[]): void {
  const t = tokens.find((t) => t.kind === 'option' && typeof t.value === 'string' && t.value.trim() === '');
  if (t) throw rangeError('ERR_SPARTAN_OPTION', `--${t.name} needs a value (got an empty one)`);
}

// decimal only: Number() also takes 0x10, 0b1, 0o7, Infinity and surrounding spaces
const DECIMAL = /^[-+]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i;

/** The number an option's value writes in decimal (1e-4 and 0.05 too), if `ok` takes it. */
export function number(v: string | undefined, name: string, ok: (x: number) => boolean, what: string): number {
  const x = Number(v);
  if (v === undefined || !DECIMAL.test(v) || !Number.isFinite(x) || !ok(x)) throw rangeError('ERR_SPARTAN_OPTION', `--${name} must be ${what} (got ${v})`);
  return x;
}
