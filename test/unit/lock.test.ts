/**
 * The instance and ownership locks with real processes: exclusive, and free the moment their
 * holder dies, whatever kills it; names no other user can take first (issue 22).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import readline from 'node:readline'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { sha256 } from '../../src/digest.js'
import { claimOwnership, isOwned, withInstanceLock } from '../../src/instance/lock.js'
import { instancePaths } from '../../src/instance/paths.js'

const holderPath = path.resolve(import.meta.dirname, '../programs/lock-holder.mjs')
const dir = () => fs.mkdtempSync(path.join(os.tmpdir(), 'se-lock-'))

/** `extra`: more arguments, only for its command line (a supervisor's names its supervisor.json). */
function holder(folder: string, role: 'instance' | 'owner', holdMs = 60_000, extra: string[] = []) {
  const child = execa(process.execPath, [holderPath, folder, role, ...extra], { env: { HOLD_MS: String(holdMs) }, reject: false })
  const lines = readline.createInterface({ input: child.stdout! })[Symbol.asyncIterator]()
  return { child, next: async () => String((await lines.next()).value) }
}

describe('instance lock', () => {
  it('is held by one process at a time, and 8 racing for a folder with no key yet agree on one', async () => {
    const folder = dir()
    const holders = Array.from({ length: 8 }, () => holder(folder, 'instance', 100))
    const spans: [number, number][] = []
    for (const h of holders) {
      const result = await h.child
      const [held, released] = result.stdout.split('\n').map((l) => Number(l.split(' ')[1]))
      spans.push([held!, released!])
    }
    spans.sort((a, b) => a[0] - b[0])
    for (let i = 1; i < spans.length; i++) expect(spans[i]![0]).toBeGreaterThanOrEqual(spans[i - 1]![1])
    expect(fs.readdirSync(folder)).toEqual(['lock.key']) // no staging file left behind
    expect(fs.statSync(path.join(folder, 'lock.key')).mode & 0o777).toBe(0o600)
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
    expect(await isOwned(paths, undefined)).toBe(false) // no folder yet
    fs.mkdirSync(paths.dir, { mode: 0o700 })
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
    for (const name of ['a', 'b']) fs.mkdirSync(path.join(folder, name), { mode: 0o700 }) // a supervisor's folder always exists
    const a = await claimOwnership(path.join(folder, 'a'))
    const b = await claimOwnership(path.join(folder, 'b'))
    expect(a).toBeDefined()
    expect(b).toBeDefined()
    await a!.release()
    await b!.release()
  })
})

describe('names no other user can take first', () => {
  // What another local user can compute of the names: the uid and the folder's path.
  const squatter = `
    const net = require('node:net')
    const [folder, uid, hash] = process.argv.slice(1)
    let key = 'unreadable'
    try { key = require('node:fs').readFileSync(folder + '/lock.key', 'utf8') } catch (e) { key = e.code }
    for (const role of ['instance', 'owner']) net.createServer().listen('\\0stack-emulator/' + uid + '/' + hash + '/' + role)
    console.log('squatting ' + key)
    setTimeout(() => {}, 60000)`

  it('a name bound by another user first: the locks are unaffected, at once', async () => {
    if (process.getuid?.() !== 0) throw new Error('this test starts a process as user nobody: run it as root (CI does)')
    const paths = instancePaths(dir(), 'x')
    fs.mkdirSync(paths.dir, { mode: 0o700 })
    const nobody = execa(process.execPath, ['-e', squatter, paths.dir, '0', sha256(path.resolve(paths.dir)).slice(0, 32)], {
      uid: 65534,
      gid: 65534,
      reject: false,
    })
    try {
      const line = readline.createInterface({ input: nobody.stdout! })[Symbol.asyncIterator]()
      expect(String((await line.next()).value)).toBe('squatting EACCES')
      const started = Date.now()
      const within = <T>(what: Promise<T>) =>
        Promise.race([what, new Promise<never>((_, reject) => setTimeout(() => reject(new Error('still waiting after 3 s')), 3000))])
      await within(withInstanceLock(paths, async () => {}))
      expect(await within(isOwned(paths, undefined))).toBe(false)
      const mine = await within(claimOwnership(paths.dir))
      expect(mine).toBeDefined()
      expect(await isOwned(paths, undefined)).toBe(true)
      await mine!.release()
      expect(Date.now() - started).toBeLessThan(3000)
    } finally {
      nobody.kill('SIGKILL')
      await nobody
    }
  })

  it('a key that is a link, not ours, readable by others or garbled: a clear error naming the fix, at once', async () => {
    const cases: [string, (file: string) => void, RegExp][] = [
      ['link', (file) => fs.symlinkSync('/etc/hostname', file), /is a symbolic link/],
      ['garbled', (file) => fs.writeFileSync(file, 'garbage', { mode: 0o600 }), /is not a lock key/],
      ['readable', (file) => fs.writeFileSync(file, 'a'.repeat(64), { mode: 0o644 }), /can be read by other users/],
      ['folder', (file) => fs.mkdirSync(file), /is not a file/],
    ]
    if (process.getuid?.() === 0)
      cases.push(['foreign', (file) => (fs.writeFileSync(file, 'a'.repeat(64), { mode: 0o600 }), fs.chownSync(file, 65534, 65534)), /belongs to user 65534/])
    for (const [what, plant, message] of cases) {
      const folder = dir()
      const file = path.join(folder, 'lock.key')
      plant(file)
      const error = { code: 'STATE_UNSAFE', message: expect.stringMatching(new RegExp(`${message.source}.*Remove it \\(rm ${file}\\)`)) }
      await expect(
        withInstanceLock({ dir: folder } as never, async () => {}),
        what,
      ).rejects.toMatchObject(error)
      await expect(claimOwnership(folder), what).rejects.toMatchObject(error)
    }
  })

  it('a folder removed under its owner: the owner writes its key back, so the next client sees it owned', async () => {
    const paths = instancePaths(dir(), 'x')
    fs.mkdirSync(paths.dir, { mode: 0o700 })
    const owner = holder(paths.dir, 'owner', 60_000, [paths.supervisorConfig])
    expect(await owner.next()).toBe('held')
    const key = fs.readFileSync(path.join(paths.dir, 'lock.key'), 'utf8')
    fs.rmSync(paths.dir, { recursive: true })
    fs.mkdirSync(paths.dir, { mode: 0o700 }) // as the next client's ensureInstanceDir does
    await withInstanceLock(paths, async () => {
      expect(fs.readFileSync(path.join(paths.dir, 'lock.key'), 'utf8')).toBe(key) // waited for it: no new key
      expect(await isOwned(paths, undefined)).toBe(true)
      expect(await claimOwnership(paths.dir)).toBeUndefined()
    })
    owner.child.kill('SIGKILL')
    await owner.child
    expect(await isOwned(paths, undefined)).toBe(false)
  })
})
