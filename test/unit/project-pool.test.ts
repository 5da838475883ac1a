/** The pool of projects minted ahead (isolation 'project'), with a fake mint: no VM. */
import { describe, expect, it } from 'vitest'
import { ProjectPool } from '../../src/client/project-pool.js'

/** A mint the test settles by hand, one call at a time. */
function fakeMint() {
  const calls: { n: number; resolve: () => void; reject: (e: Error) => void }[] = []
  let n = 0
  let atOnce = 0
  let mostAtOnce = 0
  const mint = () =>
    new Promise<string>((resolve, reject) => {
      const id = ++n
      mostAtOnce = Math.max(mostAtOnce, ++atOnce)
      let settled = false
      const settle = () => !settled && (settled = true) && (atOnce--, true)
      calls.push({
        n: id,
        resolve: () => {
          if (settle()) resolve(`p${id}`)
        },
        reject: (e) => {
          if (settle()) reject(e)
        },
      })
    })
  /** Lands every mint still under way (before close(), which waits for them). */
  const settleAll = () => calls.forEach((c) => c.resolve())
  return { mint, calls, started: () => n, mostAtOnce: () => mostAtOnce, settleAll }
}

const tick = () => new Promise((r) => setTimeout(r, 0))

describe('ProjectPool', () => {
  it('keeps `ahead` projects minted, never more, and refills as they are taken', async () => {
    const m = fakeMint()
    const pool = new ProjectPool({ mint: m.mint, ahead: 2 }).start()
    await tick()
    expect(m.started()).toBe(2)
    m.calls.forEach((c) => c.resolve())
    await tick()
    expect(pool.readyCount).toBe(2)
    expect(m.started()).toBe(2) // full: nothing more
    expect(await pool.take()).toBe('p1')
    await tick()
    expect(m.started()).toBe(3) // one taken, one started
    expect(pool.readyCount + pool.mintingCount).toBe(2)
    m.settleAll()
    await pool.close()
  })

  it('hands each project out once, to takers in order, and mints for takers beyond the bound', async () => {
    const m = fakeMint()
    const pool = new ProjectPool({ mint: m.mint, ahead: 1 }).start()
    const taken = Promise.all([pool.take(), pool.take(), pool.take()])
    await tick()
    expect(m.started()).toBe(4) // one ahead plus one per waiting taker
    expect(m.mostAtOnce()).toBe(4)
    m.calls.forEach((c) => c.resolve())
    expect(await taken).toEqual(['p1', 'p2', 'p3'])
    await tick()
    expect(pool.readyCount).toBe(1) // p4 waits for the next test
    expect(m.started()).toBe(4)
    await pool.close()
  })

  it('with ahead 0 mints only when asked', async () => {
    const m = fakeMint()
    const pool = new ProjectPool({ mint: m.mint, ahead: 0 }).start()
    await tick()
    expect(m.started()).toBe(0)
    const taken = pool.take()
    await tick()
    m.calls[0]!.resolve()
    expect(await taken).toBe('p1')
    await tick()
    expect(m.started()).toBe(1)
    await pool.close()
  })

  it('a failed mint fails the taker waiting for it; the next take mints again', async () => {
    const m = fakeMint()
    const pool = new ProjectPool({ mint: m.mint, ahead: 0 })
    const first = pool.take()
    await tick()
    m.calls[0]!.reject(new Error('route said 500'))
    await expect(first).rejects.toThrow('route said 500')
    const second = pool.take()
    await tick()
    m.calls[1]!.resolve()
    expect(await second).toBe('p2')
  })

  it('a failed background mint is said once, to the next take, and minting stops until then', async () => {
    const m = fakeMint()
    const pool = new ProjectPool({ mint: m.mint, ahead: 2 }).start()
    await tick()
    m.calls[0]!.reject(new Error('route said 500'))
    m.calls[1]!.resolve()
    await tick()
    expect(m.started()).toBe(2) // no retry in the background after a failure
    await expect(pool.take()).rejects.toThrow('route said 500')
    await tick()
    expect(m.started()).toBe(3) // resumed
    expect(await pool.take()).toBe('p2')
    m.settleAll()
    await pool.close()
  })

  it('drain drops what was minted before it, landed or in flight, and waiting takers get newer ones', async () => {
    const m = fakeMint()
    const dropped: string[] = []
    const pool = new ProjectPool({ mint: m.mint, ahead: 1, dropped: (p) => dropped.push(p) }).start()
    await tick()
    m.calls[0]!.resolve()
    await tick()
    const taken = pool.take() // p1 at once; p2 starts
    expect(await taken).toBe('p1')
    await tick()
    const waiting = pool.take() // waits for p2; p3 starts
    await tick()
    pool.drain() // the VM was reset: p2 and p3 are from before
    m.calls[1]!.resolve()
    m.calls[2]!.resolve()
    await tick()
    await tick()
    expect(dropped).toEqual(['p2', 'p3'])
    const fresh = m.calls.slice(3)
    expect(fresh.length).toBeGreaterThan(0)
    fresh.forEach((c) => c.resolve())
    expect(await waiting).toBe('p4')
    await pool.close()
  })

  it('close refuses waiting takers, drops ready projects, and waits for mints under way', async () => {
    const m = fakeMint()
    const dropped: string[] = []
    const pool = new ProjectPool({ mint: m.mint, ahead: 1, dropped: (p) => dropped.push(p) }).start()
    await tick()
    const waiting = pool.take()
    const refused = expect(waiting).resolves.toBe('p1') // the first mint is its own
    await tick()
    m.calls[0]!.resolve()
    await refused
    await tick()
    let closed = false
    const closing = pool.close().then(() => (closed = true))
    await tick()
    expect(closed).toBe(false) // p2 still minting
    m.calls[1]!.resolve()
    await closing
    expect(dropped).toEqual(['p2'])
    await expect(pool.take()).rejects.toMatchObject({ code: 'LEASE_LOST' })
    await pool.close() // twice is fine
  })

  it('refuses a bad bound', () => {
    expect(() => new ProjectPool({ mint: async () => 'x', ahead: -1 })).toThrow(TypeError)
    expect(() => new ProjectPool({ mint: async () => 'x', ahead: 1.5 })).toThrow(TypeError)
  })
})
