/**
 * Progress on stderr for long waits: silent for the first 2 s, then the phase and the elapsed
 * time; rewritten in place on a TTY, plain lines (on each change, and every 10 s) otherwise.
 * A phase's trailing parenthesis is its detail (a download's bytes, rate and time left): off a
 * terminal, a change of detail alone waits for the next 10 s line.
 */
export interface ProgressReporter {
  phase(phase: string): void
  done(): void
}

const withoutDetail = (phase: string) => phase.replace(/ \([^()]*\)$/, '')

export function createProgress(stream: NodeJS.WriteStream = process.stderr, quietMs = 2000): ProgressReporter {
  const started = Date.now()
  const tty = Boolean(stream.isTTY)
  let current = 'starting'
  let lastPrinted = ''
  let lastPrintedAt = 0
  const render = () => {
    const elapsed = Date.now() - started
    if (elapsed < quietMs) return
    const line = `stack-emulator: ${current} (${(elapsed / 1000).toFixed(0)}s)`
    if (tty) {
      stream.write(`\r\x1b[K${line}`)
    } else if (withoutDetail(current) !== lastPrinted || Date.now() - lastPrintedAt >= 10_000) {
      stream.write(`${line}\n`)
      lastPrinted = withoutDetail(current)
      lastPrintedAt = Date.now()
    }
  }
  const timer = setInterval(render, tty ? 250 : 1000)
  timer.unref()
  return {
    phase(phase) {
      current = phase
      render()
    },
    done() {
      clearInterval(timer)
      if (tty && Date.now() - started >= quietMs) stream.write('\r\x1b[K')
    },
  }
}

/** Runs `fn` with a phase callback that shows on stderr; the line is cleared at the end. */
export async function withProgress<T>(fn: (phase: (phase: string) => void) => Promise<T>): Promise<T> {
  const progress = createProgress()
  try {
    return await fn((phase) => progress.phase(phase))
  } finally {
    progress.done()
  }
}
