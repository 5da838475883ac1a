/**
 * One VM shared by every suite: real processes racing for it, leases that die with their
 * process, crash recovery, stale state, and the isolation policy.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { acquire } from '../../src/client/acquire.js'
import { instanceStatus, stopInstance } from '../../src/client/control.js'
import {
  eventually,
  fixtureVariant,
  instanceNames,
  processesMentioning,
  qemuProcesses,
  spawnAcquirer,
  stressRounds,
  useTempHome,
  leftoversUnder,
} from '../helpers.js'

const home = useTempHome()
const stateDir = (name: string) => path.join(home, 'state', name)
/** What a client was told, less the accelerator warning every client of a TCG host gets. */
const recoveryLines = (logs: string[]) => logs.filter((l) => !/is not usable here/.test(l))

afterAll(async () => {
  for (const name of instanceNames(home)) await stopInstance(name)
  expect(await leftoversUnder(home)).toEqual([])
})

describe('boot-or-reuse', () => {
  it('16 processes acquiring at the same instant get exactly one VM, round after round', async () => {
    // The stress tier (docs/testing.md): 20 rounds under STACK_EMULATOR_STRESS=1, else 2: the first
    // races on a fresh state folder, the second on the one the first round's VM left behind, which
    // every later round repeats.
    for (let round = 0, rounds = stressRounds(20, 2); round < rounds; round++) {
      const acquirers = Array.from({ length: 16 }, () => spawnAcquirer({ name: 'race' }, { HOLD_MS: '300' }))
      const results = await Promise.all(acquirers.map((a) => a.next()))
      expect(results.filter((r) => r.error)).toEqual([])
      expect(new Set(results.map((r) => r.qemuPid)).size).toBe(1)
      expect(new Set(results.map((r) => JSON.stringify(r.urls))).size).toBe(1)
      await Promise.all(acquirers.map((a) => a.child))
      // The last release stops the VM (timed in the next test); this only waits for a clean slate.
      const gone = await eventually(() => processesMentioning(stateDir('race')).length === 0, 10_000)
      const log = () =>
        fs
          .readFileSync(path.join(stateDir('race'), 'supervisor.log'), 'utf8')
          .split('\n')
          .slice(-8)
          .join('\n')
      expect(gone, `round ${round}: still running ${JSON.stringify(processesMentioning(stateDir('race')))}\n${log()}`).toBe(true)
    }
  })

  it('the last release stops QEMU and the supervisor within 1 s', async () => {
    const a = spawnAcquirer({ name: 'last' })
    const { qemuPid } = await a.next()
    expect(qemuProcesses(stateDir('last')).map((p) => p.pid)).toHaveLength(1)
    a.send('release')
    await a.child
    const released = Date.now()
    expect(await eventually(() => processesMentioning(stateDir('last')).length === 0, 1000, 10)).toBe(true)
    expect(Date.now() - released).toBeLessThan(1000)
    expect(fs.existsSync(`/proc/${qemuPid}`)).toBe(false)
  })

  it('keepAlive keeps the VM after the last release, and the idle timeout stops it', async () => {
    const a = spawnAcquirer({ name: 'idle', keepAlive: true, idleTimeoutMs: 3000 })
    await a.next()
    a.send('release')
    await a.child
    await new Promise((r) => setTimeout(r, 1000))
    const status = await instanceStatus('idle')
    expect(status).toMatchObject({ keepAlive: true, leases: [], idleTimeoutMs: 3000 })
    expect(qemuProcesses(stateDir('idle'))).toHaveLength(1)
    expect(await eventually(() => processesMentioning(stateDir('idle')).length === 0, 8000)).toBe(true)
  })
})

describe('crashes', () => {
  it('a runner killed with SIGKILL loses its lease at once, and its VM goes', async () => {
    const a = spawnAcquirer({ name: 'crash' })
    const b = spawnAcquirer({ name: 'crash' })
    await Promise.all([a.next(), b.next()])
    expect((await instanceStatus('crash'))!.leases).toHaveLength(2)
    a.child.kill('SIGKILL')
    await a.child
    expect(await eventually(async () => (await instanceStatus('crash'))?.leases.length === 1, 1000)).toBe(true)
    b.child.kill('SIGKILL')
    await b.child
    expect(await eventually(() => processesMentioning(stateDir('crash')).length === 0, 15_000)).toBe(true)
  })

  it('recovers when the supervisor was killed with SIGKILL (its QEMU dies with it)', async () => {
    const a = spawnAcquirer({ name: 'sup', keepAlive: true, idleTimeoutMs: 0 })
    const first = await a.next()
    const state = JSON.parse(fs.readFileSync(path.join(stateDir('sup'), 'state.json'), 'utf8'))
    process.kill(state.pid, 'SIGKILL')
    expect(await eventually(() => !fs.existsSync(`/proc/${first.qemuPid}`), 5000)).toBe(true)
    await a.child
    const b = spawnAcquirer({ name: 'sup' })
    const second = await b.next()
    expect(second.qemuPid).not.toBe(first.qemuPid)
    expect(recoveryLines(second.logs)).toEqual([expect.stringMatching(new RegExp(`supervisor that is gone \\(pid ${state.pid}\\)`))])
    b.send('release')
    await b.child
  })

  it('recovers when QEMU was killed with SIGKILL', async () => {
    const a = spawnAcquirer({ name: 'qemu', keepAlive: true, idleTimeoutMs: 0 })
    const first = await a.next()
    process.kill(first.qemuPid, 'SIGKILL')
    // The holder is told, in one line, what happened; the next acquire starts afresh.
    expect(await a.next()).toEqual({
      lost: expect.stringMatching(new RegExp(`QEMU \\(pid ${first.qemuPid}\\) was killed by SIGKILL.*; the next acquire starts a new VM`)),
    })
    await a.child
    const b = spawnAcquirer({ name: 'qemu' })
    const second = await b.next()
    expect(second.error).toBeUndefined()
    expect(second.qemuPid).not.toBe(first.qemuPid)
    b.send('release')
    await b.child
  })

  it('a garbage state file with nobody owning the instance is cleaned with one line', async () => {
    const dir = stateDir('stale')
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    fs.writeFileSync(path.join(dir, 'state.json'), '{not json')
    fs.writeFileSync(path.join(dir, 'supervisor.sock'), '') // a dead supervisor's socket
    const a = spawnAcquirer({ name: 'stale' })
    const result = await a.next()
    expect(result.error).toBeUndefined()
    expect(recoveryLines(result.logs)).toEqual([expect.stringMatching(/unreadable state file/)])
    a.send('release')
    await a.child
  })
})

