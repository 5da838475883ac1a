/**
 * Progress on stderr for long waits: silent for the first 2 s, then the phase and the elapsed
 * time; rewritten in place on a TTY, plain lines (on each change, and every 10 s) otherwise.
 * A phase's trailing parenthesis is its detail (a download's bytes, rate and time left): off a
 * terminal, a change of detail alone waits for the next 10 s line.
 * Log lines go through the reporter: on a TTY the progress line is cleared before one and drawn
 * again after it, so the two never share a line.
 */
import { readLogLevel } from '../settings.js'

export interface ProgressReporter {
  phase(phase: string): void
  /** A line of its own (a warning, a note), above the progress line. */
  log(line: string): void
  done(): void
}

const withoutDetail = (phase: string) => phase.replace(/ \([^()]*\)$/, '')

export function createProgress(stream: NodeJS.WriteStream = process.stderr, quietMs = 2000): ProgressReporter {
  const started = Date.now()
  const tty = Boolean(stream.isTTY)
  let current = 'starting'
  let lastPrinted = ''
  let lastPrintedAt = 0
  let drawn = false // the progress line is on the terminal, without a newline
  const render = () => {
    const elapsed = Date.now() - started
    if (elapsed < quietMs) return
    const line = `stack-emulator: ${current} (${(elapsed / 1000).toFixed(0)}s)`
    if (tty) {
      stream.write(`\r\x1b[K${line}`)
      drawn = true
    } else if (withoutDetail(current) !== lastPrinted || Date.now() - lastPrintedAt >= 10_000) {
      stream.write(`${line}\n`)
      lastPrinted = withoutDetail(current)
      lastPrintedAt = Date.now()
    }
  }
  const clear = () => {
    if (drawn) stream.write('\r\x1b[K')
    drawn = false
  }
  const timer = setInterval(render, tty ? 250 : 1000)
  timer.unref()
  return {
    phase(phase) {
      current = phase
      render()
    },
    log(line) {
      const redraw = drawn
      clear()
      stream.write(`stack-emulator: ${line}\n`)
      if (redraw) render()
    },
    done() {
      clearInterval(timer)
      clear()
    },
  }
}

/**
 * Runs `fn` with a phase callback that shows on stderr and a log callback that keeps its lines
 * apart from it; the line is cleared at the end. STACK_EMULATOR_LOG=quiet shows neither.
 */
export async function withProgress<T>(fn: (phase: (phase: string) => void, log: (line: string) => void) => Promise<T>): Promise<T> {
  if (readLogLevel() === 'quiet')
    return fn(
      () => {},
      () => {},
    )
  const progress = createProgress()
  try {
    return await fn(
      (phase) => progress.phase(phase),
      (line) => progress.log(line),
    )
  } finally {
    progress.done()
  }
}
