/**
 * The emulator's side of a failed test (issue 24): a Playwright run (Debian's chromium) and a
 * Vitest run, each with one test that fails on purpose after a backend request, report the
 * backend's log line of that request; `logs --since` and `logs -f` through the CLI, on a VM
 * restored from its snapshot (its services' output is in the guest's journal).
 */
import fs from 'node:fs'
import path from 'node:path'
import { execa, type ResultPromise } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { stopInstance } from '../../src/client/control.js'
import { cli, cliPath, eventually, http, leftoversUnder, root, serverHeaders, useTempHome } from '../helpers.js'

const home = useTempHome('se-logs-')
const marker = () => `m${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`
/** The fixture backend's line for a request (Stack Auth's route handler format). */
const answered = (m: string, status: number) =>
  new RegExp(`\\[    RES\\] \\[[\\w-]+\\] GET http://127\\.0\\.0\\.1:\\d+/api/v1/users\\?marker=${m}: ${status} \\(in \\d+ms\\)`)

afterAll(async () => {
  for (const name of ['pw-logs', 'vt-logs', 'cli-logs']) await stopInstance(name)
  expect(await leftoversUnder(home)).toEqual([])
})

describe("a failed test's report", () => {
  it("Playwright: the failed test has an attachment with the backend's line of its request; the passing one none", async () => {
    const project = path.join(root, 'test/projects/playwright-logs')
    const m = marker()
    const result = await execa(
      path.join(root, 'node_modules/.bin/playwright'),
      ['test', '--config', path.join(project, 'playwright.config.ts'), '--reporter', 'json'],
      {
        cwd: project,
        env: { PW_INSTANCE: 'pw-logs', LOG_MARKER: m },
        reject: false,
      },
    )
    expect(result.exitCode, result.stderr).toBe(1)
    const specs = JSON.parse(result.stdout).suites.flatMap((s: any) => s.specs)
    const byTitle = Object.fromEntries(specs.map((spec: any) => [spec.title, spec.tests[0].results[0]]))
    const failed = byTitle['fails on purpose after a backend request from the page']
    expect(failed.status).toBe('failed')
    const attachment = failed.attachments.find((a: any) => a.name === 'stack-emulator logs')
    expect(attachment?.contentType).toBe('text/plain')
    const text = Buffer.from(attachment.body, 'base64').toString('utf8')
    expect(text).toMatch(answered(m, 200))
    expect(text).toMatch(
      /^stack-emulator: instance "pw-logs", .* of each source its last 200 lines \(at most 64 KiB\)\n--- the services' output: journalctl -u stack.service \(in the guest\) ---\n/,
    )
    expect(text).toMatch(/\n--- the supervisor's log: .*supervisor\.log ---\n/)
    const passed = byTitle['passes: its report gets no logs']
    expect(passed.status).toBe('passed')
    expect(passed.attachments.filter((a: any) => a.name === 'stack-emulator logs')).toEqual([])
  })

  it("Vitest: the failed test's meta and a printed block have the backend's line of its request; the passing one nothing", async () => {
    const project = path.join(root, 'test/projects/vitest-logs')
    const report = path.join(home, 'vitest-report.json')
    const m = marker()
    const result = await execa(
      path.join(root, 'node_modules/.bin/vitest'),
      ['run', '--root', project, '--reporter=default', '--reporter=json', `--outputFile.json=${report}`],
      {
        env: { VT_INSTANCE: 'vt-logs', LOG_MARKER: m },
        reject: false,
        all: true,
      },
    )
    expect(result.exitCode, result.all).toBe(1)
    const tests = JSON.parse(fs.readFileSync(report, 'utf8')).testResults.flatMap((f: any) => f.assertionResults)
    const byTitle = Object.fromEntries(tests.map((t: any) => [t.title, t]))
    const failed = byTitle['fails on purpose after a backend request']
    expect(failed.status).toBe('failed')
    expect(failed.meta.stackEmulatorLogs).toMatch(answered(m, 200))
    expect(failed.meta.stackEmulatorLogs).toMatch(/^stack-emulator: instance "vt-logs", /)
    expect(result.all).toMatch(answered(m, 200)) // the printed block
    expect(byTitle['passes: its report gets no logs'].status).toBe('passed')
    expect(byTitle['passes: its report gets no logs'].meta.stackEmulatorLogs).toBeUndefined()
  })
})

describe('stack-emulator logs', () => {
  const name = 'cli-logs'
  let backendUrl = ''
  let headers: Record<string, string> = {}
  const request = async (m: string) => expect((await http(`${backendUrl}/api/v1/users?marker=${m}`, { headers })).status).toBe(200)

  it("--since: only the services' lines from then on (not the boot's), from the restored guest's journal", async () => {
    const started = await cli(['start', '--name', name, '--json'])
    expect(started.exitCode, started.stderr).toBe(0)
    const summary = JSON.parse(started.stdout)
    expect(summary.origin).toBe('snapshot')
    backendUrl = summary.backendUrl
    headers = serverHeaders(summary.env)
    const before = marker()
    await request(before)
    const all = await cli(['logs', '--name', name])
    expect(all.stdout).toMatch(/fixture-server: listening/) // the boot, before the snapshot
    expect(all.stdout).toMatch(answered(before, 200))
    const since = Date.now()
    const m = marker()
    await request(m)
    const recent = await cli(['logs', '--name', name, '--since', `@${since / 1000}`])
    expect(recent.exitCode, recent.stderr).toBe(0)
    expect(recent.stdout).toMatch(/^--- the services' output: journalctl -u stack.service \(in the guest\) ---\n/)
    expect(recent.stdout).toMatch(answered(m, 200))
    expect(recent.stdout).not.toMatch(/fixture-server: listening/)
    expect((await cli(['logs', '--name', name, '--since', '10m'])).stdout).toMatch(answered(m, 200))
    // The supervisor's log by its own stamps (a line without one goes with the line above).
    fs.appendFileSync(
      path.join(home, 'state', name, 'supervisor.log'),
      `2000-01-01T00:00:00.000Z an old line\n${new Date().toISOString()} a line of now\n  its detail\n`,
    )
    const supervisor = await cli(['logs', '--name', name, '--supervisor', '--since', '10m'])
    expect(supervisor.exitCode, supervisor.stderr).toBe(0)
    expect(supervisor.stdout).toMatch(/Z a line of now\n {2}its detail$/)
    expect(supervisor.stdout).not.toMatch(/an old line/)
  })

  it('-f: prints new lines once each, across a reset, until Ctrl-C; and ends by itself when the instance stops', async () => {
    const follow = () => {
      const child = execa(process.execPath, [cliPath, 'logs', '--name', name, '-f'], { reject: false, all: true, buffer: true })
      let out = ''
      child.all!.on('data', (chunk: Buffer) => (out += chunk.toString()))
      return { child, out: () => out }
    }
    const first = follow()
    expect(await eventually(() => first.out().includes("--- the services' output"), 60_000)).toBe(true)
    const m = marker()
    await request(m)
    expect(await eventually(() => answered(m, 200).test(first.out()), 60_000), first.out()).toBe(true)
    // A reset swaps in another guest: its journal is followed from where the last one left off.
    expect((await cli(['reset', '--name', name, '--force'])).exitCode).toBe(0)
    const afterReset = marker()
    await request(afterReset)
    expect(await eventually(() => answered(afterReset, 200).test(first.out()), 60_000), first.out()).toBe(true)
    first.child.kill('SIGINT')
    const ended = await first.child
    expect([ended.exitCode, ended.signal]).toEqual([0, undefined])
    for (const line of [m, afterReset])
      expect(
        first
          .out()
          .split('\n')
          .filter((l) => answered(line, 200).test(l)),
      ).toHaveLength(1)

    const second = follow()
    expect(await eventually(() => second.out().includes("--- the services' output"), 60_000)).toBe(true)
    expect((await cli(['stop', '--name', name])).exitCode).toBe(0)
    const stopped = await (second.child as ResultPromise)
    expect(stopped.exitCode).toBe(0)
    expect(second.out()).toMatch(/Instance "cli-logs" stopped\./)
  })
})
