/**
 * The one way to wait for a condition (#23): ask `check` every `intervalMs` until it returns
 * something other than `undefined` or `false` (that value is returned) or the deadline passes;
 * then `timeoutError` is thrown (without one the wait resolves `undefined`). The deadline is
 * monotonic, and no pause outlasts it: the last look is taken at the deadline. A check that
 * throws ends the wait with its error; `signal` ends it with an AbortError.
 */
import { setTimeout as sleep } from 'node:timers/promises'

/** What ends a wait: any value but `undefined` and `false`. */
export type Found<T> = Exclude<T, undefined | false>

export interface PollOptions {
  /** How long to keep asking, in ms; Infinity: until `signal` aborts. */
  timeoutMs: number
  /** Pause between checks, or a function of the number of checks made so far (backoff). */
  intervalMs: number | ((checks: number) => number)
  /** The error at the deadline, worded by the caller (it may read a log first). */
  timeoutError?: () => Error | Promise<Error>
  /** Ends the wait early (Ctrl-C): pollUntil then rejects with an AbortError. */
  signal?: AbortSignal
  /** Pause before the first check too: for a check that measures what happened over the pause. */
  waitFirst?: boolean
}

/** `check` receives the ms left before the deadline (to bound a try of its own). */
export type Check<T> = (remainingMs: number) => T | Promise<T>

export function pollUntil<T>(check: Check<T>, options: PollOptions & Required<Pick<PollOptions, 'timeoutError'>>): Promise<Found<T>>
export function pollUntil<T>(check: Check<T>, options: PollOptions): Promise<Found<T> | undefined>
export async function pollUntil<T>(check: Check<T>, options: PollOptions): Promise<Found<T> | undefined> {
  const deadline = performance.now() + options.timeoutMs
  const interval = options.intervalMs
  for (let checks = 0; ; checks++) {
    if (checks > 0 || options.waitFirst) {
      const pause = typeof interval === 'number' ? interval : interval(checks)
      await sleep(Math.max(0, Math.min(pause, deadline - performance.now())), undefined, { signal: options.signal })
    }
    options.signal?.throwIfAborted()
    const found = await check(deadline - performance.now())
    if (found !== undefined && found !== false) return found as Found<T>
    if (performance.now() >= deadline) {
      if (options.timeoutError) throw await options.timeoutError()
      return undefined
    }
  }
}
