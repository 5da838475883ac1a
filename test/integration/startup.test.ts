/**
 * The start-up breakdown the bench and `--json` report: its phases are measured back to back,
 * so they must add up to the total (an honest breakdown), and the VM's own phases are there.
 */
import { afterAll, describe, expect, it } from 'vitest'
import { acquire } from '../../src/client/acquire.js'
import { stopInstance } from '../../src/client/control.js'
import { cli, leftoversUnder, useTempHome } from '../helpers.js'

const home = useTempHome()
const sum = (phases: Record<string, number>) => Object.values(phases).reduce((a, b) => a + b, 0)

afterAll(async () => {
  for (const name of ['phases', 'cli-phases']) await stopInstance(name)
  expect(await leftoversUnder(home)).toEqual([])
})

describe('start-up phases', () => {
  it("of acquire() from nothing add up to its duration, and name the VM start's own phases", async () => {
    // The first start of a config file also takes its seeded snapshot: timed as its own phases.
    const seeding = await acquire({ name: 'phases', onLog: () => {} })
    expect(Object.keys(seeding.startup.phases)).toEqual(['options and image', 'lock', 'supervisor', 'VM', 'credentials', 'seeded snapshot'])
    expect(Math.abs(sum(seeding.startup.phases) - seeding.startup.durationMs)).toBeLessThanOrEqual(Math.max(2, seeding.startup.durationMs * 0.02))
    await seeding.release()
    await stopInstance('phases')

    const emulator = await acquire({ name: 'phases', keepAlive: true, onLog: () => {} }) // kept for the attach below
    const { durationMs, phases, vmPhases, startedVm } = emulator.startup
    expect(startedVm).toBe(true)
    expect(Object.keys(phases)).toEqual(['options and image', 'lock', 'supervisor', 'VM', 'credentials'])
    expect(Math.abs(sum(phases) - durationMs)).toBeLessThanOrEqual(Math.max(2, durationMs * 0.02))
    expect(Object.keys(vmPhases)).toEqual(expect.arrayContaining(['supervisor start', 'QEMU launch', 'restore', 'first healthy probe', 'share and clock']))
    expect(Object.values(vmPhases).every((ms) => ms >= 0)).toBe(true)
    await emulator.release()
    const attached = await acquire({ name: 'phases', onLog: () => {} })
    expect(attached.startup.startedVm).toBe(false)
    await attached.release()
  })

  it('of `stack-emulator start --json` add up too', async () => {
    const result = await cli(['start', '--name', 'cli-phases', '--json'])
    expect(result.exitCode).toBe(0)
    const { startup } = JSON.parse(result.stdout)
    expect(Math.abs(sum(startup.phases) - startup.durationMs)).toBeLessThanOrEqual(Math.max(2, startup.durationMs * 0.02))
  })
})
