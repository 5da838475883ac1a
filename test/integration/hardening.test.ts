/**
 * Hostile conditions: clients killed at any moment of a start, files removed or garbled under a
 * running VM, malformed messages, bad names and numbers, a full disk, a read-only cache.
 * Everything here uses real processes, real QEMU and real file systems (tmpfs, read-only bind
 * mounts: the tier runs as root, as CI does).
 */
import { spawn } from 'node:child_process'
import crypto from 'node:crypto'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { acquire } from '../../src/client/acquire.js'
import { instanceStatus, stopInstance } from '../../src/client/control.js'
import {
  cli,
  eventually,
  http,
  instanceNames,
  leftoversUnder,
  privateCache,
  privateCacheWithSnapshot,
  processesMentioning,
  qemuProcesses,
  root,
  fixtureVariant,
  serverHeaders,
  sharedCache,
  spawnAcquirer,
  stressRounds,
  supervisorProcesses,
  useTempHome,
} from '../helpers.js'

const home = useTempHome()
const stateDir = (name: string) => path.join(home, 'state', name)
const mounts: string[] = []

async function mount(args: string[], target: string): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error('these tests mount tmpfs and read-only binds: run them as root (CI does)')
  fs.mkdirSync(target, { recursive: true })
  await execa('mount', [...args, target])
  mounts.push(target)
}

afterAll(async () => {
  for (const name of instanceNames(home)) await stopInstance(name).catch(() => {})
  for (const target of mounts.reverse()) await execa('umount', ['-l', target], { reject: false })
  expect(await leftoversUnder(home)).toEqual([])
})

