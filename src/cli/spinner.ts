import ora from 'ora';

/**
 * Run an indeterminate phase (reading, tokenizing) under an ora spinner on stderr. Without a
 * terminal ora stays silent, so one plain line says what is happening instead.
 */
export async function withSpinner<T>(
  text: string,
  opts: { enabled: boolean },
  work: (report: (detail: string) => void) => Promise<T>,
): Promise<T> {
  if (!opts.enabled) return work(() => {});
  if (!process.stderr.isTTY) {
    process.stderr.write(`${text}...\n`);
    return work(() => {});
  }
  const spinner = ora({ text, stream: process.stderr }).start();
  try {
    const result = await work((detail) => (spinner.text = `${text}: ${detail}`));
    spinner.succeed(text);
    return result;
  } catch (err) {
    spinner.stop();
    throw err;
  }
}
