/** The one polling helper (src/poll.ts, issue 23), with real timers. */
import { describe, expect, it } from 'vitest'
import { pollUntil } from '../../src/poll.js'

describe('pollUntil', () => {
  it('returns what the check found, asking until it finds something', async () => {
    let checks = 0
    const found = await pollUntil(() => (++checks < 3 ? undefined : `after ${checks}`), {
      timeoutMs: 10_000,
      intervalMs: 1,
      timeoutError: () => new Error('late'),
    })
    expect(found).toBe('after 3')
  })

  it('keeps asking on false and undefined, and returns any other value, falsy ones too', async () => {
    const answers: unknown[] = [false, undefined, '']
    expect(await pollUntil(() => answers.shift(), { timeoutMs: 10_000, intervalMs: 1 })).toBe('')
    expect(await pollUntil(() => 0, { timeoutMs: 10_000, intervalMs: 1 })).toBe(0)
    expect(await pollUntil(() => true, { timeoutMs: 10_000, intervalMs: 1 })).toBe(true)
  })

  it("throws the caller's error at the deadline, after a last look", async () => {
    let checks = 0
    const error = new Error('the thing never came')
    await expect(pollUntil(() => void checks++, { timeoutMs: 30, intervalMs: 1000, timeoutError: () => error })).rejects.toBe(error)
    expect(checks).toBeGreaterThanOrEqual(2) // it looked once more at the deadline
  })

  it('awaits an async timeout error (one that reads a log first)', async () => {
    await expect(pollUntil(() => false, { timeoutMs: 0, intervalMs: 1, timeoutError: async () => new Error('see the log') })).rejects.toThrow('see the log')
  })

  it('resolves undefined at the deadline when given no timeout error', async () => {
    expect(await pollUntil(() => false, { timeoutMs: 20, intervalMs: 5 })).toBeUndefined()
  })

  it('looks at least once, even with no time at all', async () => {
    expect(await pollUntil(() => 'now', { timeoutMs: 0, intervalMs: 5, timeoutError: () => new Error('late') })).toBe('now')
  })

  it('ends with an AbortError when its signal aborts, mid-pause or before', async () => {
    const stop = new AbortController()
    const waiting = pollUntil(() => false, { timeoutMs: Infinity, intervalMs: 60_000, signal: stop.signal })
    setTimeout(() => stop.abort(), 10)
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' })
    let checks = 0
    await expect(pollUntil(() => void checks++, { timeoutMs: Infinity, intervalMs: 1, signal: stop.signal })).rejects.toMatchObject({ name: 'AbortError' })
    expect(checks).toBe(0)
  })

  it("ends with the check's own error", async () => {
    await expect(
      pollUntil(() => Promise.reject(new Error('broken')), { timeoutMs: 10_000, intervalMs: 1, timeoutError: () => new Error('late') }),
    ).rejects.toThrow('broken')
  })

  it('pauses as a function of the checks made (backoff), and first when asked', async () => {
    const asked: number[] = []
    let checks = 0
    await pollUntil(() => ++checks === 3, { timeoutMs: 10_000, intervalMs: (n) => (asked.push(n), 1), waitFirst: true })
    expect(asked).toEqual([0, 1, 2])
  })

  it('tells the check how long it has left', async () => {
    const left: number[] = []
    await pollUntil((remainingMs) => (left.push(remainingMs), left.length === 2), { timeoutMs: 10_000, intervalMs: 1 })
    expect(left[0]).toBeLessThanOrEqual(10_000)
    expect(left[1]).toBeLessThan(left[0]!)
    expect(await pollUntil((remainingMs) => remainingMs, { timeoutMs: Infinity, intervalMs: 1 })).toBe(Infinity)
  })
})
