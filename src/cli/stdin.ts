import { CharnnError } from '../errors.js';

/** All of stdin as UTF-8 text (for small inputs such as a prime). */
export async function readStdinText(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(Buffer.concat(chunks));
  } catch {
    throw new CharnnError('stdin is not valid UTF-8 text');
  }
}
