/**
 * The `ready` snapshot: start from it, reset to it, and fall back to a cold boot (with one line
 * saying why) when it does not fit or is damaged. Uses a private snapshot cache so the shared
 * one is never disturbed: it starts with a copy of the shared ready snapshot (captures are tested
 * here by the slots of other memory sizes and the recapture of a damaged one), so the file pays
 * for no cold boot and capture of the default size.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { StackClientApp } from '@stackframe/js'
import { acquire, type Emulator } from '../../src/client/acquire.js'
import { stopInstance } from '../../src/client/control.js'
import {
  cli,
  createUser,
  eventually,
  http,
  listUserEmails,
  privateCacheWithSnapshot,
  processesMentioning,
  qemuProcesses,
  useTempHome,
  leftoversUnder,
} from '../helpers.js'

const home = useTempHome()
const cache = await privateCacheWithSnapshot(home)
process.env.STACK_EMULATOR_CACHE_DIR = cache
const snapshotsDir = () => path.join(cache, 'snapshots')
/** The ready snapshots of the store: one per fingerprint (here, per memory size); seeded snapshots sit beside them. */
const slots = () => fs.readdirSync(snapshotsDir()).filter((d) => /^[^.]+-[0-9a-f]{16}$/.test(d) && !d.includes('-checkpoint-'))
const snapshotFile = (file: string, memoryMb = 512) => {
  const dir = slots().find((d) => {
    const record = path.join(snapshotsDir(), d, 'snapshot.json')
    return fs.existsSync(record) && JSON.parse(fs.readFileSync(record, 'utf8')).fingerprint.memoryMb === memoryMb
  })
  if (!dir) throw new Error(`no snapshot for ${memoryMb} MiB in ${snapshotsDir()}: ${slots().join(', ')}`)
  return path.join(snapshotsDir(), dir, file)
}

async function start(name: string, options: Parameters<typeof acquire>[0] = {}) {
  const logs: string[] = []
  const emulator = await acquire({ name, keepAlive: true, idleTimeoutMs: 0, onLog: (l) => logs.push(l), ...options })
  return { emulator, logs }
}

afterAll(async () => {
  for (const name of ['snap', 'snap-512', 'cold', 'mem', 'corrupt', 'refused', 'fallback', 'clock']) await stopInstance(name)
  expect(await leftoversUnder(home)).toEqual([])
})

describe('snapshot start and reset', () => {
  let vm: Emulator
  beforeAll(async () => {
    vm = (await start('snap')).emulator // restored from the copy of the shared ready snapshot
    // The copy brought the shared cache's ready snapshots of other fingerprints (older images or
    // QEMUs): only the one this VM restored from stays, as if this cache had captured it.
    const used = /mem-path=([^,\s]+)\/ram/.exec(qemuProcesses(path.join(home, 'state', 'snap'))[0]!.cmdline)![1]!
    const slot = path.basename(used).replace(/-checkpoint-[0-9a-f]{16}$/, '')
    for (const other of slots()) if (other !== slot) fs.rmSync(path.join(snapshotsDir(), other), { recursive: true, force: true })
  })
  afterAll(() => vm.release())

  it('starts from the snapshot', async () => {
    expect(vm.origin).toBe('snapshot')
    expect(fs.existsSync(snapshotFile('snapshot.json'))).toBe(true)
  })

  it('removes everything written after the snapshot, cycle after cycle, on the same URLs', async () => {
    const urls = { ...vm.services }
    for (let cycle = 0; cycle < 3; cycle++) {
      for (let i = 0; i < 3; i++) expect((await createUser(vm.backendUrl, vm.env, `c${cycle}-u${i}@example.com`)).status).toBe(201)
      expect(await listUserEmails(vm.backendUrl, vm.env)).toHaveLength(3)
      const { durationMs } = await vm.reset()
      expect(durationMs).toBeGreaterThan(0)
      expect(vm.services).toEqual(urls)
      expect(await listUserEmails(vm.backendUrl, vm.env)).toEqual([])
      expect((await http(`${vm.backendUrl}/health?db=1`)).status).toBe(200)
    }
  })

  it('keeps a warm spare after a reset and swaps it in on the next one, with no data and the right clock', async () => {
    await vm.reset()
    const running = () => qemuProcesses(path.join(home, 'state', 'snap')).map((p) => p.pid)
    // The spare: a second QEMU of this instance, restored in the background.
    expect(await eventually(() => running().length === 2, 10_000)).toBe(true)
    const spare = running().find((pid) => pid !== Number(vm.id))
    await createUser(vm.backendUrl, vm.env, 'before-swap@example.com')
    await vm.reset()
    expect(Number(vm.id)).toBe(spare)
    expect(await listUserEmails(vm.backendUrl, vm.env)).toEqual([])
    const guest = (await http(`${vm.backendUrl}/api/v1/internal/emulator/info`)).json.epoch_ms
    expect(Math.abs(guest - Date.now())).toBeLessThan(2000)
  })

  it('gives the same services and API results as a cold boot', async () => {
    const cold = (await start('cold', { snapshot: false, fresh: true })).emulator
    try {
      expect(cold.origin).toBe('cold-boot')
      expect(Object.keys(cold.services).sort()).toEqual(Object.keys(vm.services).sort())
      for (const target of [vm, cold]) {
        expect((await http(`${target.backendUrl}/health?db=1`)).json).toEqual((await http(`${vm.backendUrl}/health?db=1`)).json)
        expect((await http(`${target.dashboardUrl}/handler/sign-in`)).status).toBe(200)
        expect((await createUser(target.backendUrl, target.env, 'same@example.com')).status).toBe(201)
        expect(await listUserEmails(target.backendUrl, target.env)).toEqual(['same@example.com'])
        expect((await http(`${target.backendUrl}/api/v1/internal/emulator/info`)).json.hostname).toBe('stack-emulator')
      }
    } finally {
      await cold.release()
      await stopInstance('cold')
    }
  })
})