describe('kill storm', () => {
  // The stress tier (docs/testing.md): 20 rounds of 4 kills under STACK_EMULATOR_STRESS=1, else 2
  // rounds of 8. Either way the kills are spread over the whole 0.3-1.2 s window (one at random in
  // each of kills x rounds equal slices: 80, or the bounded form's 16), so the bounded form still
  // kills at every moment of a start, in slices as fine as 4 rounds of 4 gave, in half the starts.
  const rounds = stressRounds(20, 2)
  const kills = stressRounds(4, 8)
  it(`16 acquirers, ${kills} killed 0.3-1.2 s in, round after round: one VM a round, every survivor on it, nothing left`, async () => {
    const dir = stateDir('storm')
    const killAt = (round: number, victim: number) => 300 + (900 * (victim * rounds + round + Math.random())) / (kills * rounds)
    for (let round = 0; round < rounds; round++) {
      const acquirers = Array.from({ length: 16 }, () => spawnAcquirer({ name: 'storm' }))
      const victims = new Set<number>()
      while (victims.size < kills) victims.add(Math.floor(Math.random() * 16))
      // Sampled all along: never two VMs of the instance at once.
      let mostQemuAtOnce = 0
      const watcher = setInterval(() => (mostQemuAtOnce = Math.max(mostQemuAtOnce, qemuProcesses(dir).length)), 20)
      const killMs = [...victims].map((_, k) => Math.round(killAt(round, k)))
      const killed = [...victims].map(
        (i, k) =>
          new Promise<void>((resolve) =>
            setTimeout(() => {
              acquirers[i]!.child.kill('SIGKILL')
              resolve()
            }, killMs[k]),
          ),
      )
      const survivors = acquirers.filter((_, i) => !victims.has(i))
      const results = await Promise.all(survivors.map((a) => a.next()))
      await Promise.all(killed)
      clearInterval(watcher)
      const context = `round ${round} (kills at ${killMs.join(', ')} ms): ${JSON.stringify(results.map((r) => r.error ?? r.qemuPid))}`
      expect(
        results.filter((r) => r.error),
        context,
      ).toEqual([])
      expect(new Set(results.map((r) => r.qemuPid)).size, context).toBe(1)
      expect(new Set(results.map((r) => JSON.stringify(r.urls))).size, context).toBe(1)
      expect(qemuProcesses(dir), context).toHaveLength(1)
      // A supervisor spawned for a client killed before its hello may show up, but only one ever serves.
      expect(supervisorProcesses(dir), context).toHaveLength(1)
      expect(mostQemuAtOnce, context).toBe(1)
      for (const a of survivors) a.send('release')
      await Promise.all(acquirers.map((a) => a.child))
      expect(await eventually(() => processesMentioning(dir).length === 0, 10_000), `${context}: left ${JSON.stringify(processesMentioning(dir))}`).toBe(true)
    }
  })

  it('a client killed right after spawning the supervisor leaves nothing within 10 s', async () => {
    const dir = stateDir('orphan')
    const client = spawnAcquirer({ name: 'orphan' })
    // Kill the client the moment its supervisor exists: before, or at the latest during, its hello.
    expect(await eventually(() => supervisorProcesses(dir).length > 0, 30_000, 2)).toBe(true)
    client.child.kill('SIGKILL')
    await client.child
    const killed = Date.now()
    expect(await eventually(() => processesMentioning(dir).length === 0, 10_000)).toBe(true)
    expect(Date.now() - killed).toBeLessThan(10_000)
  })

  it('a client paused for 8 s right after spawning the supervisor (a debugger, SIGSTOP) gets its VM when it resumes', async () => {
    const dir = stateDir('paused')
    const client = spawnAcquirer({ name: 'paused' })
    expect(await eventually(() => supervisorProcesses(dir).length > 0, 30_000, 2)).toBe(true)
    process.kill(client.child.pid!, 'SIGSTOP')
    await new Promise((r) => setTimeout(r, 8000)) // past the 5 s a dead client is given
    expect(supervisorProcesses(dir)).toHaveLength(1)
    process.kill(client.child.pid!, 'SIGCONT')
    const reply = await client.next()
    expect(reply.error).toBeUndefined()
    expect(reply.qemuPid).toBeGreaterThan(0)
    client.send('release')
    await client.child
    expect(await leftoversUnder(dir)).toEqual([])
  })

  it('a supervisor nobody says hello to stops itself and its VM', async () => {
    const holder = await acquire({ name: 'nohello', onLog: () => {} })
    const config = path.join(stateDir('nohello'), 'supervisor.json')
    await holder.release()
    expect(await eventually(() => processesMentioning(stateDir('nohello')).length === 0, 5000)).toBe(true)
    // The same start a client makes, with no client after it (and the one that wrote it gone).
    const { spawner, ...rest } = JSON.parse(fs.readFileSync(config, 'utf8'))
    expect(spawner.pid).toBe(process.pid)
    fs.writeFileSync(config, JSON.stringify(rest))
    const log = fs.openSync(path.join(stateDir('nohello'), 'supervisor.log'), 'a')
    const child = spawn(process.execPath, [path.join(root, 'dist/supervisor/main.js'), config], { stdio: ['ignore', log, log], detached: true })
    child.unref()
    fs.closeSync(log)
    expect(await eventually(() => supervisorProcesses(stateDir('nohello')).length === 1, 5000)).toBe(true)
    const started = Date.now()
    expect(await eventually(() => processesMentioning(stateDir('nohello')).length === 0, 15_000)).toBe(true)
    expect(Date.now() - started).toBeGreaterThan(3000) // it waited for a hello first
    expect(fs.readFileSync(path.join(stateDir('nohello'), 'supervisor.log'), 'utf8')).toMatch(/no client said hello within 5000 ms/)
  })
})

describe('files removed or garbled under a running VM', () => {
  it('a removed instance folder: the next client finds the same VM, and only it', async () => {
    const a = spawnAcquirer({ name: 'removed' })
    const first = await a.next()
    fs.rmSync(stateDir('removed'), { recursive: true, force: true })
    const b = spawnAcquirer({ name: 'removed' })
    const second = await b.next()
    expect(second.error).toBeUndefined()
    expect(second.qemuPid).toBe(first.qemuPid)
    expect(qemuProcesses(stateDir('removed'))).toHaveLength(1)
    expect(supervisorProcesses(stateDir('removed'))).toHaveLength(1)
    a.send('release')
    b.send('release')
    await Promise.all([a.child, b.child])
    expect(await eventually(() => processesMentioning(stateDir('removed')).length === 0, 5000)).toBe(true)
  })

  it('a garbage state file: the next client finds the same VM, and the file is written again', async () => {
    const a = spawnAcquirer({ name: 'garbled' })
    const first = await a.next()
    fs.writeFileSync(path.join(stateDir('garbled'), 'state.json'), 'garbage')
    const b = spawnAcquirer({ name: 'garbled' })
    const second = await b.next()
    expect(second.qemuPid).toBe(first.qemuPid)
    expect(supervisorProcesses(stateDir('garbled'))).toHaveLength(1)
    expect(await eventually(() => fs.readFileSync(path.join(stateDir('garbled'), 'state.json'), 'utf8').includes('"nonce"'), 3000)).toBe(true)
    a.send('release')
    b.send('release')
    await Promise.all([a.child, b.child])
  })
})

