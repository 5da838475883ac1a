/**
 * The one way to wait for a condition: ask `check` every `intervalMs` until it returns true or
 * the deadline passes (`timeoutMs` Infinity: until `signal` aborts); the caller words the timeout
 * (`timeoutError`). A check that throws ends the wait with its error.
 */
import { setTimeout as sleep } from 'node:timers/promises'

export interface PollOptions {
  timeoutMs: number
  intervalMs: number
  timeoutError: () => Error
  /** Ends the wait early (Ctrl-C): pollUntil then rejects with an AbortError. */
  signal?: AbortSignal
}

export async function pollUntil(check: () => Promise<boolean> | boolean, options: PollOptions): Promise<void> {
  const deadline = Date.now() + options.timeoutMs
  for (;;) {
    options.signal?.throwIfAborted()
    if (await check()) return
    if (Date.now() >= deadline) throw options.timeoutError()
    await sleep(options.intervalMs, undefined, { signal: options.signal })
  }
}
