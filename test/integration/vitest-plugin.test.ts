/**
 * The Vitest plugin from the built package, in a user's project run as a real Vitest process:
 * both worker pools, watch-mode reruns, interruption, and the VM's life around the runs.
 */
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { instanceStatus, stopInstance } from '../../src/client/control.js'
import { eventually, processesMentioning, root, useTempHome, leftoversUnder } from '../helpers.js'

const home = useTempHome()
const project = path.join(root, 'test/projects/vitest-app')
const vitestBin = path.join(root, 'node_modules/.bin/vitest')

function runVitest(name: string, pool: 'forks' | 'threads', extraEnv: Record<string, string> = {}) {
  return execa(vitestBin, ['run', '--root', project, '--pool', pool], {
    env: { STACK_EMULATOR_NAME: name, EXPECTED_POOL: pool, RUN_ID: `${pool}-${Date.now()}`, ...extraEnv },
    reject: false,
    all: true,
  })
}

afterAll(async () => {
  for (const name of ['forks', 'threads', 'watch', 'sigterm']) await stopInstance(name)
  expect(await leftoversUnder(home)).toEqual([])
})

describe('vitest plugin', () => {
  for (const pool of ['forks', 'threads'] as const) {
    it(`injects and sets the env for workers in the ${pool} pool, releases at the end, and the next run starts clean`, async () => {
      for (let run = 0; run < 2; run++) {
        const result = await runVitest(pool, pool)
        expect(result.exitCode, result.all).toBe(0)
        expect(result.all).toMatch(/2 passed/)
        // The last lease out stopped the VM: nothing of this instance is left running.
        expect(await eventually(() => processesMentioning(path.join(home, 'state', pool)).length === 0, 3000)).toBe(true)
      }
    })
  }

  it('resets the VM before each watch-mode rerun', async () => {
    const result = await execa(process.execPath, [path.join(root, 'test/programs/watch-vitest.mjs'), project], {
      env: { STACK_EMULATOR_NAME: 'watch', EXPECTED_POOL: 'forks', RUN_ID: 'watch' },
      reject: false,
    })
    expect(result.exitCode, result.stderr).toBe(0)
    const { runs } = JSON.parse(result.stdout.trim().split('\n').pop()!)
    // The second run finds no user from the first only if the rerun reset the VM.
    expect(runs).toEqual([
      { failed: 0, passed: 2 },
      { failed: 0, passed: 2 },
    ])
    // Watch mode keeps the VM alive after the run (until its idle timeout), as a dev server does.
    const status = await instanceStatus('watch')
    expect(status).toMatchObject({ keepAlive: true, leases: [] })
    await stopInstance('watch')
  })

  it('releases the lease when Vitest is interrupted with SIGTERM', async () => {
    const child = runVitest('sigterm', 'forks', { HOLD_MS: '60000' })
    expect(await eventually(async () => (await instanceStatus('sigterm'))?.leases.length === 1, 60_000, 200)).toBe(true)
    child.kill('SIGTERM')
    await child
    expect(await eventually(() => processesMentioning(path.join(home, 'state', 'sigterm')).length === 0, 15_000)).toBe(true)
  })
})