describe('the supervisor survives any message', () => {
  it('answers an error or closes that connection, and keeps serving the others', async () => {
    const holder = await acquire({ name: 'fuzz', onLog: () => {} })
    const socketPath = path.join(stateDir('fuzz'), 'supervisor.sock')
    const supervisorPid = (await instanceStatus('fuzz'))!.supervisorPid
    const exchange = (payload: string | Buffer) =>
      new Promise<{ answer: string; closed: boolean }>((resolve) => {
        const socket = net.connect(socketPath)
        let answer = ''
        socket.setEncoding('utf8')
        socket.on('data', (chunk) => {
          answer += chunk
          if (answer.includes('\n')) socket.destroy(), resolve({ answer, closed: false })
        })
        socket.on('error', () => {})
        socket.on('close', () => resolve({ answer, closed: true }))
        socket.write(payload)
      })
    const lines = [
      'null',
      '42',
      '"text"',
      '[1,2]',
      '{}',
      '{"id":1}',
      '{"id":2,"op":"format-disk"}',
      '{"id":3,"op":"hello"}',
      '{"id":4,"op":"hello","lease":true}',
      '{"id":5,"op":"acquire","isolation":"x","keepAlive":true,"idleTimeoutMs":1}',
      '{"id":6,"op":"acquire","isolation":"suite","keepAlive":true,"idleTimeoutMs":-1}',
      '{"id":7,"op":"reset","force":"yes"}',
      '{"id":"8","op":"status"}',
      '{"id":9,"op":"acquire","isolation":"suite","keepAlive":false,"idleTimeoutMs":0}',
    ]
    for (const line of lines) {
      const { answer } = await exchange(`${line}\n`)
      const reply = JSON.parse(answer)
      expect(reply.ok, line).toBe(false)
      expect(reply.error.code, line).toMatch(/PROTOCOL|SUPERVISOR/)
    }
    expect((await exchange('{not json\n')).closed).toBe(true)
    expect((await exchange(Buffer.alloc(20 * 2 ** 20, 'x'))).closed).toBe(true) // a 20 MB line
    const status = (await instanceStatus('fuzz'))!
    expect(status.supervisorPid).toBe(supervisorPid)
    expect(status.leases).toHaveLength(1) // the holder, untouched; no fuzzing connection became a lease
    expect((await http(`${holder.backendUrl}/health?db=1`)).status).toBe(200)
    await holder.release()
  })
})

