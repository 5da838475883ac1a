/**
 * What the user chose on purpose is reported as such (issue 24): a STACK_EMULATOR_QEMU that is
 * there but is no QEMU is not "not found", and no package is suggested for it; a named
 * STACK_EMULATOR_ACCEL that cannot work fails with the reason instead of falling back to TCG.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { chooseAccel } from '../../src/drivers/qemu/accel.js'
import { findQemu } from '../../src/drivers/qemu/binary.js'
import { qemuFindings } from '../../src/drivers/qemu/doctor.js'
import { readQemuSettings } from '../../src/drivers/qemu/settings.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'se-qemu-choices-'))
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }))
const cli = path.resolve(import.meta.dirname, '../../dist/cli/main.js')
const byId = (findings: { id: string }[]) => Object.fromEntries(findings.map((f) => [f.id, f]))

describe('STACK_EMULATOR_QEMU', () => {
  it('a binary that exists but is no QEMU: says it does not run, naming the variable and what it answered', async () => {
    const error = await findQemu('/bin/false').catch((e) => e)
    expect(error).toMatchObject({
      code: 'QEMU_UNUSABLE',
      message: expect.stringMatching(
        /^STACK_EMULATOR_QEMU=\/bin\/false is not a QEMU that runs: `\/bin\/false --version` exited with code 1( \(no output\))?\. Point STACK_EMULATOR_QEMU at a QEMU system emulator/,
      ),
    })
    expect(error.message).not.toMatch(/Did not find|apt-get/)
    const script = path.join(dir, 'not-qemu')
    fs.writeFileSync(script, '#!/bin/sh\necho "usage: not-qemu [file]"\n', { mode: 0o755 })
    expect(await findQemu(script).catch((e) => e)).toMatchObject({
      code: 'QEMU_UNUSABLE',
      message: expect.stringMatching(/`.*not-qemu --version` printed no QEMU version\.[\s\S]*\nusage: not-qemu \[file\]$/),
    })
  })

  it('a path that does not exist: not found, with the variable to correct rather than a package', async () => {
    const error = await findQemu(path.join(dir, 'bin/qemu-system-x86_64')).catch((e) => e)
    expect(error).toMatchObject({
      code: 'QEMU_NOT_FOUND',
      message: expect.stringMatching(/which STACK_EMULATOR_QEMU names\. Correct the path in STACK_EMULATOR_QEMU, or unset it/),
    })
    expect(error.message).not.toMatch(/apt-get/)
  })

  it('doctor: fails it with the reason and the variable as the fix; no package for --fix to install', async () => {
    const qemu = byId(
      await qemuFindings({
        qemu: readQemuSettings({ STACK_EMULATOR_QEMU: '/bin/false', STACK_EMULATOR_ACCEL: 'tcg' }),
        cacheRoot: dir,
        root: true,
        kvm: '/nowhere',
      }),
    ).qemu
    expect(qemu).toEqual({
      id: 'qemu',
      status: 'fail',
      message: expect.stringMatching(/^STACK_EMULATOR_QEMU=\/bin\/false is not a QEMU that runs/),
      fix: 'point STACK_EMULATOR_QEMU at a QEMU system emulator, or unset it',
    })
    const r = await execa(process.execPath, [cli, 'doctor', '--json'], {
      env: { ...process.env, STACK_EMULATOR_HOME: path.join(dir, 'home'), STACK_EMULATOR_CACHE_DIR: '', STACK_EMULATOR_QEMU: '/bin/false' },
      reject: false,
    })
    expect(r.exitCode).toBe(1)
    expect(JSON.parse(r.stdout).findings).toContainEqual(qemu)
    expect(r.stderr).not.toMatch(/qemu-system-x86/)
  })
})

describe('STACK_EMULATOR_ACCEL named', () => {
  // A QEMU that does not exist fails any probe at once, without starting anything.
  const broken = { path: path.join(dir, 'no-such-qemu'), version: '0.0.0' }

  it('kvm that does not work is an error with the reason, every time (no fallback, no cached silence)', async () => {
    const cacheRoot = fs.mkdtempSync(path.join(dir, 'cache-'))
    for (let i = 0; i < 2; i++) {
      await expect(chooseAccel({ choice: 'kvm', qemu: broken, cacheRoot })).rejects.toMatchObject({
        code: 'ACCEL_UNAVAILABLE',
        message: expect.stringMatching(/^STACK_EMULATOR_ACCEL=kvm, but KVM is not usable here: .*Set STACK_EMULATOR_ACCEL=tcg, or unset it/),
      })
    }
    // auto still falls back, quietly once the verdict is cached.
    expect(await chooseAccel({ choice: 'auto', qemu: broken, cacheRoot })).toEqual({ accel: 'tcg' })
  })

  it('an accelerator of another platform is an error, not TCG', async () => {
    const other = process.platform === 'darwin' ? 'kvm' : 'hvf'
    await expect(chooseAccel({ choice: other, qemu: broken, cacheRoot: dir })).rejects.toMatchObject({
      code: 'ACCEL_UNAVAILABLE',
      message: expect.stringContaining(`STACK_EMULATOR_ACCEL=${other} cannot be used on ${process.platform}`),
    })
  })

  it('doctor fails it where auto would only warn', async () => {
    const fake = path.join(dir, 'qemu-system-x86_64')
    fs.writeFileSync(fake, '#!/bin/sh\necho "QEMU emulator version 7.2.99"\n', { mode: 0o755 })
    const finding = async (accel: string) =>
      byId(
        await qemuFindings({
          qemu: readQemuSettings({ STACK_EMULATOR_QEMU: fake, STACK_EMULATOR_ACCEL: accel }),
          cacheRoot: fs.mkdtempSync(path.join(dir, 'c-')),
          root: true,
          kvm: path.join(dir, 'no-kvm'),
        }),
      ).accel
    expect(await finding('auto')).toMatchObject({ status: 'warn', message: expect.stringMatching(/VMs will run under TCG/) })
    expect(await finding('kvm')).toMatchObject({
      status: 'fail',
      message: expect.stringMatching(/starts fail \(STACK_EMULATOR_ACCEL=kvm\)/),
      fix: expect.stringContaining('STACK_EMULATOR_ACCEL=tcg'),
    })
  })
})
