/**
 * The supervisor with a fake driver: leases, the isolation policy, the reset queue, keepAlive,
 * and failures, over its real unix socket, as clients talk to it.
 */
import fs from 'node:fs'
import http from 'node:http'
import type net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { SupervisorConnection } from '../../src/client/connection.js'
import { ResetNotDone, type RunningInstance } from '../../src/drivers/types.js'
import { StackEmulatorError } from '../../src/errors.js'
import { ensureInstanceDir, instancePaths } from '../../src/instance/paths.js'
import { pollUntil } from '../../src/poll.js'
import { readSettings } from '../../src/settings.js'
import { Supervisor } from '../../src/supervisor/supervisor.js'
import type { SeededSnapshotRequest } from '../../src/supervisor/protocol.js'
import { sha256 } from '../../src/digest.js'
import { seededSnapshotSlot } from '../../src/supervisor/seeded-snapshot-policy.js'

class FakeVm implements RunningInstance {
  driver = 'qemu' as const
  id = '4242'
  accel = 'tcg'
  capabilities = { snapshots: true, reset: true, clock: false, lifecycle: true }
  origin = 'snapshot' as const
  urls = { backend: 'http://127.0.0.1:1' }
  startupPhases = { restore: 1 }
  died = new Promise<string>(() => {})
  resets = 0
  resetting = 0
  mostResettingAtOnce = 0
  stopped = 0
  failReset = false
  diskFull = false
  async reset() {
    this.resets++
    this.mostResettingAtOnce = Math.max(this.mostResettingAtOnce, ++this.resetting)
    await new Promise((r) => setTimeout(r, 30))
    this.resetting--
    if (this.failReset) throw new StackEmulatorError('restore failed and so did the cold boot', { code: 'BOOT_FAILED' })
    return { durationMs: 30, origin: this.origin }
  }
  async stop() {
    this.stopped++
  }
  problem() {
    return this.diskFull ? new StackEmulatorError('The VM is paused: no space left', { code: 'DISK_FULL', fix: 'Free some space.' }) : undefined
  }
}

const running: { supervisor: Supervisor; connections: SupervisorConnection[] }[] = []
const closers: (() => void)[] = []
afterEach(async () => {
  for (const close of closers.splice(0)) close()
  for (const r of running.splice(0)) {
    r.connections.forEach((c) => c.close())
    await r.supervisor.shutdown('test over')
  }
})

async function start(vm: RunningInstance | Error = new FakeVm(), credentials?: { service: string; path: string }) {
  const paths = instancePaths(fs.mkdtempSync(path.join(os.tmpdir(), 'se-sup-')), 'fake')
  await ensureInstanceDir(paths)
  const config = {
    paths,
    manifestPath: '',
    settings: readSettings(),
    driver: { kind: 'qemu' as const, ports: {}, memoryMb: 512, snapshot: true, fresh: false, bootTimeoutMs: 1000 },
  }
  let exited = 0
  const supervisor = new Supervisor(
    config,
    { name: 'img', fingerprint: 'f', credentials },
    async () => {
      if (vm instanceof Error) throw vm
      return vm
    },
    () => exited++,
  )
  await supervisor.listen()
  const entry = { supervisor, connections: [] as SupervisorConnection[] }
  running.push(entry)
  const client = async (lease = true) => {
    const connection = await SupervisorConnection.connect(paths.socket)
    entry.connections.push(connection)
    await connection.request({ op: 'hello', lease, client: { pid: process.pid, command: 'test' } })
    return connection
  }
  const acquire = (connection: SupervisorConnection, isolation: 'suite' | 'exclusive' | 'none' = 'suite', keepAlive = false, idleTimeoutMs = 0) =>
    connection.request<{ reset: boolean }>({ op: 'acquire', isolation, keepAlive, idleTimeoutMs })
  return { paths, supervisor, client, acquire, exited: () => exited }
}

const until = async (check: () => boolean, ms = 2000) => (await pollUntil(check, { timeoutMs: ms, intervalMs: 5 })) ?? false

