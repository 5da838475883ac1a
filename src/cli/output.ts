/** --json: exactly one JSON object on stdout. */
export function print(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`)
}

/**
 * A reader that went away (`doctor | head -1`) ends the output, not the command: EPIPE on stdout
 * or stderr is ignored, as other CLIs do, so `start` still finishes and exits 0 with its VM up.
 * Node ignores SIGPIPE; without a listener the 'error' event would crash with a stack trace.
 * A stream that failed is destroyed, and later writes to it are dropped without another event.
 */
export function ignoreClosedOutput(): void {
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error
    })
  }
}
