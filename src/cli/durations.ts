import { UsageError } from '../errors.js';

const UNITS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86400 };

/** "90", "90s", "20m", "1.5h" -> seconds. */
export function parseDuration(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$/i.exec(text);
  if (!m) throw new UsageError(`cannot read the duration '${text}'`, 'write it like 90s, 20m or 1.5h');
  const seconds = Number(m[1]) * UNITS[m[2].toLowerCase()];
  if (!(seconds > 0)) throw new UsageError(`the duration must be positive, got '${text}'`);
  return seconds;
}
