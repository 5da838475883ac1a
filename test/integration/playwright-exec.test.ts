/**
 * The Playwright fixture and globalSetup (through the example app's suite, in Debian's
 * chromium), a Vitest run and a Playwright run sharing one VM, and `stack-emulator exec`.
 * `npm run example` itself (run.mjs: the same two suites) runs in `.ci/run`, not here.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { stopInstance } from '../../src/client/control.js'
import { cli, eventually, processesMentioning, qemuProcesses, root, useTempHome, leftoversUnder } from '../helpers.js'

const home = useTempHome()
const example = path.join(root, 'examples/users-app')
const instanceDir = (name: string) => path.join(home, 'state', name)

afterAll(async () => {
  for (const name of ['pw', 'pw-options', 'exec']) await stopInstance(name)
  expect(await leftoversUnder(home)).toEqual([])
})

describe('playwright', () => {
  // The example's two suites at once, as `npm run example` runs them (one run id: each suite
  // tolerates the other's users).
  it('reaches the webServer app, drives chromium against the dashboard, and merges with user fixtures, beside a Vitest run on the same VM', async () => {
    // One VM: never two QEMUs at once (its first start restarts it once to take the seeded snapshot).
    let mostAtOnce = 0
    const watcher = setInterval(() => (mostAtOnce = Math.max(mostAtOnce, qemuProcesses(instanceDir('pw')).length)), 50)
    const env = { STACK_EMULATOR_NAME: 'pw', EXAMPLE_PORT: '3191', EXAMPLE_RUN_ID: Date.now().toString(36) }
    const [result, vitest] = await Promise.all([
      execa(path.join(root, 'node_modules/.bin/playwright'), ['test', '--config', path.join(example, 'playwright.config.ts'), '--reporter', 'json'], {
        cwd: example,
        env,
        reject: false,
      }),
      execa(path.join(root, 'node_modules/.bin/vitest'), ['run', '--root', example], { cwd: example, env, reject: false, all: true }),
    ])
    clearInterval(watcher)
    expect(vitest.exitCode, vitest.all).toBe(0)
    expect(stripVTControlCharacters(vitest.all)).toMatch(/Tests +\d+ passed/)
    const report = JSON.parse(result.stdout)
    // Every spec of every file and describe block (the auth-setup project's first).
    const specs = (suite: any): any[] => [...(suite.specs ?? []), ...(suite.suites ?? []).flatMap(specs)]
    const tests = report.suites.flatMap(specs).map((spec: any) => [spec.title, spec.tests[0].results[0].status])
    expect(tests).toEqual([
      ['sign in once', 'passed'],
      ['signIn(page, user): the first page load is signed in, no sign-in page visited; signOut(page) signs out', 'passed'],
      ['the sign-in form, as a visitor uses it', 'passed'],
      ['test 1 starts signed in', 'passed'],
      ['test 2 starts signed in', 'passed'],
      ['the web server and the fixture see the same emulator', 'passed'],
      ['signs up through the page, then follows the link of the verification email', 'passed'],
      ['the dashboard answers in the browser', 'passed'],
    ])
    expect(result.exitCode).toBe(0)
    expect(mostAtOnce).toBe(1)
    expect(await eventually(() => processesMentioning(instanceDir('pw')).length === 0, 5000)).toBe(true)
  })

  it('takes its options from use.stackEmulatorOptions: webServer, globalSetup and fixture share one instance and its seed, run after run', async () => {
    const project = path.join(root, 'test/projects/playwright-options')
    const seedLog = path.join(home, 'pw-options-seed.log')
    // A config file of its own: the seeded snapshot this run takes is its alone.
    const configFile = path.join(fs.mkdtempSync(path.join(home, 'pw-options-')), 'stack.config.ts')
    fs.writeFileSync(configFile, 'export const config = {}\n')
    const run = () =>
      execa(path.join(root, 'node_modules/.bin/playwright'), ['test', '--config', path.join(project, 'playwright.config.ts'), '--reporter', 'line'], {
        cwd: project,
        env: { PW_INSTANCE: 'pw-options', EXAMPLE_PORT: '3193', SEED_LOG: seedLog, PW_CONFIG_FILE: configFile },
        reject: false,
        all: true,
      })
    const first = await run()
    expect(first.exitCode, first.all).toBe(0)
    expect(fs.readFileSync(seedLog, 'utf8')).toBe('seeded\n')
    expect(first.all).toMatch(/taking the seeded snapshot|it is taken when the suite with seed/)
    expect(fs.readdirSync(path.join(home, 'state'))).toContain('pw-options')
    expect(fs.readdirSync(path.join(home, 'state'))).not.toContain('default')
    expect(await leftoversUnder(instanceDir('pw-options'))).toEqual([])
    // The next run starts from that snapshot: the seed's user is there, and the seed does not run again.
    const second = await run()
    expect(second.exitCode, second.all).toBe(0)
    expect(fs.readFileSync(seedLog, 'utf8')).toBe('seeded\n')
    expect(second.all).not.toMatch(/seeded snapshot/)
    expect(await leftoversUnder(instanceDir('pw-options'))).toEqual([])
  })
})

describe('stack-emulator exec', () => {
  it('runs the command with the env, passes its exit code through, and leaves nothing running', async () => {
    const out = path.join(home, 'exec-env.json')
    const script = `require('fs').writeFileSync(${JSON.stringify(out)}, JSON.stringify(process.env)); process.exit(7)`
    const result = await cli(['exec', '--name', 'exec', '--', process.execPath, '-e', script])
    expect(result.exitCode, result.stderr).toBe(7)
    const env = JSON.parse(fs.readFileSync(out, 'utf8'))
    expect(env.STACK_API_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    expect(env.STACK_PROJECT_ID).toBeTruthy()
    expect(env.STACK_SECRET_SERVER_KEY).toBeTruthy()
    // Keys reach the command, never a log.
    expect(result.stderr).not.toContain(env.STACK_SECRET_SERVER_KEY)
    expect(fs.readFileSync(path.join(instanceDir('exec'), 'supervisor.log'), 'utf8')).not.toContain(env.STACK_SECRET_SERVER_KEY)
    expect(await eventually(() => processesMentioning(instanceDir('exec')).length === 0, 3000)).toBe(true)
  })

  it('forwards SIGTERM to the command and releases', async () => {
    const child = cli([
      'exec',
      '--name',
      'exec',
      '--',
      process.execPath,
      '-e',
      'process.on("SIGTERM", () => process.exit(42)); setInterval(() => {}, 1000); console.log("ready")',
    ])
    await new Promise<void>((resolve) => child.stdout!.on('data', (d: Buffer) => d.toString().includes('ready') && resolve()))
    child.kill('SIGTERM')
    expect((await child).exitCode).toBe(42)
    expect(await eventually(() => processesMentioning(instanceDir('exec')).length === 0, 3000)).toBe(true)
  })

  it("exits 128 + the signal's number when a signal ends the command", async () => {
    const result = await cli(['exec', '--name', 'exec', '--', process.execPath, '-e', 'process.kill(process.pid, "SIGKILL")'])
    expect(result.exitCode).toBe(128 + os.constants.signals.SIGKILL)
  })

  it('says how to call it when the command is missing', async () => {
    const result = await cli(['exec', '--name', 'exec'])
    expect(result.exitCode).toBe(2)
    expect(result.stderr).toMatch(/exec needs a command, e\.g\. stack-emulator exec -- npm test\. Run `stack-emulator exec --help`/)
  })
})
