/**
 * The CLI with real VMs (issue 24): a first start on a terminal keeps its one-time notice and
 * its log lines on lines of their own; `ps` lists two running instances; `stop --all` stops
 * both; STACK_EMULATOR_ACCEL=kvm on a host whose KVM does not work fails with the reason.
 */
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { chooseAccel } from '../../src/drivers/qemu/accel.js'
import { pollUntil } from '../../src/poll.js'
import { findQemu } from '../../src/drivers/qemu/binary.js'
import { cli, cliPath, instanceNames, leftoversUnder, privateCache, processesMentioning, qemuProcesses, useTempHome } from '../helpers.js'
import { screen } from '../terminal.js'

const home = useTempHome('se-instances-')

afterAll(async () => {
  for (const name of instanceNames(home)) await cli(['stop', '--name', name])
  expect(await leftoversUnder(home)).toEqual([])
})

describe('STACK_EMULATOR_ACCEL=kvm', () => {
  it('where KVM does not work, start fails with the reason instead of falling back to TCG; nothing is left running', async () => {
    // What this host's KVM does, asked on its own (a private cache: a fresh probe).
    const qemu = await findQemu('qemu-system-x86_64')
    const works = (await chooseAccel({ choice: 'auto', qemu, cacheRoot: path.join(home, 'probe') })).accel === 'kvm'
    const r = await cli(['start', '--name', 'kvm', '--json'], { STACK_EMULATOR_ACCEL: 'kvm' })
    if (works) {
      // Not these machines (QEMU aborts in kvm_buf_set_msrs), but a host where KVM works runs on it.
      expect(JSON.parse(r.stdout).accel).toBe('kvm')
      return
    }
    expect(r.exitCode, r.stderr).toBe(1)
    expect(r.stderr).toMatch(
      /stack-emulator: STACK_EMULATOR_ACCEL=kvm, but KVM is not usable here: (QEMU exited|\/dev\/kvm)[^\n]*\. .*Set STACK_EMULATOR_ACCEL=tcg/,
    )
    expect(r.stderr).not.toMatch(/falling back|using TCG/)
    expect(JSON.parse(r.stdout).error.code).toBe('ACCEL_UNAVAILABLE')
    expect(await leftoversUnder(path.join(home, 'state', 'kvm'), 5000)).toEqual([])
  })
})

describe('ps and stop --all with two VMs', () => {
  it('a first start on a terminal: the one-time notice and the log lines stay, each on its own line', async () => {
    // A cache of its own without snapshots: this start captures the ready snapshot (and probes the accelerator).
    const cache = privateCache(home)
    process.env.STACK_EMULATOR_CACHE_DIR = cache
    const command = [process.execPath, cliPath, 'start', '--name', 'one'].map((a) => `'${a}'`).join(' ')
    const r = await execa('script', ['-qec', command, '/dev/null'], { env: { ...process.env }, reject: false, stdin: 'ignore', timeout: 400_000 })
    expect(r.exitCode, r.stdout).toBe(0)
    const lines = screen(r.stdout)
    expect(lines, r.stdout).toContainEqual(expect.stringMatching(/^stack-emulator: first start of this image: booting it once to capture its ready snapshot/))
    for (const line of lines) expect(line.split('stack-emulator:').length, JSON.stringify(r.stdout)).toBeLessThanOrEqual(2)
    expect(lines).toContainEqual(expect.stringMatching(/^Stack Auth emulator "one" is ready \((?:snapshot|cold-boot), tcg, \d+ ms\)$/))
  }, 420_000)

  it('ps lists both running instances with their driver, image, URLs, leases and uptime; stop --all stops both', async () => {
    const two = await cli(['start', '--name', 'two', '--json'])
    expect(two.exitCode, two.stderr).toBe(0)
    const started = JSON.parse(two.stdout)
    expect(started.origin).toBe('snapshot') // from the snapshot the first start captured
    // A lease to see: exec holds one while its command runs (written without --); ps says
    // `resetting` meanwhile, as exec's suite gets the used VM restored first.
    const holder = execa(process.execPath, [cliPath, 'exec', '--name', 'two', 'sleep', '300'], { env: { ...process.env }, reject: false })
    const list = async () => Object.fromEntries(JSON.parse((await cli(['ps', '--json'])).stdout).instances.map((i: { name: string }) => [i.name, i]))
    let byName: Record<string, any> = {}
    await pollUntil(async () => (byName = await list()).two?.leases.length === 1 && byName.two.state === 'ready', {
      timeoutMs: 60_000,
      intervalMs: 200,
      timeoutError: () => new Error(`exec's lease never showed: ${JSON.stringify(byName)}`),
    })
    for (const name of ['one', 'two']) {
      expect(byName[name]).toMatchObject({
        state: 'ready',
        driver: 'qemu',
        image: expect.any(String),
        urls: { backend: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/) },
        pid: expect.any(Number),
        accel: 'tcg',
        startedAt: expect.any(String),
        uptimeMs: expect.any(Number),
      })
    }
    expect(byName.one.leases).toEqual([])
    expect(byName.two.leases).toEqual([expect.objectContaining({ pid: holder.pid })])
    expect(byName.two.urls.backend).toBe(started.backendUrl)
    expect(byName.one.urls.backend).not.toBe(byName.two.urls.backend)
    const table = (await cli(['ps'])).stdout.split('\n')
    expect(table[0]).toMatch(/^NAME +STATE +DRIVER +IMAGE +LEASES +UPTIME +URLS$/)
    for (const [name, leases] of [
      ['one', 0],
      ['two', 1],
    ])
      expect(table).toContainEqual(expect.stringMatching(new RegExp(`^${name} +ready +qemu +\\S+ +${leases} +\\d+[smhd]\\S* +(\\S+ )*backend=http:`)))

    // Stops both, the one a command still uses too (the command then fails as its emulator went away).
    const stopped = await cli(['stop', '--all', '--json'])
    expect(stopped.exitCode, stopped.stderr).toBe(0)
    holder.kill('SIGTERM')
    await holder
    expect(JSON.parse(stopped.stdout).stopped.sort()).toEqual(['one', 'two'])
    expect(qemuProcesses(home)).toEqual([])
    expect(processesMentioning(path.join(home, 'state'))).toEqual([])
    const after = JSON.parse((await cli(['ps', '--json'])).stdout).instances as { name: string; state: string }[]
    expect(after.filter((i) => ['one', 'two'].includes(i.name)).map((i) => i.state)).toEqual(['stopped', 'stopped'])
  })
})