describe('supervisor', () => {
  it('shares the VM between overlapping suites, and the last release stops it', async () => {
    const vm = new FakeVm()
    const s = await start(vm)
    const [a, b] = [await s.client(), await s.client()]
    const first = await s.acquire(a)
    expect(first).toMatchObject({ reset: false, driver: 'qemu', id: '4242' })
    expect(first).not.toHaveProperty('pid') // the driver and its id say what runs (issue 14)
    expect(await s.acquire(b)).toMatchObject({ reset: false })
    a.close()
    await new Promise((r) => setTimeout(r, 50))
    expect(vm.stopped).toBe(0)
    b.close()
    expect(await until(() => vm.stopped === 1 && s.exited() === 1)).toBe(true)
    expect(fs.existsSync(s.paths.state)).toBe(false)
  })

  it('resets for a suite that comes after another, under keepAlive, then stops when idle', async () => {
    const vm = new FakeVm()
    const s = await start(vm)
    const a = await s.client()
    await s.acquire(a, 'suite', true, 200)
    a.close()
    await new Promise((r) => setTimeout(r, 50))
    const b = await s.client()
    expect(await s.acquire(b, 'suite', true, 200)).toMatchObject({ reset: true })
    expect(vm.resets).toBe(1)
    b.close()
    expect(await until(() => vm.stopped === 1, 1000)).toBe(true)
  })

  it('refuses a reset while another suite holds the VM unless forced, and never runs two at once', async () => {
    const vm = new FakeVm()
    const s = await start(vm)
    const [a, b] = [await s.client(), await s.client()]
    await s.acquire(a)
    await s.acquire(b)
    await expect(a.request({ op: 'reset', force: false })).rejects.toMatchObject({ code: 'RESET_REFUSED' })
    await Promise.all([a.request({ op: 'reset', force: true }), b.request({ op: 'reset', force: true })])
    expect(vm.resets).toBe(2)
    expect(vm.mostResettingAtOnce).toBe(1)
  })

  it('under exclusive isolation, a second suite waits for the first and gets a reset VM', async () => {
    const s = await start()
    const [a, b] = [await s.client(), await s.client()]
    await s.acquire(a, 'exclusive')
    let second: { reset: boolean } | undefined
    void s.acquire(b, 'exclusive').then((r) => (second = r))
    await new Promise((r) => setTimeout(r, 100))
    expect(second).toBeUndefined()
    a.close()
    expect(await until(() => second !== undefined)).toBe(true)
    expect(second!.reset).toBe(true)
  })

  it('hands a VM start failure to the waiting suite, with its code and fix, then goes away', async () => {
    const s = await start(new StackEmulatorError('No space left in /x', { code: 'DISK_FULL', fix: 'Free some space.' }))
    const a = await s.client()
    await expect(s.acquire(a)).rejects.toMatchObject({ code: 'DISK_FULL', fix: 'Free some space.' })
    expect(await until(() => s.exited() === 1)).toBe(true)
  })

  it('refuses to hand out a VM that a full disk paused, naming the problem', async () => {
    const vm = new FakeVm()
    vm.diskFull = true
    const s = await start(vm)
    await expect(s.acquire(await s.client())).rejects.toMatchObject({ code: 'DISK_FULL' })
    const status = await (await s.client(false)).request<{ problem?: string }>({ op: 'status' })
    expect(status.problem).toMatch(/no space left/)
  })

  it('a reset that fails for good stops the VM and tells its suites why', async () => {
    const vm = new FakeVm()
    vm.failReset = true
    const s = await start(vm)
    const a = await s.client()
    await s.acquire(a)
    const lost = new Promise<string>((resolve) => a.on('event', (e) => e.event === 'stopped' && resolve(e.reason)))
    await expect(a.request({ op: 'reset', force: false })).rejects.toMatchObject({ code: 'BOOT_FAILED' })
    expect(await lost).toMatch(/the reset failed \(restore failed and so did the cold boot/)
    expect(await until(() => vm.stopped === 1)).toBe(true)
  })

  it('a reset the driver did not do and left serving (a host port taken) fails alone: the VM and its suites stay', async () => {
    const vm = new FakeVm()
    vm.reset = async () => {
      throw new ResetNotDone('The reset was not done: Host port 1 (backend) was taken by pid 7 (squat)', { code: 'PORT_BUSY' })
    }
    const s = await start(vm)
    const a = await s.client()
    await s.acquire(a)
    await expect(a.request({ op: 'reset', force: false })).rejects.toMatchObject({ code: 'PORT_BUSY', message: expect.stringMatching(/pid 7/) })
    const status = await a.request<{ state: string }>({ op: 'status' })
    expect(status.state).toBe('ready')
    expect(vm.stopped).toBe(0)
    expect(s.exited()).toBe(0)
  })

  it('a VM that died: its suites hear why, and what they ask meanwhile says so and promises no retry', async () => {
    const vm = new FakeVm()
    let die!: (reason: string) => void
    vm.died = new Promise<string>((resolve) => (die = resolve))
    const s = await start(vm)
    const a = await s.client()
    await s.acquire(a)
    const lost = new Promise<string>((resolve) => a.on('event', (e) => e.event === 'stopped' && resolve(e.reason)))
    die('QEMU (pid 4242) was killed by SIGKILL from another process')
    expect(await lost).toMatch(/killed by SIGKILL from another process; the next acquire starts a new VM/)
    for (const op of ['reset', 'credentials'] as const) {
      const refused = await a.request(op === 'reset' ? { op, force: true } : { op, configFile: '/x' }).then(
        () => undefined,
        (error: Error) => error,
      )
      expect(refused?.message).toMatch(/killed by SIGKILL/)
      expect(refused?.message).not.toMatch(/Retry/)
    }
  })

  it('mints credentials once per config file for every suite, and again after a reset', async () => {
    let mints = 0
    const route = http.createServer((req, res) => {
      mints++
      req.resume()
      req.on('end', () =>
        setTimeout(
          () =>
            res.end(
              JSON.stringify({
                project_id: `p${mints}`,
                publishable_client_key: 'pck',
                secret_server_key: 'ssk',
                super_secret_admin_key: 'sak',
              }),
            ),
          50,
        ),
      )
    })
    await new Promise<void>((resolve) => route.listen(0, '127.0.0.1', resolve))
    const vm = new FakeVm()
    vm.urls = { backend: `http://127.0.0.1:${(route.address() as net.AddressInfo).port}` }
    const s = await start(vm, { service: 'backend', path: '/api/v1/internal/local-emulator/project' })
    const clients = await Promise.all(Array.from({ length: 5 }, () => s.client()))
    await Promise.all(clients.map((c) => s.acquire(c)))
    const ask = (c: SupervisorConnection, configFile = '/app/stack.config.ts') => c.request<{ projectId: string }>({ op: 'credentials', configFile })
    const first = await Promise.all(clients.map((c) => ask(c)))
    expect(new Set(first.map((c) => c.projectId))).toEqual(new Set(['p1']))
    expect(mints).toBe(1)
    expect((await ask(clients[0]!, '/other/stack.config.ts')).projectId).toBe('p2')
    await clients[0]!.request({ op: 'reset', force: true })
    expect((await ask(clients[1]!)).projectId).toBe('p3')
    route.close()
  })

  it('mints a fresh project per ask, each for a copy of its own, never cached; a reset drops them and says so', async () => {
    const bodies: string[] = []
    const route = http.createServer((req, res) => {
      let body = ''
      req.on('data', (c: Buffer) => (body += c))
      req.on('end', () => {
        bodies.push(JSON.parse(body).absolute_file_path)
        res.end(JSON.stringify({ project_id: `p${bodies.length}`, publishable_client_key: 'pck', secret_server_key: 'ssk', super_secret_admin_key: 'sak' }))
      })
    })
    await new Promise<void>((resolve) => route.listen(0, '127.0.0.1', resolve))
    closers.push(() => route.close())
    const vm = new FakeVm()
    vm.urls = { backend: `http://127.0.0.1:${(route.address() as net.AddressInfo).port}` }
    const s = await start(vm, { service: 'backend', path: '/api/v1/internal/local-emulator/project' })
    const app = path.join(s.paths.dir, '..', 'stack.config.ts')
    fs.writeFileSync(app, 'export const config = {}\n')
    const [a, b] = await Promise.all([s.client(), s.client()])
    await Promise.all([s.acquire(a!), s.acquire(b!)])
    const events: unknown[] = []
    b!.on('event', (e) => events.push(e))
    type Minted = { projectId: string; configFile: string; displayName: string; generation: number }
    const minted = await Promise.all([a, b, a, b].map((c) => c!.request<Minted>({ op: 'project', configFile: app })))
    expect(new Set(minted.map((m) => m.projectId)).size).toBe(4)
    expect(new Set(minted.map((m) => m.configFile)).size).toBe(4)
    expect(bodies.sort()).toEqual(minted.map((m) => m.configFile).sort()) // the route got the copies, not the app's file
    for (const m of minted) {
      expect(path.dirname(m.configFile)).toBe(path.join(s.paths.dir, 'projects', String(m.generation)))
      expect(fs.readFileSync(m.configFile, 'utf8')).toBe('export const config = {}\n')
      expect(m.displayName).toBe(`Local Emulator: ${path.basename(m.configFile)}`)
    }
    await a!.request({ op: 'reset', force: true })
    expect(await until(() => events.some((e) => (e as { event: string }).event === 'generation'))).toBe(true)
    expect(await until(() => !fs.existsSync(minted[0]!.configFile))).toBe(true)
    const after = await a!.request<Minted>({ op: 'project', configFile: app })
    expect(after.generation).toBeGreaterThan(minted[0]!.generation)
  })

  it('refuses a project per test on an image without the credential route, naming the ways out', async () => {
    const s = await start(new FakeVm())
    const c = await s.client()
    await s.acquire(c)
    await expect(c.request({ op: 'project', configFile: '/app/stack.config.ts' })).rejects.toMatchObject({
      code: 'CREDENTIALS',
      message: expect.stringContaining("isolation 'worker'"),
    })
  })

  it('a driver that cannot reset refuses with its own error, keeps serving, and shares without resets', async () => {
    const vm = new FakeVm()
    vm.capabilities = { ...vm.capabilities, reset: false, lifecycle: false }
    vm.reset = async () => {
      throw new StackEmulatorError('The external emulator cannot be reset from here', { code: 'RESET_UNSUPPORTED' })
    }
    const s = await start(vm)
    const a = await s.client()
    await s.acquire(a, 'suite', true, 0)
    await expect(a.request({ op: 'reset', force: true })).rejects.toMatchObject({ code: 'RESET_UNSUPPORTED' })
    a.close()
    await new Promise((r) => setTimeout(r, 50))
    const b = await s.client()
    expect(await s.acquire(b, 'suite', true, 0)).toMatchObject({ reset: false, driver: 'qemu' })
    expect(vm.stopped).toBe(0)
  })

  it('a client that leaves mid-acquire neither holds the VM nor keeps it alive for the others', async () => {
    const vm = new FakeVm()
    const s = await start(vm)
    const a = await s.client()
    await s.acquire(a)
    const resetting = a.request({ op: 'reset', force: true }) // b's acquire queues behind it
    const b = await s.client()
    void s.acquire(b, 'suite', true, 0).catch(() => {})
    await new Promise((r) => setTimeout(r, 5))
    b.close()
    await resetting
    a.close()
    expect(await until(() => vm.stopped === 1 && s.exited() === 1)).toBe(true)
  })

  it('answers a second hello on one connection without opening a second lease', async () => {
    const s = await start()
    const a = await s.client()
    await a.request({ op: 'hello', lease: true, client: { pid: 1, command: 'again' } })
    const status = await (await s.client(false)).request<{ leases: unknown[] }>({ op: 'status' })
    expect(status.leases).toHaveLength(1)
  })

  /** A supervisor over a fake VM with seeded snapshots (kept in `saved`) and a fake credential route. */
  async function seeded() {
    let mints = 0
    const route = http.createServer((req, res) => {
      mints++
      req.resume()
      req.on('end', () =>
        res.end(JSON.stringify({ project_id: `p${mints}`, publishable_client_key: 'pck', secret_server_key: 'ssk', super_secret_admin_key: 'sak' })),
      )
    })
    await new Promise<void>((resolve) => route.listen(0, '127.0.0.1', resolve))
    closers.push(() => route.close())
    const saved = new Map<string, unknown>()
    const vm = new FakeVm()
    vm.urls = { backend: `http://127.0.0.1:${(route.address() as net.AddressInfo).port}` }
    let opens = 0
    let failSave: Error | undefined
    let staged = ''
    const seededSnapshots = {
      current: undefined as { slot: string; meta: unknown } | undefined,
      async open(slot: string, check: (meta: unknown) => string | undefined, stage: boolean) {
        opens++
        staged = slot
        const meta = saved.get(slot)
        if (meta !== undefined && !check(meta)) return { opened: 'restored' as const, meta: ((seededSnapshots.current = { slot, meta }), meta) }
        return { opened: stage ? ('seeding' as const) : ('missing' as const), reason: meta === undefined ? 'none was taken yet' : check(meta)! }
      },
      async save(meta: unknown) {
        await new Promise((r) => setTimeout(r, 50))
        if (failSave) throw failSave
        saved.set(staged, meta)
        seededSnapshots.current = { slot: staged, meta }
      },
    }
    ;(vm as { seededSnapshots?: unknown }).seededSnapshots = seededSnapshots
    const s = await start(vm, { service: 'backend', path: '/api/v1/internal/local-emulator/project' })
    const configFile = path.join(s.paths.dir, 'stack.config.ts')
    fs.writeFileSync(configFile, 'export const config = {}\n')
    const request: SeededSnapshotRequest = { configFile, configDigest: 'd1', seedId: 'v1', seedFrom: 'self', seedTimeoutMs: 60_000 }
    return {
      s,
      vm,
      configFile,
      seededSnapshots,
      request,
      saved: () => saved.get(seededSnapshotSlot(configFile)),
      mints: () => mints,
      opens: () => opens,
      failSaveWith: (error: Error) => (failSave = error),
      acquire: (c: SupervisorConnection, overrides: Partial<SeededSnapshotRequest> = {}) =>
        c.request<{ seeding?: boolean; lease: number }>({
          op: 'acquire',
          isolation: 'suite',
          keepAlive: true,
          idleTimeoutMs: 0,
          seededSnapshot: { ...request, ...overrides },
        }),
      ask: (c: SupervisorConnection) => c.request<{ projectId: string }>({ op: 'credentials', configFile }),
    }
  }

  it('seeded snapshots: one lease seeds while the others wait, then resets and later suites keep its keys without a mint', async () => {
    const t = await seeded()
    const seeder = await t.s.client()
    const first = await t.acquire(seeder)
    expect(first.seeding).toBe(true)
    // A second suite asks while the first seeds: it waits until the seeded snapshot is saved.
    const other = await t.s.client()
    let otherDone = false
    const second = t.acquire(other).then((r) => ((otherDone = true), r))
    await new Promise((r) => setTimeout(r, 50))
    expect(otherDone).toBe(false)
    expect((await t.ask(seeder)).projectId).toBe('p1')
    await expect(other.request({ op: 'saveSeededSnapshot' })).rejects.toMatchObject({ code: 'PROTOCOL' })
    await seeder.request({ op: 'saveSeededSnapshot' })
    expect(await second).toMatchObject({ seeding: false })
    expect(t.saved()).toMatchObject({
      configFile: t.configFile,
      seedId: 'v1',
      configDigests: ['d1', expect.stringMatching(/^[0-9a-f]{64}$/)],
      credentials: { projectId: 'p1' },
    })
    // Resets return to the seeded snapshot: the same keys, no new mint; a worker resets on behalf of its run's lease.
    await seeder.request({ op: 'reset', force: true })
    expect((await t.ask(other)).projectId).toBe('p1')
    other.close()
    const worker = await t.s.client(false)
    await worker.request({ op: 'reset', force: false, lease: first.lease })
    expect((await t.ask(seeder)).projectId).toBe('p1')
    expect(t.mints()).toBe(1)
  })

  it('a client without a config file waits for a seed in progress, unbounded, and gets the VM once it is saved', async () => {
    const t = await seeded()
    const seeder = await t.s.client()
    await t.acquire(seeder)
    const plain = await t.s.client()
    let done = false
    const got = plain.request<{ seeding?: boolean }>({ op: 'acquire', isolation: 'suite', keepAlive: false, idleTimeoutMs: 0 }).then((r) => ((done = true), r))
    await new Promise((r) => setTimeout(r, 100))
    expect(done).toBe(false)
    await t.ask(seeder)
    await seeder.request({ op: 'saveSeededSnapshot' })
    expect(await got).toMatchObject({ seeding: false })
  })

  it('a suite with another seed never gets the VM that others hold: it waits, saying for whom, then fails naming both seeds', async () => {
    const t = await seeded()
    const holder = await t.s.client()
    await t.acquire(holder)
    await t.ask(holder)
    await holder.request({ op: 'saveSeededSnapshot' })
    const other = await t.s.client()
    const progress: string[] = []
    other.on('event', (e) => e.event === 'progress' && progress.push(e.phase))
    const error = await t.acquire(other, { seedId: 'v2', seedTimeoutMs: 1000 }).catch((e: StackEmulatorError) => e)
    expect(error).toMatchObject({
      code: 'SEED_CONFLICT',
      message: expect.stringMatching(/cannot serve this suite \(seed v2 for .*\): it waited 1 s for 1 other suite\(s\) \(pids \d+\) holding it with seed v1/),
    })
    expect(String((error as StackEmulatorError).fix)).toMatch(/own instance.*seedVersion/)
    expect(progress).toEqual([expect.stringMatching(/^waiting for 1 other suite\(s\) .* holding it with seed v1 for .* \(up to 1 s\)$/)])
    // Once the holder is gone, the same request gets its own seeded snapshot.
    const waiting = t.acquire(other, { seedId: 'v2' })
    holder.close()
    expect(await waiting).toMatchObject({ seeding: true })
  })

  it('a suite without a seed uses the seeded snapshot (held or not) and never replaces it', async () => {
    const t = await seeded()
    const seeder = await t.s.client()
    await t.acquire(seeder)
    await t.ask(seeder)
    await seeder.request({ op: 'saveSeededSnapshot' })
    const plain = await t.s.client()
    expect(await t.acquire(plain, { seedId: '' })).toMatchObject({ seeding: false })
    expect((await t.ask(plain)).projectId).toBe('p1')
    seeder.close()
    plain.close()
    await new Promise((r) => setTimeout(r, 50))
    const later = await t.s.client()
    expect(await t.acquire(later, { seedId: '' })).toMatchObject({ seeding: false })
    expect(t.saved()).toMatchObject({ seedId: 'v1' })
    expect(t.mints()).toBe(1)
  })

  it("a client whose seed comes later (Playwright's webServer) serves the staged VM; the suite with the seed takes the snapshot from it, same keys", async () => {
    const t = await seeded()
    const app = await t.s.client()
    expect(await t.acquire(app, { seedFrom: 'later' })).toMatchObject({ seeding: false })
    expect((await t.ask(app)).projectId).toBe('p1')
    const suite = await t.s.client()
    expect(await t.acquire(suite)).toMatchObject({ seeding: true })
    expect(t.opens()).toBe(1) // the app's VM, not restarted for the suite
    expect((await t.ask(suite)).projectId).toBe('p1')
    await suite.request({ op: 'saveSeededSnapshot' })
    expect(t.saved()).toMatchObject({ seedId: 'v1', credentials: { projectId: 'p1' } })
  })

  it("a test worker's VM without the run's seeded snapshot fails, saying so; it never runs without the seed", async () => {
    const t = await seeded()
    const worker = await t.s.client()
    await expect(t.acquire(worker, { seedFrom: 'none' })).rejects.toMatchObject({
      code: 'SEED_MISSING',
      message: expect.stringMatching(/No seeded snapshot of .* with seed v1: none was taken yet/),
    })
  })

  it('a seed that runs past its bound frees the others, who fail saying whom they waited for', async () => {
    const t = await seeded()
    const seeder = await t.s.client()
    expect(await t.acquire(seeder)).toMatchObject({ seeding: true })
    const other = await t.s.client()
    await expect(t.acquire(other, { seedTimeoutMs: 1000 })).rejects.toMatchObject({
      code: 'SEED_TIMEOUT',
      message: expect.stringMatching(/waited 1 s for pid \d+ to take the seeded snapshot of .* \(seed v1\)/),
    })
  })

  it("a failed save is the seeder's error, and the VM is reset before it serves a seeded suite", async () => {
    const t = await seeded()
    const seeder = await t.s.client()
    await t.acquire(seeder)
    await t.ask(seeder)
    t.failSaveWith(new StackEmulatorError('No space left in /cache/snapshots', { code: 'DISK_FULL' }))
    await expect(seeder.request({ op: 'saveSeededSnapshot' })).rejects.toMatchObject({
      code: 'DISK_FULL',
      message: expect.stringMatching(/^No space left in \/cache\/snapshots/),
    })
    seeder.close()
    await new Promise((r) => setTimeout(r, 50))
    const resetsBefore = t.vm.resets
    const next = await t.s.client()
    expect(await t.acquire(next)).toMatchObject({ seeding: true })
    expect(t.vm.resets).toBe(resetsBefore + 1)
  })

  it('records the config file as minted, not as edited while the seed ran', async () => {
    const t = await seeded()
    const seeder = await t.s.client()
    await t.acquire(seeder)
    await t.ask(seeder)
    const minted = sha256(fs.readFileSync(t.configFile))
    fs.writeFileSync(t.configFile, 'export const config = { edited: true }\n')
    await seeder.request({ op: 'saveSeededSnapshot' })
    expect((t.saved() as { configDigests: string[] }).configDigests).toEqual(['d1', minted])
  })

  it('a seeder that goes away while its VM restarts leaves nobody waiting: the next suite seeds', async () => {
    const vm = new FakeVm()
    ;(vm as { seededSnapshots?: unknown }).seededSnapshots = {
      current: undefined,
      async open(_slot: string, _check: unknown, stage: boolean) {
        await new Promise((r) => setTimeout(r, 100)) // the restart
        return { opened: stage ? 'seeding' : 'missing', reason: 'none was taken yet' }
      },
      async save() {},
    }
    const s = await start(vm)
    const seededSnapshot: SeededSnapshotRequest = { configFile: '/app/stack.config.ts', configDigest: 'd', seedId: '', seedFrom: 'self', seedTimeoutMs: 60_000 }
    const acquire = (c: SupervisorConnection) =>
      c.request<{ seeding?: boolean }>({ op: 'acquire', isolation: 'suite', keepAlive: false, idleTimeoutMs: 0, seededSnapshot })
    const a = await s.client()
    void acquire(a).catch(() => {})
    await new Promise((r) => setTimeout(r, 30))
    const b = await s.client()
    const second = acquire(b)
    a.close() // during the restart, before the gate is set
    expect(await second).toMatchObject({ seeding: true })
  })
})
