/**
 * `stack-emulator doctor` against small fake programs on PATH (a QEMU that prints its version,
 * busybox, apt-get), so no finding depends on what this machine has installed.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { runChecks, type SYSTEM_FILES, type DoctorContext, type Finding } from '../../src/doctor/checks.js'
import { aptInstall } from '../../src/doctor/fix.js'
import { readSettings } from '../../src/settings.js'

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'se-doctor-'))
const bin = path.join(dir, 'bin')
fs.mkdirSync(bin)
const originalPath = process.env.PATH
// This worker's PATH only: the checks and the programs they start look here.
process.env.PATH = bin

afterAll(() => {
  process.env.PATH = originalPath
  fs.rmSync(dir, { recursive: true, force: true })
})

function program(name: string, script: string): string {
  const file = path.join(bin, name)
  fs.writeFileSync(file, `#!/bin/sh\n${script}\n`, { mode: 0o755 })
  return file
}

function context(files: Partial<typeof SYSTEM_FILES>, root = true): DoctorContext {
  const settings = readSettings({ STACK_EMULATOR_HOME: path.join(dir, 'home'), STACK_EMULATOR_QEMU: 'qemu-system-x86_64' })
  const nowhere = path.join(dir, 'nowhere')
  const userns = { subuid: nowhere, subgid: nowhere, usernsClone: nowhere, maxUserNamespaces: nowhere, apparmorUserns: nowhere }
  return { settings, root, files: { busybox: nowhere, syslinuxMbr: nowhere, chromium: nowhere, kvm: nowhere, ...userns, ...files } }
}

const byId = (findings: Finding[]) => Object.fromEntries(findings.map((f) => [f.id, f]))

describe('doctor checks', () => {
  it('reports QEMU and its version, a busybox with insmod, and what is missing with its package', async () => {
    program('qemu-system-x86_64', 'echo "QEMU emulator version 7.2.99 (Debian 1:7.2+dfsg-7)"')
    // insmod comes first and the list goes on: a reader that stopped early would kill it with SIGPIPE.
    const busybox = program('busybox', 'echo insmod; i=0; while [ $i -lt 20000 ]; do echo applet$i; i=$((i+1)); done')
    const mbr = path.join(dir, 'mbr.bin')
    fs.writeFileSync(mbr, '')
    const findings = byId(await runChecks(context({ busybox, syslinuxMbr: mbr }, false)))

    expect(findings.qemu).toEqual({ id: 'qemu', status: 'ok', message: `QEMU 7.2.99 at ${path.join(bin, 'qemu-system-x86_64')}` })
    expect(findings.busybox).toMatchObject({ status: 'ok' })
    expect(findings['syslinux-mbr']).toMatchObject({ status: 'ok' })
    expect(findings['qemu-img']).toMatchObject({ status: 'fail', fix: 'sudo apt-get install qemu-utils', packages: ['qemu-utils'] })
    expect(findings.chromium).toMatchObject({ status: 'warn', packages: ['chromium'] })
    expect(findings.accel).toMatchObject({ status: 'warn', message: expect.stringMatching(/no .*nowhere: VMs will run under TCG/) })
    // Not root, and no subordinate ids (nor newuidmap) here: root builds it into this user's cache.
    const cache = path.join(dir, 'home', 'cache')
    expect(findings.rootless).toMatchObject({
      status: 'warn',
      message: expect.stringMatching(/newuidmap not found; .* has no range of 65536 subordinate ids/),
      fix: expect.stringMatching(/^sudo apt-get install uidmap && sudo usermod --add-subuids 100000-165535 --add-subgids 100000-165535 /),
    })
    expect(findings.image).toMatchObject({ status: 'warn', fix: `sudo env "PATH=$PATH" STACK_EMULATOR_CACHE_DIR=${cache} npx stack-emulator image build` })
    expect(findings.newuidmap).toMatchObject({ status: 'fail', packages: ['uidmap'] })
    expect(findings.cache).toMatchObject({ status: 'ok', message: expect.stringContaining(path.join(dir, 'home', 'cache')) })
    expect(fs.statSync(path.join(dir, 'home', 'state')).mode & 0o777).toBe(0o700)
  })

  it('fails a busybox without insmod, and one that is not there', async () => {
    const busybox = program('busybox-dynamic', 'echo sh; echo ls')
    expect(byId(await runChecks(context({ busybox }))).busybox).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('has no insmod applet'),
      packages: ['busybox-static'],
    })
    expect(byId(await runChecks(context({}))).busybox).toMatchObject({
      status: 'fail',
      message: expect.stringContaining('not found'),
      fix: 'apt-get install busybox-static',
    })
  })
})

describe('doctor and the image setting', () => {
  const imageFinding = async (image: string) => {
    const ctx = context({})
    return byId(await runChecks({ ...ctx, settings: { ...ctx.settings, image } })).image
  }
  it('knows pulled images by name, and says how to pull a missing one', async () => {
    expect(await imageFinding('stack-auth@emulator-dev-20260401-1a2b3c4d')).toMatchObject({
      status: 'warn',
      fix: 'npx stack-emulator image pull --tag emulator-dev-20260401-1a2b3c4d',
    })
    expect(await imageFinding('stack-auth')).toMatchObject({ status: 'warn', fix: 'npx stack-emulator image pull' })
    expect(await imageFinding('stack-auth@bad')).toMatchObject({ status: 'fail', message: expect.stringMatching(/^Option "image" must be stack-auth@<tag>/) })
    const pulled = path.join(dir, 'home', 'cache', 'images', 'stack-auth-amd64-emulator-dev-latest')
    fs.mkdirSync(pulled, { recursive: true })
    fs.writeFileSync(path.join(pulled, 'manifest.json'), JSON.stringify({ name: 'stack-auth-amd64-emulator-dev-latest', fingerprint: 'x' }))
    if (process.arch === 'x64') expect(await imageFinding('stack-auth')).toMatchObject({ status: 'ok', message: expect.stringContaining(pulled) })
  })
})

describe('doctor --fix', () => {
  it('runs apt-get install with an argv, and apt-get update first when the lists are stale', async () => {
    const calls = path.join(dir, 'apt-calls')
    const updated = path.join(dir, 'apt-updated')
    program(
      'apt-get',
      `echo "$DEBIAN_FRONTEND $*" >> ${calls}
case "$1" in update) : > ${updated};; install) [ -f ${updated} ] || { echo "E: Unable to locate package zstd" >&2; exit 100; };; esac`,
    )
    const lines: string[] = []
    expect(await aptInstall(['zstd', 'cpio'], (line) => lines.push(line))).toBeUndefined()
    expect(fs.readFileSync(calls, 'utf8').trim().split('\n')).toEqual([
      'noninteractive install -y --no-install-recommends zstd cpio',
      'noninteractive update',
      'noninteractive install -y --no-install-recommends zstd cpio',
    ])
    expect(lines).toEqual([expect.stringMatching(/apt-get update/)])
  })

  it('says so when apt-get is not there', async () => {
    fs.rmSync(path.join(bin, 'apt-get'))
    expect(await aptInstall(['zstd'], () => {})).toMatch(/^apt-get not found/)
  })
})

describe('stack-emulator doctor', () => {
  it('prints one JSON object with --json and exits 1 when a check fails', async () => {
    const empty = fs.mkdtempSync(path.join(dir, 'empty-'))
    const cli = path.resolve(import.meta.dirname, '../../dist/cli/main.js')
    expect(fs.existsSync(cli), 'run `npm run build` first').toBe(true)
    const r = await execa(process.execPath, [cli, 'doctor', '--json'], {
      env: { PATH: empty, STACK_EMULATOR_HOME: path.join(dir, 'cli-home') },
      reject: false,
    })
    expect(r.exitCode).toBe(1)
    const report = JSON.parse(r.stdout)
    expect(report.ok).toBe(false)
    expect(report.findings).toContainEqual({
      id: 'qemu',
      status: 'fail',
      message: expect.stringContaining('not found'),
      fix: expect.stringMatching(/apt-get install qemu-system-x86$/),
    })
    for (const finding of report.findings) expect(Object.keys(finding)).toEqual(expect.arrayContaining(['id', 'status', 'message']))
    expect(r.stderr).toMatch(/to install what is missing: sudo apt-get update && sudo apt-get install -y --no-install-recommends qemu-system-x86 qemu-utils/)
  })
})