describe('names, paths and numbers', () => {
  it('refuses manifest names that would become paths outside the cache', async () => {
    for (const name of ['../../../tmp/x', 'a/b', '..']) {
      const image = await fixtureVariant(fs.mkdtempSync(path.join(home, 'bad-manifest-')), (m) => (m.name = name))
      await expect(acquire({ name: 'badname', image, onLog: () => {} })).rejects.toMatchObject({
        code: 'IMAGE_NOT_FOUND',
        message: expect.stringMatching(/"name" must be letters, digits/),
      })
    }
    const dir = fs.mkdtempSync(path.join(home, 'bad-manifest-'))
    fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ name: 'x', services: 'all', boot: null }))
    await expect(acquire({ name: 'badname', image: path.join(dir, 'manifest.json'), onLog: () => {} })).rejects.toThrow(
      /is invalid: .*"fingerprint".*"disk".*"boot.kind".*"services"/,
    )
    expect(processesMentioning(stateDir('badname'))).toEqual([])
  })

  it('a comma in the state and cache paths: snapshot start and reset work', async () => {
    const commaHome = fs.mkdtempSync(path.join(home, 'with,comma-'))
    // A capture of its own, not a copied snapshot: the capturing QEMU names files in the cache (its RAM file, runtime volume).
    const env = { STACK_EMULATOR_HOME: commaHome, STACK_EMULATOR_CACHE_DIR: privateCache(commaHome) }
    expect((await cli(['start', '--name', 'comma', '--json'], env)).exitCode).toBe(0)
    const reset = await cli(['reset', '--name', 'comma', '--json'], env)
    expect(JSON.parse(reset.stdout).origin).toBe('snapshot')
    const started = await cli(['start', '--name', 'comma', '--json'], env)
    expect(JSON.parse(started.stdout).origin).toBe('snapshot')
    expect((await cli(['stop', '--name', 'comma'], env)).exitCode).toBe(0)
    expect(await leftoversUnder(commaHome)).toEqual([])
  })

  it('a planted symbolic link as the instance folder or the socket is refused, and not followed', async () => {
    const elsewhere = fs.mkdtempSync(path.join(home, 'elsewhere-'))
    fs.mkdirSync(path.join(home, 'state'), { recursive: true })
    fs.symlinkSync(elsewhere, stateDir('planted'))
    await expect(acquire({ name: 'planted', onLog: () => {} })).rejects.toMatchObject({
      code: 'STATE_UNSAFE',
      message: expect.stringMatching(/is a symbolic link/),
    })
    expect(fs.readdirSync(elsewhere)).toEqual([])
    fs.mkdirSync(stateDir('planted-sock'), { mode: 0o700 })
    fs.symlinkSync(path.join(elsewhere, 'sock'), path.join(stateDir('planted-sock'), 'supervisor.sock'))
    await expect(acquire({ name: 'planted-sock', onLog: () => {} })).rejects.toMatchObject({ code: 'STATE_UNSAFE' })
    fs.mkdirSync(stateDir('dir-sock'), { mode: 0o700 })
    fs.mkdirSync(path.join(stateDir('dir-sock'), 'supervisor.sock'))
    await expect(acquire({ name: 'dir-sock', onLog: () => {} })).rejects.toThrow(/supervisor.sock is a folder.*Remove it/)
    expect(fs.readdirSync(elsewhere)).toEqual([])
  })

  it('out-of-range numbers and unknown services get errors naming the allowed range, and start nothing', async () => {
    await expect(acquire({ name: 'bounds', memoryMb: 999_999 })).rejects.toMatchObject({
      code: 'BAD_OPTION',
      message: expect.stringMatching(/memoryMb.*from 64 to \d+/),
    })
    await expect(acquire({ name: 'bounds', idleTimeoutMs: 3_000_000_000 })).rejects.toThrow(/idleTimeoutMs.*from 0 to 2147483647/)
    await expect(acquire({ name: 'bounds', ports: { backend: 70_000 } })).rejects.toThrow(/ports.backend.*from 0 to 65535/)
    await expect(acquire({ name: 'bounds', ports: { mailer: 1234 } })).rejects.toThrow(
      /ports.mailer.*one of the image's services \(dashboard, backend, minio, inbucket, mock-oauth\)/,
    )
    const memory = await cli(['start', '--name', 'bounds', '--memory', '999999'])
    expect(memory.exitCode).toBe(2)
    expect(memory.stderr).toMatch(/memory.*from 64 to \d+/)
    expect(processesMentioning(stateDir('bounds'))).toEqual([])
  })

  it('a suite asking for other driver options than the running VM has is refused, naming the difference', async () => {
    const holder = await acquire({ name: 'differs', onLog: () => {} })
    await expect(acquire({ name: 'differs', memoryMb: 640, onLog: () => {} })).rejects.toMatchObject({
      code: 'OPTIONS_MISMATCH',
      message: expect.stringMatching(/running with memoryMb 512, not 640.*stack-emulator stop --name differs/),
    })
    expect((await instanceStatus('differs'))!.leases).toHaveLength(1)
    await holder.release()
  })
})

