/**
 * Isolation by tenant (issue 25): under isolation 'project' every test gets a fresh Stack Auth
 * project of its own on one shared VM, minted ahead per worker, seeded per project, its mail
 * apart; Vitest and Playwright workers at once; a worker killed while it mints harms nobody.
 */
import fs from 'node:fs'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { acquire } from '../../src/client/acquire.js'
import { stopInstance } from '../../src/client/control.js'
import { instanceNames, leftoversUnder, privateCacheWithSnapshot, qemuProcesses, root, spawnAcquirer, useTempHome } from '../helpers.js'
import { createUser, userEmails } from '../projects/vitest-isolation/users.js'

const home = useTempHome()
// The run's seed takes a seeded snapshot: in a cache of its own, over a copy of the shared ready snapshot.
process.env.STACK_EMULATOR_CACHE_DIR = await privateCacheWithSnapshot(home)
const state = path.join(home, 'state')

afterAll(async () => {
  for (const name of instanceNames(home)) await stopInstance(name)
  expect(await leftoversUnder(home)).toEqual([])
})

const vitestProject = path.join(root, 'test/projects/vitest-projects')
const playwrightConfig = path.join(root, 'test/projects/playwright-projects/playwright.config.ts')
const vitest = (env: Record<string, string>) =>
  execa(path.join(root, 'node_modules/.bin/vitest'), ['run', '--root', vitestProject], { env, reject: false, all: true })
const playwright = (env: Record<string, string>) =>
  execa(path.join(root, 'node_modules/.bin/playwright'), ['test', '--config', playwrightConfig, '--reporter', 'line'], {
    cwd: path.dirname(playwrightConfig),
    env,
    reject: false,
    all: true,
  })

/** What each test recorded (project-check.ts): its label, project and worker. */
const records = (dir: string) =>
  fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .map((f) => JSON.parse(fs.readFileSync(path.join(dir, f), 'utf8')) as { label: string; projectId: string; pid: number; backendUrl: string })
const results = (label: string) => fs.mkdtempSync(path.join(home, `${label}-`))
/** Every QEMU process started under the state folder while `run` runs. */
async function qemuPidsDuring<T>(run: () => Promise<T>): Promise<{ result: T; pids: Set<number> }> {
  const pids = new Set<number>()
  const watcher = setInterval(() => qemuProcesses(state).forEach((p) => pids.add(p.pid)), 100)
  try {
    return { result: await run(), pids }
  } finally {
    clearInterval(watcher)
  }
}

describe('vitest', () => {
  it('two tests in one file sign up the same email: both succeed, each in its own project, each sees only its own user and mail; the seeds ran where they belong', async () => {
    const dir = results('same')
    const seedLog = path.join(dir, 'seed.log')
    const result = await vitest({ FILES: 'same-email.test.ts,sign-in.test.ts', STACK_EMULATOR_NAME: 'same', RESULTS_DIR: dir, SEED_LOG: seedLog })
    expect(result.exitCode, result.all).toBe(0)
    expect(result.all).toMatch(/4 passed/)
    const [first, second] = records(dir).sort((a, b) => a.label.localeCompare(b.label))
    expect(first!.projectId).not.toBe(second!.projectId)
    // The run's seed once (into the seeded snapshot); seedProject once in every project minted,
    // the two the tests used among them (the pool mints ahead, so a few more).
    const seeds = fs.readFileSync(seedLog, 'utf8').trim().split('\n')
    expect(seeds.filter((line) => line === 'base')).toHaveLength(1)
    const seededProjects = seeds.filter((line) => line !== 'base')
    expect(new Set(seededProjects).size).toBe(seededProjects.length)
    expect(seededProjects).toEqual(expect.arrayContaining([first!.projectId, second!.projectId]))
    expect(await leftoversUnder(state, 10_000)).toEqual([])
  })

  it("per 'file': the tests of a file share its project, another file has another", async () => {
    const dir = results('per-file')
    const result = await vitest({
      FILES: 'per-file-a.test.ts,per-file-b.test.ts',
      PER: 'file',
      NO_BASE_SEED: '1',
      STACK_EMULATOR_NAME: 'per-file',
      RESULTS_DIR: dir,
    })
    expect(result.exitCode, result.all).toBe(0)
    const lines = fs
      .readFileSync(path.join(dir, 'per-file.txt'), 'utf8')
      .trim()
      .split('\n')
      .map((line) => line.split(' '))
    const projectOf = (file: string) => new Set(lines.filter(([f]) => f === file).map(([, id]) => id))
    expect([...projectOf('a')]).toHaveLength(1)
    expect([...projectOf('b')]).toHaveLength(1)
    expect([...projectOf('a')][0]).not.toBe([...projectOf('b')][0])
  })
})

