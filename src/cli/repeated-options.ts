import yargs, { type Argv } from 'yargs';
import { UsageError } from '../errors.js';

/**
 * One rule for every option of every command: given more than once, the last one wins (as in
 * most Unix tools, so a wrapper's defaults can be overridden by appending). Applied to the raw
 * arguments before yargs parses them, because yargs cannot be left to it: it gathers repeats
 * into an array (which commands then read as a string or number: `--prime a --prime b` was an
 * internal error), and it reads a repeated number whose last value is 1 as a count to add
 * (`--batch 3 --batch 1` gave 4, `--seed 3 --seed 1` seed 4).
 *
 * @param args the arguments, the command first
 * @param builders each command's yargs builder, by command name: what its options are (their
 *   aliases, and which are boolean flags that take no value)
 * @returns the arguments with every earlier occurrence of a repeated option (and its value)
 *   removed; positionals, unknown options and everything after `--` as they were
 * @throws UsageError for an option that takes a value given without one (the last argument,
 *   or followed by another option), which yargs would read as its default
 */
interface DeclaredOptions {
  key: Record<string, unknown>;
  alias: Record<string, string[]>;
  boolean: string[];
}

export function keepLastOccurrences(args: readonly string[], builders: ReadonlyMap<string, (y: Argv) => unknown>): string[] {
  const command = args.find((a) => !a.startsWith('-'));
  const builder = command === undefined ? undefined : builders.get(command);
  if (!builder) return [...args];
  const y = yargs([]);
  builder(y);
  // yargs's description of the options it was given (public at run time, absent from its types).
  const o = (y as unknown as { getOptions(): DeclaredOptions }).getOptions();
  // Every spelling of an option (aliases, camelCase) -> one key. yargs lists aliases among the
  // keys too, so the alias table goes first and a key only names itself if it is no alias.
  const canonical = new Map<string, string>();
  const spell = (name: string, key: string) => {
    for (const n of [name, name.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase())]) if (!canonical.has(n)) canonical.set(n, key);
  };
  for (const [key, aliases] of Object.entries(o.alias)) for (const name of [key, ...aliases]) spell(name, key);
  for (const key of Object.keys(o.key)) spell(key, key);
  const booleans = new Set(o.boolean.map((b) => canonical.get(b) ?? b));

  const items: Array<{ tokens: string[]; key?: string }> = [];
  for (let i = 0; i < args.length; i++) {
    const token = args[i]!;
    if (token === '--') {
      items.push({ tokens: args.slice(i) });
      break;
    }
    const m = /^--?([^=]+)(=.*)?$/.exec(token);
    // A lone -, a negative number or -abc style clusters are not options this rule knows.
    let name = m && !/^-\d/.test(token) && (token.startsWith('--') || m[1]!.length === 1) ? m[1]! : undefined;
    if (name !== undefined && !canonical.has(name) && name.startsWith('no-') && booleans.has(canonical.get(name.slice(3)) ?? '')) name = name.slice(3);
    const key = name === undefined ? undefined : canonical.get(name);
    if (key === undefined) {
      items.push({ tokens: [token] });
      continue;
    }
    const takesValue = !booleans.has(key) && m![2] === undefined;
    // An option that takes a value, given without one (last, or followed by another option):
    // yargs would silently use its default (`--precision` ran fp32, `--iters` the default run).
    // "-" (stdin) and negative numbers are values.
    const next = args[i + 1];
    const missing = next === undefined || next === '--' || (next !== '-' && next.startsWith('-') && !/^-\.?\d/.test(next));
    if (takesValue && missing) {
      throw new UsageError(`${token} needs a value`, `see charnn ${command} --help`);
    }
    items.push({ key, tokens: takesValue ? [token, args[++i]!] : [token] });
  }
  const lastIndex = new Map<string, number>();
  items.forEach((item, k) => item.key !== undefined && lastIndex.set(item.key, k));
  return items.filter((item, k) => item.key === undefined || lastIndex.get(item.key) === k).flatMap((item) => item.tokens);
}
