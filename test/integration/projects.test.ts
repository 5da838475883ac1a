/**
 * One seeded snapshot per project (issue 24, item 3): two projects without a stack.config.ts, each
 * with its own seed, alternate without seeding again; the store's bound drops the least recently
 * used seeded snapshot, never one a running VM resets to.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { acquire, type Emulator } from '../../src/client/acquire.js'
import { stopInstance } from '../../src/client/control.js'
import { createUser, instanceNames, leftoversUnder, listUserEmails, privateCacheWithSnapshot, useTempHome } from '../helpers.js'

const home = useTempHome()
// A store of its own, starting from a copy of the shared ready snapshot: its seeded ones are counted here.
const cache = await privateCacheWithSnapshot(home)
process.env.STACK_EMULATOR_CACHE_DIR = cache

afterAll(async () => {
  for (const name of instanceNames(home)) await stopInstance(name)
  expect(await leftoversUnder(home)).toEqual([])
})

/** A project as users have them: a folder with a package.json and no stack.config.ts. */
function project(name: string): string {
  const dir = path.join(home, 'work', name)
  fs.mkdirSync(path.join(dir, 'test'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify({ name }))
  return dir
}

const seeded: string[] = []

/** acquire() as a runner started in `dir` (a subfolder of it, even) does it, with the project's own seed. */
async function run(dir: string, instance: string): Promise<{ emulator: Emulator; logs: string[] }> {
  const name = path.basename(dir)
  const logs: string[] = []
  const before = process.cwd()
  process.chdir(path.join(dir, 'test'))
  try {
    const seed = async (e: Emulator) => {
      seeded.push(name)
      expect((await createUser(e.backendUrl, e.env, `${name}@example.com`)).status).toBe(201)
    }
    return { emulator: await acquire({ name: instance, seed, seedVersion: name, onLog: (line) => logs.push(line) }), logs }
  } finally {
    process.chdir(before)
  }
}

const taking = (logs: string[]) => logs.filter((line) => line.includes('taking a seeded snapshot'))
const seededSnapshots = () => fs.readdirSync(path.join(cache, 'snapshots')).filter((entry) => /-checkpoint-[0-9a-f]{16}$/.test(entry))

describe('seeded snapshots per project', () => {
  it('two projects alternate, each restoring its own; the bound drops the least recently used, never one in use', async () => {
    const alpha = project('alpha')
    const beta = project('beta')
    const gamma = project('gamma')

    const first = await run(alpha, 'projects')
    expect(taking(first.logs)).toEqual([expect.stringContaining(`${path.join('.projects', 'alpha-')}`)])
    const alphaKeys = first.emulator.credentials
    await first.emulator.release()
    const other = await run(beta, 'projects')
    expect(taking(other.logs)).toEqual([expect.stringContaining(`${path.join('.projects', 'beta-')}`)])
    await other.emulator.release()

    // Back in alpha: its own seeded snapshot, restored; no seed, no mint, the same keys and data.
    const again = await run(alpha, 'projects')
    expect(again.logs.filter((line) => /snapshot/.test(line))).toEqual([]) // neither taken nor captured again
    expect(seeded).toEqual(['alpha', 'beta'])
    expect(again.emulator.credentials).toEqual(alphaKeys)
    expect(await listUserEmails(again.emulator.backendUrl, again.emulator.env)).toEqual(['alpha@example.com'])
    expect(seededSnapshots()).toHaveLength(2)

    // alpha's VM keeps running on its snapshot. Another instance saves gamma's under a bound of 1:
    // beta's (least recently used) goes, alpha's (in use) stays though the store is then above it.
    process.env.STACK_EMULATOR_MAX_SEEDED_SNAPSHOTS = '1'
    let third: Awaited<ReturnType<typeof run>>
    try {
      third = await run(gamma, 'elsewhere')
    } finally {
      delete process.env.STACK_EMULATOR_MAX_SEEDED_SNAPSHOTS
    }
    expect(taking(third.logs)).toHaveLength(1)
    expect(third.logs.filter((line) => line.startsWith('dropped'))).toEqual([
      expect.stringMatching(
        new RegExp(
          `^dropped the seeded snapshot used least recently, to keep at most 1 \\(STACK_EMULATOR_MAX_SEEDED_SNAPSHOTS\\): the project at ${beta} \\(last used [^)]+\\); freed \\d+(\\.\\d)? [kMG]B$`,
        ),
      ),
    ])
    expect(seededSnapshots()).toHaveLength(2)
    await third.emulator.release()

    // alpha's resets still return to its snapshot.
    expect((await createUser(again.emulator.backendUrl, again.emulator.env, 'written@example.com')).status).toBe(201)
    await again.emulator.reset()
    expect(again.emulator.credentials).toEqual(alphaKeys)
    expect(await listUserEmails(again.emulator.backendUrl, again.emulator.env)).toEqual(['alpha@example.com'])
    await again.emulator.release()
    expect(seeded).toEqual(['alpha', 'beta', 'gamma'])
  })
})