// The store's ready snapshots themselves: no credentials, so no seeded snapshot over them.
/** The one line a capture says (its phases go to progress). */
const capturing = expect.stringMatching(/booting it once to capture its ready snapshot/)
describe('an unusable snapshot is never used', () => {
  it('two memory sizes keep two snapshots, and instances of both keep resetting from theirs', async () => {
    // Left by a capture whose process was killed: cleaned by the next capture.
    const abandoned = path.join(snapshotsDir(), 'stack-auth-fixture-0000000000000000.staging-999999')
    fs.mkdirSync(abandoned, { recursive: true })
    const small = await start('snap-512', { configFile: false })
    const { emulator: large, logs } = await start('mem', { memoryMb: 640, configFile: false })
    expect(logs.filter((l) => /snapshot/i.test(l))).toEqual([capturing]) // a new slot, captured; none replaced
    expect(JSON.parse(fs.readFileSync(snapshotFile('snapshot.json', 640), 'utf8')).fingerprint.memoryMb).toBe(640)
    expect(fs.existsSync(snapshotFile('snapshot.json', 512))).toBe(true)
    expect(fs.existsSync(abandoned)).toBe(false)
    for (let i = 0; i < 2; i++) {
      for (const vm of [small.emulator, large]) {
        await vm.reset({ force: true })
        expect(vm.origin).toBe('snapshot')
        expect((await http(`${vm.backendUrl}/health?db=1`)).status).toBe(200)
      }
    }
    await small.emulator.release()
    await large.release()
    await stopInstance('snap-512')
    await stopInstance('mem')
    const again = await start('mem', { memoryMb: 640, configFile: false })
    expect(again.logs.filter((l) => /snapshot/i.test(l))).toEqual([])
    expect(again.emulator.origin).toBe('snapshot')
    await again.emulator.release()
    await stopInstance('mem')
  })

  it('truncated state file: clear message, cold boot, recaptured and usable again', async () => {
    fs.truncateSync(snapshotFile('state', 640), 1000)
    const { emulator, logs } = await start('corrupt', { memoryMb: 640, configFile: false })
    expect(logs.filter((l) => /snapshot/i.test(l))).toEqual([expect.stringMatching(/device state file is 1000 bytes.*truncated/), capturing])
    expect((await http(`${emulator.backendUrl}/health?db=1`)).status).toBe(200)
    await emulator.release()
    await stopInstance('corrupt')
    const again = await start('corrupt', { memoryMb: 640, configFile: false })
    expect(again.emulator.origin).toBe('snapshot')
    await again.emulator.release()
    await stopInstance('corrupt')
  })

  it('RAM file of the right size but wiped: restore fails, the digest proves it bad, dropped, cold boot', async () => {
    const ram = snapshotFile('ram', 640)
    const size = fs.statSync(ram).size
    fs.truncateSync(ram, 0) // every guest page now reads as zeros, the size check still passes
    fs.truncateSync(ram, size)
    const { emulator, logs } = await start('corrupt', { memoryMb: 640, bootTimeoutMs: 180_000, configFile: false })
    expect(logs.filter((l) => /Restoring the ready snapshot failed/.test(l))).toEqual([
      expect.stringMatching(/RAM file is corrupt \(digest mismatch\): dropping it/),
    ])
    expect(emulator.origin).toBe('cold-boot')
    expect((await http(`${emulator.backendUrl}/health?db=1`)).status).toBe(200)
    await emulator.release()
    await stopInstance('corrupt')
    expect(processesMentioning(path.join(home, 'state', 'corrupt'))).toEqual([])
    expect(() => snapshotFile('ram', 640)).toThrow(/no snapshot for 640/)
  })
})