describe('many workers, one VM', () => {
  it('four Vitest workers and two Playwright workers at once: every test in a project of its own, no data crosses, one QEMU process', async () => {
    const dir = results('many')
    const env = { STACK_EMULATOR_NAME: 'many', PW_INSTANCE: 'many', RESULTS_DIR: dir, NO_BASE_SEED: '1' }
    const {
      result: [vitestRun, playwrightRun],
      pids,
    } = await qemuPidsDuring(() => Promise.all([vitest({ ...env, FILES: 'w-1.test.ts,w-2.test.ts,w-3.test.ts,w-4.test.ts', WORKERS: '4' }), playwright(env)]))
    expect(vitestRun.exitCode, vitestRun.all).toBe(0)
    expect(vitestRun.all).toMatch(/12 passed/)
    expect(playwrightRun.exitCode, playwrightRun.all).toBe(0)
    expect(playwrightRun.all).toMatch(/6 passed/)
    const all = records(dir)
    expect(all).toHaveLength(18)
    expect(new Set(all.map((r) => r.projectId)).size).toBe(18)
    expect(new Set(all.map((r) => r.backendUrl)).size).toBe(1)
    // Six worker processes, at least, took part.
    expect(new Set(all.map((r) => r.pid)).size).toBeGreaterThanOrEqual(6)
    expect(pids.size).toBe(1)
    expect(await leftoversUnder(state, 10_000)).toEqual([])
  })

  it("a Vitest worker SIGKILLed while its pool mints: the other workers' tests pass, nothing is left running", async () => {
    const dir = results('killed')
    const pidFile = path.join(dir, 'victim.pid')
    const run = vitest({
      FILES: 'w-1.test.ts,w-2.test.ts,w-3.test.ts,victim.test.ts',
      WORKERS: '4',
      NO_BASE_SEED: '1',
      STACK_EMULATOR_NAME: 'killed',
      RESULTS_DIR: dir,
    })
    // The victim takes project after project: a moment into its tests, a mint is always under way.
    for (let i = 0; i < 1800 && !fs.existsSync(pidFile); i++) await new Promise((r) => setTimeout(r, 100))
    await new Promise((r) => setTimeout(r, 1500))
    process.kill(Number(fs.readFileSync(pidFile, 'utf8')), 'SIGKILL')
    const result = await run
    expect(result.exitCode).not.toBe(0)
    expect(
      records(dir)
        .map((r) => r.label)
        .sort(),
    ).toEqual(['w1-1', 'w1-2', 'w1-3', 'w2-1', 'w2-2', 'w2-3', 'w3-1', 'w3-2', 'w3-3'])
    expect(result.all).toMatch(/9 passed/)
    expect(await leftoversUnder(state, 10_000)).toEqual([])
  })

  it('processes killed at every moment of a mint leave the supervisor minting for the others', async () => {
    const survivor = await acquire({ name: 'storm' })
    try {
      for (const delayMs of [0, 10, 30, 60, 100, 150, 250, 400]) {
        const victim = spawnAcquirer({ name: 'storm' }, { MINT_LOOP: '1' })
        expect((await victim.next()).error).toBeUndefined()
        await new Promise((r) => setTimeout(r, delayMs))
        victim.child.kill('SIGKILL')
        await victim.child
        // The survivor's next project is its own, empty but for what it writes, and works.
        const project = await survivor.newProject()
        const backendUrl = project.env.STACK_API_URL!
        await createUser(backendUrl, project, `after-${delayMs}@example.com`)
        expect(await userEmails(backendUrl, project)).toEqual([`after-${delayMs}@example.com`])
      }
      expect(qemuProcesses(state)).toHaveLength(1)
    } finally {
      await survivor.release()
    }
    await stopInstance('storm')
    expect(await leftoversUnder(state, 10_000)).toEqual([])
  })
})
