import { CommanderError } from 'commander';
import { ApiError, WaitTimeoutError } from '@tasksys/client';
import { EXIT } from './app/exit-codes';
import { buildProgram, DEFAULT_URL } from './app/program';

/** Why a call failed, in one line: the api's message, or what kept us from reaching it. */
function describe(err: unknown, url: string): string {
  if (err instanceof ApiError) return `${err.message} (${err.code}, HTTP ${err.status})`;
  if (err instanceof WaitTimeoutError) return err.message;
  const e = err as { message?: string; cause?: { code?: string; message?: string; errors?: { code?: string }[] } };
  if (e?.message === 'fetch failed') {
    const cause = e.cause?.code ?? e.cause?.errors?.[0]?.code ?? e.cause?.message ?? 'unknown error';
    return `cannot reach the api at ${url} (${cause}); set TASKSYS_URL`;
  }
  return e?.message ?? String(err);
}

async function main(): Promise<void> {
  const url = process.env['TASKSYS_URL'] || DEFAULT_URL;
  const program = buildProgram({
    env: process.env,
    output: {
      out: (line) => process.stdout.write(`${line}\n`),
      err: (line) => process.stderr.write(`${line}\n`),
      isTTY: process.stdout.isTTY === true,
    },
    terminal: { stream: process.stdout },
    setExitCode: (code) => (process.exitCode = code),
  });
  try {
    await program.parseAsync(process.argv);
  } catch (err) {
    // --help and --version end here too, with exit code 0.
    if (err instanceof CommanderError) {
      process.exitCode = err.exitCode === 0 ? EXIT.OK : EXIT.ERROR;
      return;
    }
    process.stderr.write(`tasksys: ${describe(err, url)}\n`);
    process.exitCode = EXIT.ERROR;
  }
}

void main();