describe('isolation', () => {
  it("two sequential suites: the second sees none of the first one's data", async () => {
    const a = spawnAcquirer({ name: 'iso' })
    await a.next()
    a.send('write:first@example.com')
    expect(await a.next()).toEqual({ wrote: 201 })
    a.send('release')
    await a.child
    const b = spawnAcquirer({ name: 'iso', keepAlive: true }) // keepAlive: the VM survives the gap
    const second = await b.next()
    b.send('list')
    expect(await b.next()).toEqual({ users: [] })
    // Same again while the VM stays up: now the second suite triggers a reset.
    b.send('write:second@example.com')
    await b.next()
    b.send('release')
    await b.child
    const c = spawnAcquirer({ name: 'iso' })
    const third = await c.next()
    expect(third.qemuPid).not.toBe(second.qemuPid) // reset = a fresh restore
    expect(third.wasReset).toBe(true)
    c.send('list')
    expect(await c.next()).toEqual({ users: [] })
    c.send('release')
    await c.child
  })

  it("overlapping suites under 'suite' share the VM as it is", async () => {
    const a = spawnAcquirer({ name: 'share' })
    await a.next()
    a.send('write:shared@example.com')
    await a.next()
    const b = spawnAcquirer({ name: 'share' })
    const joined = await b.next()
    expect(joined.wasReset).toBe(false)
    b.send('list')
    expect(await b.next()).toEqual({ users: ['shared@example.com'] })
    a.send('release')
    b.send('release')
    await Promise.all([a.child, b.child])
  })

  it("under 'exclusive' the second suite waits its turn and starts clean", async () => {
    const a = spawnAcquirer({ name: 'excl', isolation: 'exclusive' })
    await a.next()
    a.send('write:first@example.com')
    await a.next()
    const b = spawnAcquirer({ name: 'excl', isolation: 'exclusive' })
    let bDone = false
    const bFirst = b.next().then((r) => ((bDone = true), r))
    await new Promise((r) => setTimeout(r, 1500))
    expect(bDone).toBe(false) // still waiting for a
    a.send('release')
    const second = await bFirst
    expect(second.wasReset).toBe(true)
    b.send('list')
    expect(await b.next()).toEqual({ users: [] })
    b.send('release')
    await Promise.all([a.child, b.child])
  })

  it('reset() is refused while another suite holds the VM, unless forced', async () => {
    const a = spawnAcquirer({ name: 'refuse' })
    await a.next()
    const mine = await acquire({ name: 'refuse', onLog: () => {} })
    await expect(mine.reset()).rejects.toThrow(/Refusing to reset: 1 other suite\(s\) hold this VM.*force/)
    const { durationMs } = await mine.reset({ force: true })
    expect(durationMs).toBeGreaterThan(0)
    await mine.release()
    a.send('release')
    await a.child
  })
})

describe('stop under a lease', () => {
  it('stops the VM while leases are held, and the holder gets a clear error on next use', async () => {
    const emulator = await acquire({ name: 'stopped', onLog: () => {} })
    expect(await stopInstance('stopped')).toBe(true)
    expect(await emulator.lost).toMatch(/stopped by request/)
    await expect(emulator.reset()).rejects.toThrow(/lease was lost.*emulator was stopped/)
    expect(processesMentioning(stateDir('stopped'))).toEqual([])
    await emulator.release() // still safe
  })
})

describe('one name, one image', () => {
  it('refuses to attach a suite that wants another image, naming both and the fix', async () => {
    const holder = await acquire({ name: 'img', onLog: () => {} })
    // The same files under another manifest (another fingerprint): a different image to the client.
    const other = await fixtureVariant(fs.mkdtempSync(path.join(home, 'other-image-')), (m) =>
      Object.assign(m, { name: 'other-image', fingerprint: 'f'.repeat(64) }),
    )
    await expect(acquire({ name: 'img', image: other, onLog: () => {} })).rejects.toThrow(
      /Instance "img" runs image stack-auth-fixture \([0-9a-f]{12}\), not other-image \(ffffffffffff\).*another instance name.*stack-emulator stop --name img/,
    )
    expect((await instanceStatus('img'))!.leases).toHaveLength(1) // the holder is untouched
    await holder.release()
  })
})
