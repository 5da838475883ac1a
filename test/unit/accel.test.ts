import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cachedAccelVerdict, chooseAccel } from '../../src/drivers/qemu/accel.js'
import { readSettings } from '../../src/settings.js'
import { readQemuSettings } from '../../src/drivers/qemu/settings.js'
import { driverFor } from '../../src/drivers/registry.js'

const cacheRoot = fs.mkdtempSync(path.join(os.tmpdir(), 'se-accel-'))
afterAll(() => fs.rmSync(cacheRoot, { recursive: true, force: true }))

describe('chooseAccel', () => {
  it('says the fallback once, when it probes; the cached verdict is quiet', async () => {
    // A QEMU that does not exist fails the probe at once, without starting anything.
    const qemu = { path: path.join(cacheRoot, 'no-such-qemu'), version: '0.0.0' }
    expect(await cachedAccelVerdict(cacheRoot, qemu)).toMatchObject({ verdict: undefined })
    const first = await chooseAccel({ choice: 'auto', qemu, cacheRoot })
    expect(first).toMatchObject({ accel: 'tcg', warning: expect.stringMatching(/is not usable here .*falling back to TCG/) })
    expect(await chooseAccel({ choice: 'auto', qemu, cacheRoot })).toEqual({ accel: 'tcg' })
    expect(await cachedAccelVerdict(cacheRoot, qemu)).toMatchObject({ verdict: { ok: false } })
  })

  it('does not probe for tcg', async () => {
    expect(await chooseAccel({ choice: 'tcg', qemu: { path: 'unused', version: '0' }, cacheRoot })).toEqual({ accel: 'tcg' })
  })
})

describe('the QEMU settings', () => {
  // The settings carry the STACK_EMULATOR_* variables (to the supervisor too); the driver reads its own from them.
  const qemuSettings = (env: NodeJS.ProcessEnv) => readQemuSettings(readSettings(env).env)

  it('are read by the driver from the variables the settings carry, with their defaults', () => {
    expect(readSettings({ HOME: '/root', STACK_EMULATOR_ACCEL: 'tcg' }).env).toEqual({ STACK_EMULATOR_ACCEL: 'tcg' })
    expect(qemuSettings({})).toEqual({ binary: 'qemu-system-x86_64', accel: 'auto', maxSeededSnapshots: 5 })
    expect(
      qemuSettings({ STACK_EMULATOR_QEMU: '/opt/q/bin/qemu-system-x86_64', STACK_EMULATOR_ACCEL: 'TCG', STACK_EMULATOR_MAX_SEEDED_SNAPSHOTS: '12' }),
    ).toEqual({ binary: '/opt/q/bin/qemu-system-x86_64', accel: 'tcg', maxSeededSnapshots: 12 })
    for (const bad of ['0', '-1', '2.5', 'many']) {
      expect(() => qemuSettings({ STACK_EMULATOR_MAX_SEEDED_SNAPSHOTS: bad })).toThrow(
        expect.objectContaining({
          code: 'BAD_OPTION',
          message: expect.stringMatching(/^STACK_EMULATOR_MAX_SEEDED_SNAPSHOTS must be a whole number of snapshots, at least 1; got /),
        }),
      )
    }
    expect(() => qemuSettings({ STACK_EMULATOR_ACCEL: 'xen' })).toThrow(
      expect.objectContaining({
        code: 'BAD_OPTION',
        message: expect.stringMatching(/^STACK_EMULATOR_ACCEL must be one of auto, kvm, hvf, tcg; got "xen"/),
      }),
    )
  })

  it('are checked when the client resolves the image, before anything is built or started', async () => {
    const settings = readSettings({ STACK_EMULATOR_HOME: '/nonexistent/se-home', STACK_EMULATOR_ACCEL: 'xen' })
    await expect(driverFor('qemu').resolve(undefined, { settings, progress: () => {}, log: () => {} })).rejects.toMatchObject({
      code: 'BAD_OPTION',
      message: expect.stringMatching(/^STACK_EMULATOR_ACCEL must be one of/),
    })
    expect(fs.existsSync('/nonexistent/se-home')).toBe(false)
  })
})
