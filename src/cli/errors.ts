// CLI error reporting: user mistakes and GPU problems become one clear line, never a stack trace.
import { GraftError } from '../runtime/errors.js';

/** Print `graft: message` and exit 1 for known errors; show a stack only with GRAFT_DEBUG=1. */
export function reportAndExit(e: unknown): never {
  const debug = !!process.env.GRAFT_DEBUG;
  if (e instanceof GraftError || (e instanceof Error && e.name === 'CommanderError')) {
    console.error(`graft: ${e.message}`);
  } else if (e instanceof Error) {
    console.error(`graft: internal error: ${e.message}${debug ? '\n' + e.stack : ' (set GRAFT_DEBUG=1 for a stack trace)'}`);
  } else console.error(`graft: ${String(e)}`);
  process.exit(1);
}

/** Parse a positive integer option or throw a GraftError naming the flag. */
export function posInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new GraftError(`${flag} must be a positive integer, got '${v}'`);
    return n;
  };
}

/** Parse a non-negative integer option or throw a GraftError naming the flag. */
export function nonNegInt(flag: string) {
  return (v: string): number => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 0) throw new GraftError(`${flag} must be a non-negative integer, got '${v}'`);
    return n;
  };
}
