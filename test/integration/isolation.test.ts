/**
 * Isolation users build on (issue 13): seeded snapshots that keep keys and seed data across
 * resets and runs, a reset per test in Vitest and Playwright, and one VM per worker.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { acquire, acquireForWorker, type Emulator } from '../../src/client/acquire.js'
import type { StackEmulatorError } from '../../src/errors.js'
import { sha256 } from '../../src/digest.js'
import { instanceStatus, stopInstance } from '../../src/client/control.js'
import {
  eventually,
  http,
  instanceNames,
  leftoversUnder,
  privateCacheWithSnapshot,
  processesMentioning,
  qemuProcesses,
  root,
  spawnAcquirer,
  useTempHome,
} from '../helpers.js'

const home = useTempHome()
// Seeded snapshots of their own (the seed log counts every capture of this file), over a copy of the shared ready snapshot.
process.env.STACK_EMULATOR_CACHE_DIR = await privateCacheWithSnapshot(home)
const state = (name: string) => path.join(home, 'state', name)

afterAll(async () => {
  for (const name of instanceNames(home)) await stopInstance(name)
  expect(await leftoversUnder(home)).toEqual([])
})

const serverHeaders = (e: Emulator) => ({
  'x-stack-project-id': e.credentials!.projectId,
  'x-stack-access-type': 'server',
  'x-stack-secret-server-key': e.credentials!.secretServerKey,
})
const emails = async (e: Emulator) => {
  const { status, json } = await http(`${e.backendUrl}/api/v1/users`, { headers: serverHeaders(e) })
  expect(status).toBe(200)
  return (json.items as { primary_email: string }[]).map((u) => u.primary_email).sort()
}
const createUser = async (e: Emulator, email: string) => {
  expect((await http(`${e.backendUrl}/api/v1/users`, { method: 'POST', headers: serverHeaders(e), body: { primary_email: email } })).status).toBe(201)
}

describe('seeded snapshots', () => {
  const seedLog: string[] = []
  let firstRunKeys: Emulator['credentials']
  const seed = async (e: Emulator) => {
    seedLog.push('seeded')
    await createUser(e, 'seeded@example.com')
  }

  it('a seed creates a user: after each reset it is there and nothing else, with the same keys', async () => {
    const logs: string[] = []
    const emulator = await acquire({ name: 'seeded', seed, seedVersion: 'v1', onLog: (line) => logs.push(line) })
    try {
      expect(seedLog).toEqual(['seeded'])
      const keys = emulator.credentials
      firstRunKeys = keys
      expect(await emails(emulator)).toEqual(['seeded@example.com'])
      for (let i = 0; i < 3; i++) {
        await createUser(emulator, `written-${i}@example.com`)
        await emulator.reset()
        expect(emulator.credentials).toEqual(keys)
        expect(await emails(emulator)).toEqual(['seeded@example.com'])
      }
      expect(seedLog).toHaveLength(1)
    } finally {
      await emulator.release()
    }
  })

  it('is reused by the next run while its inputs are unchanged, and a changed seed recaptures once, saying why', async () => {
    const first = await acquire({ name: 'seeded', seed, seedVersion: 'v1' })
    // The next run restores the seeded snapshot: the first run's keys, no seed and no mint.
    expect(first.credentials).toEqual(firstRunKeys)
    expect(first.startup.phases.seed).toBeUndefined()
    expect(await emails(first)).toEqual(['seeded@example.com'])
    await first.release()
    expect(seedLog).toHaveLength(1)

    const said: string[] = []
    const changed = await acquire({ name: 'seeded', seed, seedVersion: 'v2', onLog: (line) => said.push(line) })
    expect(seedLog).toHaveLength(2)
    expect(said.filter((line) => line.includes('taking a seeded snapshot'))).toEqual([expect.stringMatching(/for .*stack\.config\.ts \(the seed changed\)/)])
    expect(await emails(changed)).toEqual(['seeded@example.com'])
    const v2keys = changed.credentials
    await changed.release()

    const again = await acquire({ name: 'seeded', seed, seedVersion: 'v2' })
    expect(seedLog).toHaveLength(2)
    expect(again.credentials).toEqual(v2keys)
    expect(await emails(again)).toEqual(['seeded@example.com'])
    await again.release()
  })

  it('a suite with another seed waits for the VM that others hold, then fails naming both seeds; it never runs on their data', async () => {
    const holder = await acquire({ name: 'seeded', seed, seedVersion: 'v2' })
    const progress: string[] = []
    const error = await acquire({ name: 'seeded', seed, seedVersion: 'v3', seedTimeoutMs: 2000, onProgress: (p) => progress.push(p) }).catch(
      (e: StackEmulatorError) => e,
    )
    expect(error).toMatchObject({
      code: 'SEED_CONFLICT',
      message: expect.stringMatching(/\(seed v3 for .*\): it waited 2 s for 1 other suite\(s\) \(pids \d+\) holding it with seed v2/),
    })
    expect(progress).toContainEqual(expect.stringMatching(/^waiting for 1 other suite\(s\) .* with seed v2/))
    expect(await emails(holder)).toEqual(['seeded@example.com'])
    // Its own release is no loss: `lost` stays pending.
    const lost = holder.lost.then((reason) => `lost: ${reason}`)
    await holder.release()
    expect(await Promise.race([lost, new Promise((resolve) => setTimeout(() => resolve('kept'), 500))])).toBe('kept')
  })

  it('a seed that hangs fails its suite after seedTimeoutMs; the next suite gets a VM with its own seed and nothing of the hung one', async () => {
    const configFile = path.join(fs.mkdtempSync(path.join(home, 'hang-')), 'stack.config.ts')
    fs.writeFileSync(configFile, 'export const config = {}\n')
    const hanging = async (e: Emulator) => {
      await createUser(e, 'half-seeded@example.com')
      await new Promise(() => {})
    }
    await expect(acquire({ name: 'hang', configFile, seed: hanging, seedTimeoutMs: 2000 })).rejects.toMatchObject({
      code: 'SEED_TIMEOUT',
      message: expect.stringMatching(/did not finish within 2 s/),
    })
    const next = await acquire({ name: 'hang', configFile, seed })
    expect(await emails(next)).toEqual(['seeded@example.com'])
    await next.release()
  })

  it("a test worker's VM without the run's seeded snapshot fails, saying so, and leaves nothing running", async () => {
    await expect(acquireForWorker({ name: 'lonely-worker-0', seedVersion: 'never-taken' })).rejects.toMatchObject({
      code: 'SEED_MISSING',
      message: expect.stringMatching(/No seeded snapshot of .*stack\.config\.ts with seed never-taken/),
    })
    expect(await leftoversUnder(state('lonely-worker-0'))).toEqual([])
  })

  it('a config file changed since the capture is captured again, and says so', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'se-config-'))
    const configFile = path.join(dir, 'stack.config.ts')
    fs.writeFileSync(configFile, 'export const config = {}\n')
    await (await acquire({ name: 'seeded', configFile })).release()
    fs.appendFileSync(configFile, '// changed\n')
    const said: string[] = []
    await (await acquire({ name: 'seeded', configFile, onLog: (line) => said.push(line) })).release()
    expect(said).toContain(`taking a seeded snapshot for ${configFile} (${configFile} changed); later runs and resets start from it`)
  })

  it('the seeded snapshot of a config file that is gone is dropped when the next one is saved', async () => {
    const snapshots = path.join(process.env.STACK_EMULATOR_CACHE_DIR!, 'snapshots')
    const seededSnapshots = () => fs.readdirSync(snapshots).filter((entry) => /-checkpoint-[0-9a-f]{16}$/.test(entry))
    const project = (name: string) => {
      const configFile = path.join(fs.mkdtempSync(path.join(home, `${name}-`)), 'stack.config.ts')
      fs.writeFileSync(configFile, 'export const config = {}\n')
      return configFile
    }
    const temporary = project('temporary')
    await (await acquire({ name: 'seeded', configFile: temporary })).release()
    const before = seededSnapshots()
    fs.rmSync(path.dirname(temporary), { recursive: true })
    await (await acquire({ name: 'seeded', configFile: project('next') })).release()
    const after = seededSnapshots()
    // One was added (the next project's), and the temporary project's went; the others stay.
    expect(after.filter((entry) => !before.includes(entry))).toHaveLength(1)
    expect(before.filter((entry) => !after.includes(entry))).toEqual([expect.stringMatching(new RegExp(`-checkpoint-${sha256(temporary).slice(0, 16)}$`))])
  })
})

describe('vitest', () => {
  const project = path.join(root, 'test/projects/vitest-isolation')
  const vitest = (env: Record<string, string>) =>
    execa(path.join(root, 'node_modules/.bin/vitest'), ['run', '--root', project], { env, reject: false, all: true })

  it('test.extend fixture with reset "test": a user written in one test is gone in the next, the keys are the same', async () => {
    const seedLog = path.join(home, 'vitest-seed.log')
    const result = await vitest({ MODE: 'reset', STACK_EMULATOR_NAME: 'vreset', SEED_LOG: seedLog })
    expect(result.exitCode, result.all).toBe(0)
    expect(result.all).toMatch(/3 passed/)
    expect(fs.readFileSync(seedLog, 'utf8')).toBe('seeded\n')
    expect(await eventually(() => processesMentioning(state('vreset')).length === 0 && processesMentioning(state('vreset-worker-1')).length === 0, 5000)).toBe(
      true,
    )
  })

  it('reset "test" on one VM shared by 3 workers is refused at start, naming the ways out, and starts nothing', async () => {
    const result = await vitest({ MODE: 'shared-reset', STACK_EMULATOR_NAME: 'vshared' })
    expect(result.exitCode).not.toBe(0)
    expect(result.all).toMatch(/reset 'test' on one VM that 3 workers share would wipe the other workers' running tests.*isolation 'worker'/s)
    expect(instanceNames(home)).not.toContain('vshared')
  })

  it('isolation "worker" with 3 workers: 3 VMs on distinct ports, all stopped after the run', async () => {
    const results = fs.mkdtempSync(path.join(home, 'results-'))
    const seen = new Set<number>()
    const watcher = setInterval(() => qemuProcesses(path.join(home, 'state', 'vworkers-worker-')).forEach((p) => seen.add(p.pid)), 100)
    const result = await vitest({ MODE: 'workers', STACK_EMULATOR_NAME: 'vworkers', RESULTS_DIR: results })
    clearInterval(watcher)
    expect(result.exitCode, result.all).toBe(0)
    const vms = ['1', '2', '3'].map((n) => JSON.parse(fs.readFileSync(path.join(results, `${n}.json`), 'utf8')))
    expect(new Set(vms.map((v) => v.name)).size).toBe(3)
    expect(new Set(vms.map((v) => v.backendUrl)).size).toBe(3)
    expect(seen.size).toBeGreaterThanOrEqual(3)
    expect(await leftoversUnder(path.join(home, 'state'), 10_000)).toEqual([])
  })
})

describe('playwright', () => {
  it('workers: 2 with reset "test": every test starts from the seed, keys are shared, no worker sees the other\'s writes', async () => {
    const project = path.join(root, 'test/projects/playwright-isolation')
    const results = fs.mkdtempSync(path.join(home, 'pw-results-'))
    const seedLog = path.join(home, 'pw-seed.log')
    const result = await execa(
      path.join(root, 'node_modules/.bin/playwright'),
      ['test', '--config', path.join(project, 'playwright.config.ts'), '--reporter', 'line'],
      {
        cwd: project,
        env: { PW_INSTANCE: 'pw-iso', RESULTS_DIR: results, SEED_LOG: seedLog },
        reject: false,
        all: true,
      },
    )
    expect(result.exitCode, result.all).toBe(0)
    expect(result.all).toMatch(/6 passed/)
    // The globalSetup seeded once; each worker restored its own VM from that snapshot.
    expect(fs.readFileSync(seedLog, 'utf8')).toBe('seeded\n')
    const workers = fs.readdirSync(results).filter((f) => f.startsWith('worker-'))
    expect(workers).toHaveLength(2)
    const urls = workers.map(
      (f) =>
        new Set(
          fs
            .readFileSync(path.join(results, f), 'utf8')
            .trim()
            .split('\n')
            .map((l) => l.split(' ')[1]),
        ),
    )
    expect(urls.map((u) => u.size)).toEqual([1, 1])
    expect([...urls[0]!][0]).not.toBe([...urls[1]!][0])
    expect(await leftoversUnder(path.join(home, 'state'), 10_000)).toEqual([])
  })
})

describe('per-worker VMs', () => {
  it('a worker killed with SIGKILL releases its VM like any lease', async () => {
    const worker = spawnAcquirer({ name: 'killed-worker-0' })
    const handle = await worker.next()
    expect(handle.error).toBeUndefined()
    expect(qemuProcesses(state('killed-worker-0'))).toHaveLength(1)
    worker.child.kill('SIGKILL')
    await worker.child
    expect(await eventually(() => processesMentioning(state('killed-worker-0')).length === 0, 15_000)).toBe(true)
    expect(await instanceStatus('killed-worker-0')).toBeUndefined()
  })
})