describe('a capture QEMU refused', () => {
  it('is remembered: later starts cold-boot at once saying why, doctor shows it, and image prune clears it', async () => {
    const slot = path.dirname(snapshotFile('state', 512))
    fs.renameSync(slot, `${slot}.aside`) // as if its capture had never succeeded
    try {
      fs.writeFileSync(
        `${slot}.refused.json`,
        JSON.stringify({ reason: 'Migration is disabled when VirtFS export path is mounted', at: new Date().toISOString() }),
      )
      const before = slots()
      const { emulator, logs } = await start('refused', { configFile: false })
      expect(emulator.origin).toBe('cold-boot')
      expect(logs.filter((l) => /snapshot/i.test(l))).toEqual([
        expect.stringMatching(/Cold booting: a capture of the ready snapshot was refused on .*VirtFS export path is mounted/),
      ])
      expect(slots()).toEqual(before) // no capture was tried
      expect((await cli(['status', '--name', 'refused'])).stdout).toMatch(/Note: cold-booted: a capture of the ready snapshot was refused .*VirtFS/)
      await emulator.release()
      await stopInstance('refused')
      expect((await cli(['doctor'])).stdout).toMatch(/cold-boot: its ready snapshot's capture was refused .*VirtFS[\s\S]*image prune/)
      expect((await cli(['image', 'prune'])).exitCode).toBe(0)
      expect(fs.existsSync(`${slot}.refused.json`)).toBe(false)
    } finally {
      fs.renameSync(`${slot}.aside`, slot)
    }
  })
})

describe('guest clock', () => {
  it('is within 2 s of the host after a restore made long after the capture', async () => {
    const { emulator } = await start('clock')
    const capturedAt = Date.parse(JSON.parse(fs.readFileSync(snapshotFile('snapshot.json'), 'utf8')).capturedAt)
    await new Promise((r) => setTimeout(r, Math.max(0, capturedAt + 8000 - Date.now())))
    await emulator.reset()
    const staleBy = Date.now() - capturedAt
    expect(staleBy).toBeGreaterThan(5000) // without the sync the guest would be this far behind
    const guest = (await http(`${emulator.backendUrl}/api/v1/internal/emulator/info`)).json.epoch_ms
    expect(Math.abs(guest - Date.now())).toBeLessThan(2000)
    // The fixture has no hwclock, as the real guest: the agent's guest-set-time is refused, `date` sets it.
    // A signed-in SDK call works, and the token the guest minted for it is dated by the host's clock.
    const app = new StackClientApp({
      tokenStore: 'memory',
      baseUrl: emulator.backendUrl,
      projectId: emulator.credentials!.projectId,
      publishableClientKey: emulator.credentials!.publishableClientKey,
    })
    const email = `clock-${Date.now()}@example.com`
    expect(
      (await app.signUpWithCredential({ email, password: 'correct horse battery', noRedirect: true, verificationCallbackUrl: 'http://localhost:3107/verify' }))
        .status,
    ).toBe('ok')
    const user = await app.getUser({ or: 'throw' })
    expect(user.primaryEmail).toBe(email)
    const { accessToken } = await user.getAuthJson()
    const issuedAt = JSON.parse(Buffer.from(accessToken!.split('.')[1]!, 'base64url').toString()).iat * 1000
    expect(Math.abs(issuedAt - Date.now())).toBeLessThan(5000)
    await emulator.release()
    await stopInstance('clock')
  })
})

describe('a reset whose restore fails', () => {
  // Last in the file: it garbles the default-size snapshot every test above restores from (a slot
  // of its own would cost a cold boot and capture, and the capture is not what it tests).
  it('falls back to a cold boot and keeps serving the suite', async () => {
    const { emulator, logs } = await start('fallback', { configFile: false })
    expect(emulator.origin).toBe('snapshot')
    const state = snapshotFile('state')
    const bytes = fs.readFileSync(state)
    bytes.fill(0x5a, 1000, 200_000) // same size, garbled device state
    fs.writeFileSync(state, bytes)
    await emulator.reset({ force: true })
    expect(emulator.origin).toBe('cold-boot')
    expect(logs.filter((l) => /Restoring the ready snapshot failed/.test(l))).toEqual([expect.stringMatching(/device state file is corrupt.*dropping it/)])
    expect((await http(`${emulator.backendUrl}/health?db=1`)).status).toBe(200)
    await emulator.release()
    await stopInstance('fallback')
  })
})
