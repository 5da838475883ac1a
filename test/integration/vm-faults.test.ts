/**
 * Faults under a serving VM that must not stop it, or, where the VM itself is gone, must say why
 * and let the next acquire start a new one (issue 22, item 5): the instance folder removed, a
 * fixed host port taken during a reset, QEMU killed or OOM-killed. Real QEMU, real processes; the
 * out-of-memory kill is the kernel's own, in a memory cgroup (the tier runs as root, as CI does).
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { acquire } from '../../src/client/acquire.js'
import { instanceStatus, stopInstance } from '../../src/client/control.js'
import { cli, eventually, http, instanceNames, leftoversUnder, root, spawnAcquirer, supervisorProcesses, useTempHome } from '../helpers.js'

const home = useTempHome()
const stateDir = (name: string) => path.join(home, 'state', name)
const cgroups: string[] = []

// The ready snapshot is captured here when the shared cache lacks it (a minute or more under TCG), not in a test's time.
beforeAll(async () => {
  const started = await cli(['start', '--name', 'warm', '--json'])
  if (started.exitCode !== 0) throw new Error(`starting the warm-up instance failed: ${started.stderr}`)
  await cli(['stop', '--name', 'warm'])
})

// What the supervisors said, when a test failed.
afterEach(({ task }) => {
  if (task.result?.state !== 'fail') return
  for (const name of instanceNames(home)) {
    const log = path.join(stateDir(name), 'supervisor.log')
    if (fs.existsSync(log)) process.stderr.write(`--- ${log}\n${fs.readFileSync(log, 'utf8').split('\n').slice(-30).join('\n')}\n`)
  }
})

afterAll(async () => {
  for (const name of instanceNames(home)) await stopInstance(name).catch(() => {})
  for (const dir of cgroups) fs.rmdirSync(dir)
  expect(await leftoversUnder(home)).toEqual([])
})

describe('the instance folder removed under a running VM', () => {
  it('the next resets re-create what they need and work; the same supervisor serves on', async () => {
    const a = spawnAcquirer({ name: 'rmdir' })
    const first = await a.next()
    expect(first.error).toBeUndefined()
    const supervisor = supervisorProcesses(stateDir('rmdir'))
    fs.rmSync(stateDir('rmdir'), { recursive: true, force: true })
    // The first reset restores the plain way (no spare yet), the second swaps in the spare made after it.
    for (const round of [1, 2]) {
      a.send(`write:before${round}@example.com`)
      expect((await a.next()).wrote, `round ${round}`).toBe(201)
      a.send('reset')
      const reset = await a.next()
      expect(reset.error, `round ${round}`).toBeUndefined()
      expect(reset.origin).toBe('snapshot')
      a.send('list') // with the credentials minted again, through the share made again
      expect((await a.next()).users, `round ${round}`).toEqual([])
    }
    expect(supervisorProcesses(stateDir('rmdir'))).toEqual(supervisor)
    for (const file of ['runtime.iso', 'share', 'state.json', 'supervisor.sock']) expect(fs.existsSync(path.join(stateDir('rmdir'), file)), file).toBe(true)
    a.send('release')
    await a.child
    expect(await leftoversUnder(stateDir('rmdir'), 10_000)).toEqual([])
  })
})

describe('a fixed host port taken during a reset', () => {
  it('the reset fails with PORT_BUSY naming the port and its holder, the VM serves on with its data, and takes the port back once free', async () => {
    const port = await freePort()
    const a = spawnAcquirer({ name: 'portgrab', ports: { dashboard: port } })
    const first = await a.next()
    expect(first.error).toBeUndefined()
    expect(first.urls.dashboard).toBe(`http://127.0.0.1:${port}`)
    // It takes the port the moment the VM lets go of it.
    const squatter = execa(process.execPath, [path.join(root, 'test/programs/port-squatter.mjs'), String(port)], { reject: false })
    let failed: { error: string; code: string } | undefined
    // A reset the VM wins (it never lets go for long) is fine; the squatter wins one within a few.
    for (let round = 0; round < 6 && !failed; round++) {
      a.send(`write:kept${round}@example.com`)
      expect((await a.next()).wrote).toBe(201)
      a.send('reset')
      const reset = await a.next()
      expect(reset.lost, `round ${round}: the instance stopped`).toBeUndefined()
      if (reset.error) {
        failed = reset
        a.send('list')
        expect((await a.next()).users, 'the VM serves on, on its old state').toEqual([`kept${round}@example.com`])
      } else {
        expect((await http(`${first.urls.dashboard}/handler/sign-in`)).status).toBe(200)
      }
    }
    expect(failed, 'the squatter never took the port').toBeDefined()
    expect(failed!.code).toBe('PORT_BUSY')
    expect(failed!.error).toMatch(new RegExp(`[Hh]ost port ${port} \\(dashboard\\).*pid ${squatter.pid}`))
    const status = (await instanceStatus('portgrab'))!
    expect(status.state).toBe('ready')
    expect(status.problem).toMatch(new RegExp(`port ${port}.*pid ${squatter.pid}`))
    squatter.kill('SIGKILL')
    await squatter
    // Free again: the VM takes it back by itself, and resets work as before.
    expect(await eventually(async () => !(await instanceStatus('portgrab'))?.problem, 10_000, 200)).toBe(true)
    expect((await http(`${first.urls.dashboard}/handler/sign-in`)).status).toBe(200)
    a.send('reset')
    expect((await a.next()).error).toBeUndefined()
    expect((await http(`${first.urls.dashboard}/handler/sign-in`)).status).toBe(200)
    a.send('release')
    await a.child
  })
})

describe('a VM killed under its suite', () => {
  it('killed by another process: the lease is lost naming SIGKILL, no retry is promised, and the next acquire starts a new VM', async () => {
    const holder = await acquire({ name: 'killed', onLog: () => {} })
    const qemuPid = Number(holder.id)
    process.kill(qemuPid, 'SIGKILL')
    const reason = await holder.lost
    expect(reason).toMatch(new RegExp(`QEMU \\(pid ${qemuPid}\\) was killed by SIGKILL.*another process`))
    expect(reason).toMatch(/the next acquire starts a new VM/)
    const refused = await holder.reset().then(
      () => undefined,
      (error: Error) => error,
    )
    expect(refused?.message).toMatch(/killed by SIGKILL/)
    expect(refused?.message).not.toMatch(/Retry/)
    expect(await eventually(() => supervisorProcesses(stateDir('killed')).length === 0, 10_000)).toBe(true)
    expect(fs.readFileSync(path.join(stateDir('killed'), 'supervisor.log'), 'utf8')).toMatch(
      new RegExp(`stopping: QEMU \\(pid ${qemuPid}\\) was killed by SIGKILL`),
    )
    const next = await acquire({ name: 'killed', onLog: () => {} })
    expect(Number(next.id)).not.toBe(qemuPid)
    expect(next.startup.startedVm).toBe(true)
    expect((await http(`${next.backendUrl}/health?db=1`)).status).toBe(200)
    await holder.release()
    await next.release()
  })

  it('killed by the kernel for want of memory: the lease is lost saying so', async () => {
    const a = spawnAcquirer({ name: 'oom' })
    const first = await a.next()
    expect(first.error).toBeUndefined()
    // A memory cgroup too small for it: the kernel's OOM killer takes QEMU at its next allocations.
    cage(first.qemuPid, `se-oom-${process.pid}`)
    let lost: { lost?: string } = {}
    const heard = a.next().then((line) => (lost = line))
    await eventually(async () => {
      await fetch(`${first.urls.backend}/health?db=1`, { signal: AbortSignal.timeout(1000) }).catch(() => {})
      return Boolean(lost.lost)
    }, 60_000)
    await heard
    expect(lost.lost).toMatch(new RegExp(`QEMU \\(pid ${first.qemuPid}\\) was killed by SIGKILL: out of memory`))
    await a.child
    expect(await leftoversUnder(stateDir('oom'), 10_000)).toEqual([])
  })
})

/** A port nobody listens on now. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/** Moves `pid` into a new memory cgroup limited to 1 MiB and no swap (cgroup v2, else v1). */
function cage(pid: number, name: string): void {
  if (process.getuid?.() !== 0) throw new Error('this test makes a memory cgroup: run it as root (CI does)')
  const v2 = fs.existsSync('/sys/fs/cgroup/cgroup.controllers')
  const dir = v2 ? path.join('/sys/fs/cgroup', name) : path.join('/sys/fs/cgroup/memory', name)
  fs.mkdirSync(dir)
  cgroups.push(dir)
  if (v2) {
    fs.writeFileSync(path.join(dir, 'memory.max'), String(2 ** 20))
    fs.writeFileSync(path.join(dir, 'memory.swap.max'), '0')
  } else {
    fs.writeFileSync(path.join(dir, 'memory.limit_in_bytes'), String(2 ** 20))
  }
  fs.writeFileSync(path.join(dir, 'cgroup.procs'), String(pid))
}
