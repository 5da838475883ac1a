/**
 * The instance and ownership locks with real processes: exclusive, and free the moment their
 * holder dies, whatever kills it.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { claimOwnership, isOwned, withInstanceLock } from '../../src/instance/lock.js'
import { instancePaths } from '../../src/instance/paths.js'

const holderPath = path.resolve(import.meta.dirname, '../programs/lock-holder.mjs')
const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'se-lock-'))

function holder(folder: string, role: 'instance' | 'owner', holdMs = 60_000) {
  const child = execa(process.execPath, [holderPath, folder, role], { env: { HOLD_MS: String(holdMs) }, reject: false })
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  return { child, next: async () => String((await lines.next()).value) }
}

describe('instance lock', () => {
  it('is held by one process at a time', async () => {
    const folder = dir()
    const holders = Array.from({ length: 4 }, () => holder(folder, 'instance', 150))
    const spans: [number, number][] = []
    for (const h of holders) {
      const result = await h.child
      const [held, released] = result.stdout.split('\n').map((l) => Number(l.split(' ')[1]))
      spans.push([held!, released!])
    }
    spans.sort((a, b) => a[0] - b[0])
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1])
  })

  it('is free the moment its holder is killed with SIGKILL', async () => {
    const folder = dir()
    const h = holder(folder, 'instance')
    expect(await h.next()).toMatch(/^held/)
    h.child.kill('SIGKILL')
    await h.child
    const started = Date.now()
    await withInstanceLock({ dir: folder } as never, async () => {})
    expect(Date.now() - started).toBeLessThan(1000) // no stale timeout to wait out
  })
})

describe('ownership', () => {
  it('one owner per instance folder; a second claim is refused; free when the owner dies', async () => {
    const folder = dir()
    const paths = instancePaths(folder, 'x')
    expect(await isOwned(paths, undefined)).toBe(false)
    const owner = holder(paths.dir, 'owner')
    expect(await owner.next()).toBe('held')
    expect(await isOwned(paths, undefined)).toBe(true)
    expect(await claimOwnership(paths.dir)).toBeUndefined()
    const second = holder(paths.dir, 'owner')
    expect(await second.next()).toBe('owned-by-another')
    owner.child.kill('SIGKILL')
    await owner.child
    expect(await isOwned(paths, undefined)).toBe(false)
    const mine = await claimOwnership(paths.dir)
    expect(mine).toBeDefined()
    await mine!.release()
    await mine!.release() // twice is fine
  })

  it('is per folder: another instance is not affected', async () => {
    const folder = dir()
    const a = await claimOwnership(path.join(folder, 'a'))
    const b = await claimOwnership(path.join(folder, 'b'))
    expect(a).toBeDefined()
    expect(b).toBeDefined()
    await a!.release()
    await b!.release()
  })
})