describe('local failures never cost the snapshot', () => {
  it('a full state folder at restore: DISK_FULL naming the folder and the fix, snapshot kept, nothing running', async () => {
    const full = path.join(home, 'tiny')
    await mount(['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs'], full)
    const snapshots = () =>
      fs
        .readdirSync(path.join(sharedCache, 'snapshots'))
        .filter((d) => !d.includes('.'))
        .sort()
    const before = snapshots()
    const result = await execa(process.execPath, [path.join(root, 'test/programs/acquirer.mjs'), JSON.stringify({ name: 'full' })], {
      env: { STACK_EMULATOR_HOME: full },
      reject: false,
    })
    const reply = JSON.parse(result.stdout)
    expect(reply.code, reply.error).toBe('DISK_FULL')
    expect(reply.error).toMatch(new RegExp(`No space left in ${full}.*Free some space`))
    expect(snapshots()).toEqual(before)
    expect(await leftoversUnder(full)).toEqual([])
  })

  // `fill`: the save itself meets the full cache. `fill-write`: the guest writes first, so QEMU
  // pauses it (werror=enospc) and its agent answers nothing: the save must not blame the agent.
  it.each(['fill', 'fill-write'])(
    'a cache that fills up while the seeded snapshot is saved (%s): the acquire fails with DISK_FULL naming the cache, nothing runs, and the next run seeds',
    async (seed) => {
      const cache = path.join(home, `fullcache-${seed}`)
      await mount(['-t', 'tmpfs', '-o', 'size=8g', 'tmpfs'], cache)
      await privateCacheWithSnapshot(home, cache)
      // Room for what was copied plus a staged seeded snapshot (its RAM file preallocated, 512 MiB)
      // and its save, whatever number of ready snapshots the shared cache held.
      const usedMb = Math.ceil(Number((await execa('du', ['-sm', cache])).stdout.split('\t')[0]))
      await execa('mount', ['-o', `remount,size=${usedMb + 900}m`, cache])
      const env = { STACK_EMULATOR_CACHE_DIR: cache }
      const filler = path.join(cache, 'filler')
      // The seed runs after the staged copy is made and before the save: it fills the cache.
      const failed = spawnAcquirer({ name: `savefull-${seed}`, seedWith: `${seed}:${filler}` }, env)
      const reply = await failed.next()
      expect(reply.code, reply.error).toBe('DISK_FULL')
      expect(reply.error).toMatch(new RegExp(`No space left in ${cache}/snapshots.*Free some space there`))
      expect(reply.error).not.toMatch(/agent/i)
      if (seed === 'fill-write')
        expect(reply.logs).toContainEqual(expect.stringMatching(new RegExp(`The VM is paused: no space left for its disk in ${cache}/snapshots`)))
      await failed.child
      expect(await leftoversUnder(path.join(home, 'state', `savefull-${seed}`))).toEqual([])
      // Nothing half-saved is taken for a seeded snapshot: with room again, the next run seeds and saves.
      fs.rmSync(filler)
      const next = spawnAcquirer({ name: `savefull-${seed}`, seedWith: 'user' }, env)
      const seeded = await next.next()
      expect(seeded.error).toBeUndefined()
      expect(seeded.logs).toContainEqual(expect.stringMatching(/taking a seeded snapshot .*\(none was taken yet\)/))
      next.send('list')
      expect((await next.next()).users).toEqual(['seeded@example.com'])
      next.send('release')
      await next.child
      // Owner-only: its record holds the project's admin key.
      const slot = fs.readdirSync(path.join(cache, 'snapshots')).find((d) => d.includes('-checkpoint-') && !d.includes('.'))!
      for (const file of ['snapshot.json', 'ram', 'disk.qcow2', 'state'])
        expect(fs.statSync(path.join(cache, 'snapshots', slot, file)).mode & 0o777).toBe(0o600)
    },
  )

  it('a read-only cache restores from its snapshot, without a cold boot, and resets', async () => {
    const cacheHome = fs.mkdtempSync(path.join(home, 'rocache-'))
    const cache = await privateCacheWithSnapshot(cacheHome) // the shared ready snapshot: no capture of its own
    const env = { STACK_EMULATOR_CACHE_DIR: cache }
    expect((await cli(['start', '--name', 'capture-ro', '--json'], env)).exitCode).toBe(0) // takes the seeded snapshot into the private cache
    await cli(['stop', '--name', 'capture-ro'], env)
    await mount(['--bind', cache], cache)
    await execa('mount', ['-o', 'remount,bind,ro', cache])
    expect(() => fs.writeFileSync(path.join(cache, 'probe'), '')).toThrow(/EROFS/)
    const a = spawnAcquirer({ name: 'ro', keepAlive: true }, env)
    const first = await a.next()
    expect(first.error).toBeUndefined()
    expect(first.origin).toBe('snapshot')
    expect(first.logs.filter((l: string) => /snapshot/i.test(l))).toEqual([expect.stringMatching(/cache is read-only; restoring from a private copy/)])
    // Its private copy of the RAM file is sparse, as the cache's is, and goes with the VM.
    const copies = () => fs.readdirSync(stateDir('ro')).filter((f) => f.startsWith('snapshot-ram-'))
    expect(copies()).toHaveLength(1)
    const copy = fs.statSync(path.join(stateDir('ro'), copies()[0]!))
    expect(copy.blocks * 512).toBeLessThan(copy.size * 0.75)
    const reset = await cli(['reset', '--name', 'ro', '--force', '--json'], env)
    expect(JSON.parse(reset.stdout).origin).toBe('snapshot')
    a.send('release')
    await a.child
    await stopInstance('ro')
    expect(copies()).toEqual([])
  })

  it('a disk that fills up while running pauses the VM with a clear error, and it resumes once space is freed', async () => {
    const small = path.join(home, 'small')
    await mount(['-t', 'tmpfs', '-o', 'size=24m', 'tmpfs'], small)
    const holder = spawnAcquirer({ name: 'filling', keepAlive: true }, { STACK_EMULATOR_HOME: small })
    const first = await holder.next()
    expect(first.error).toBeUndefined()
    const filler = path.join(small, 'filler')
    await execa('dd', ['if=/dev/zero', `of=${filler}`, 'bs=1M', 'count=100'], { reject: false }) // until ENOSPC
    // The guest writes (PostgreSQL's WAL and tables: half a megabyte of incompressible text a
    // user, so new disk clusters each time) until QEMU's write fails and it pauses.
    for (let i = 0; i < 40 && !(await statusIn(small, 'filling'))?.problem; i++) {
      // A paused guest never answers: each write gets 2 s.
      const displayName = crypto.randomBytes(400_000).toString('base64')
      await fetch(`${first.urls.backend}/api/v1/users`, {
        method: 'POST',
        body: JSON.stringify({ primary_email: `fill${i}@example.com`, display_name: displayName }),
        signal: AbortSignal.timeout(2000),
        headers: { 'content-type': 'application/json', ...serverHeaders(first.env) },
      }).catch(() => {})
    }
    const paused = await statusIn(small, 'filling')
    expect(paused?.problem).toMatch(new RegExp(`The VM is paused: no space left for its disk in ${small}`))
    const refused = await execa(process.execPath, [path.join(root, 'test/programs/acquirer.mjs'), JSON.stringify({ name: 'filling' })], {
      env: { STACK_EMULATOR_HOME: small },
      reject: false,
    })
    expect(JSON.parse(refused.stdout)).toMatchObject({ code: 'DISK_FULL', error: expect.stringMatching(/Free some space there/) })
    fs.rmSync(filler)
    expect(await eventually(async () => !(await statusIn(small, 'filling'))?.problem, 10_000, 200)).toBe(true)
    expect((await http(`${first.urls.backend}/health?db=1`)).status).toBe(200)
    holder.send('release')
    await holder.child
    await cli(['stop', '--name', 'filling'], { STACK_EMULATOR_HOME: small })
  })
})

async function statusIn(stackHome: string, name: string): Promise<{ problem?: string } | undefined> {
  const result = await cli(['status', '--name', name, '--json'], { STACK_EMULATOR_HOME: stackHome })
  return result.stdout ? JSON.parse(result.stdout) : undefined
}
