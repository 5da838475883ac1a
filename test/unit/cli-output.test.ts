/**
 * What the CLI and the integrations print, against a stand-in emulator (driver external: a
 * supervisor, no VM): `start`'s output, STACK_EMULATOR_LOG, `ps` and `stop --all`, and on a real
 * terminal (util-linux `script`), log lines that never share the progress line (issue 24).
 * The project the commands run in has `@stackframe/js` 2.8.108 and the stand-in answers as a
 * backend from before the Hexclave rename: every acquire then logs one warning line.
 */
import fs from 'node:fs'
import http from 'node:http'
import type net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { pollUntil } from '../../src/poll.js'
import { readSettings } from '../../src/settings.js'
import { screen } from '../terminal.js'

const root = path.resolve(import.meta.dirname, '../..')
const cliPath = path.join(root, 'dist/cli/main.js')
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'se-cli-output-'))
const project = path.join(home, 'app')
const CREDENTIALS = {
  project_id: 'stand-in-project',
  publishable_client_key: 'pck-stand-in',
  secret_server_key: 'ssk-stand-in',
  super_secret_admin_key: 'sak-stand-in',
}
const WARNING = /^stack-emulator: @stackframe\/js 2\.8\.108 sends only X-Hexclave-\* headers/

let standIn: http.Server
let url: string
let healthy = true

/** This run's environment less its own stack-emulator and Vitest variables, with the stand-in as the emulator. */
const env = (extra: Record<string, string> = {}) =>
  ({
    ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(npm_|VITEST|STACK_EMULATOR_)/i.test(key))),
    STACK_EMULATOR_HOME: home,
    STACK_EMULATOR_CACHE_DIR: path.join(home, 'cache'),
    STACK_EMULATOR_DRIVER: 'external',
    STACK_EMULATOR_BACKEND_URL: url,
    STACK_EMULATOR_DASHBOARD_URL: url,
    ...extra,
  }) as Record<string, string>
const cli = (args: string[], extra: Record<string, string> = {}) =>
  execa(process.execPath, [cliPath, ...args], { cwd: project, env: env(extra), extendEnv: false, reject: false, timeout: 60_000 })

beforeAll(async () => {
  expect(fs.existsSync(cliPath), 'run `npm run build` first').toBe(true)
  standIn = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/api/v1/internal/local-emulator/project') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(CREDENTIALS))
    } else if (req.url === '/api/v1/projects/current') {
      // A backend that reads only x-stack-* sees no access type in X-Hexclave-Access-Type.
      res.writeHead(400, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'ACCESS_TYPE_REQUIRED' }))
    } else {
      res.writeHead(healthy ? 200 : 503, { 'content-type': 'text/plain' }).end(healthy ? 'ok' : 'starting')
    }
  })
  await new Promise<void>((resolve) => standIn.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(standIn.address() as net.AddressInfo).port}`
  fs.mkdirSync(path.join(project, 'node_modules/@stackframe/js'), { recursive: true })
  fs.writeFileSync(path.join(project, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }))
  fs.writeFileSync(path.join(project, 'node_modules/@stackframe/js/package.json'), JSON.stringify({ name: '@stackframe/js', version: '2.8.108' }))
})

afterAll(async () => {
  await cli(['stop', '--all'])
  await new Promise((resolve) => standIn.close(resolve))
  fs.rmSync(home, { recursive: true, force: true })
})

describe('start', () => {
  it('prints the URLs and a hint; the environment only with --env (secret keys hidden) or --json', async () => {
    const plain = await cli(['start', '--name', 'out'])
    expect(plain.exitCode, plain.stderr).toBe(0)
    expect(plain.stdout.split('\n')).toEqual([
      expect.stringMatching(/^Stack Auth emulator "out" is ready \(attached, remote, \d+ ms\)$/),
      `  backend    ${url}`,
      `  dashboard  ${url}`,
      'Run a command with its environment: stack-emulator exec --name out -- <command> (--env prints it). Stop it: stack-emulator stop --name out.',
    ])
    const withEnv = await cli(['start', '--name', 'out', '--env'])
    expect(withEnv.stdout).toContain('\n  STACK_PROJECT_ID=stand-in-project\n')
    expect(withEnv.stdout).toContain('\n  STACK_SECRET_SERVER_KEY=<hidden>\n')
    expect(withEnv.stdout).not.toContain('ssk-stand-in')
    expect(JSON.parse((await cli(['start', '--name', 'out', '--json'])).stdout).env.STACK_SECRET_SERVER_KEY).toBe('ssk-stand-in')
  }, 30_000)
})

describe('STACK_EMULATOR_LOG', () => {
  it('info says the warning; quiet says nothing on stderr; a value it does not know is a usage error', async () => {
    const info = await cli(['start', '--name', 'out'])
    expect(info.stderr.split('\n')).toContainEqual(expect.stringMatching(WARNING))
    const quiet = await cli(['start', '--name', 'out'], { STACK_EMULATOR_LOG: 'quiet' })
    expect([quiet.exitCode, quiet.stderr]).toEqual([0, ''])
    expect(quiet.stdout).toMatch(/^Stack Auth emulator "out" is ready/)
    // STACK_EMULATOR_DEBUG still means debug; an explicit level wins over it.
    expect((await cli(['start', '--name', 'out'], { STACK_EMULATOR_DEBUG: '1', STACK_EMULATOR_LOG: 'quiet' })).stderr).toBe('')
    const loud = await cli(['start', '--name', 'out'], { STACK_EMULATOR_LOG: 'loud' })
    expect([loud.exitCode, loud.stderr]).toEqual([
      2,
      expect.stringMatching(/^stack-emulator: STACK_EMULATOR_LOG must be one of quiet, info, debug; got "loud"\. Unset it for info\./),
    ])
  }, 30_000)

  it("is read with the other settings; STACK_EMULATOR_DEBUG alone still turns on the driver's command lines", () => {
    expect(readSettings({})).toMatchObject({ logLevel: 'info', debug: false })
    expect(readSettings({ STACK_EMULATOR_DEBUG: '1' })).toMatchObject({ logLevel: 'debug', debug: true })
    expect(readSettings({ STACK_EMULATOR_LOG: 'DEBUG' })).toMatchObject({ logLevel: 'debug', debug: true })
    expect(readSettings({ STACK_EMULATOR_LOG: 'quiet', STACK_EMULATOR_DEBUG: '1' })).toMatchObject({ logLevel: 'quiet', debug: false })
    expect(() => readSettings({ STACK_EMULATOR_LOG: 'verbose' })).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }))
  })

  it('quiet leaves one line of the Vitest plugin when all is well; info says more', async () => {
    const consumer = path.join(home, 'consumer')
    fs.mkdirSync(path.join(consumer, 'test'), { recursive: true })
    fs.cpSync(path.join(project, 'node_modules'), path.join(consumer, 'node_modules'), { recursive: true })
    fs.symlinkSync(root, path.join(consumer, 'node_modules/stack-emulator'))
    fs.symlinkSync(path.join(root, 'node_modules/vitest'), path.join(consumer, 'node_modules/vitest'))
    fs.writeFileSync(path.join(consumer, 'package.json'), JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
    fs.writeFileSync(
      path.join(consumer, 'vitest.config.ts'),
      "import { defineConfig } from 'vitest/config'\nimport { stackEmulator } from 'stack-emulator/vitest'\n\nexport default defineConfig({ plugins: [stackEmulator({ name: 'plugin' })] })\n",
    )
    fs.writeFileSync(
      path.join(consumer, 'test/a.test.ts'),
      `import { expect, inject, test } from 'vitest'\ntest('injected', () => expect(inject('stackEmulator')!.backendUrl).toBe(${JSON.stringify(url)}))\n`,
    )
    const vitest = (level: string) =>
      execa(process.execPath, [path.join(root, 'node_modules/vitest/vitest.mjs'), 'run'], {
        cwd: consumer,
        env: env({ STACK_EMULATOR_LOG: level }),
        extendEnv: false,
        reject: false,
        timeout: 120_000,
      })
    const ours = (stderr: string) => stderr.split('\n').filter((l) => l.startsWith('stack-emulator:'))
    const quiet = await vitest('quiet')
    expect(quiet.exitCode, quiet.stdout + quiet.stderr).toBe(0)
    expect(ours(quiet.stderr)).toEqual([expect.stringMatching(/^stack-emulator: VM "plugin" ready in \d+ ms/)])
    const info = await vitest('info')
    expect(info.exitCode, info.stdout + info.stderr).toBe(0)
    expect(ours(info.stderr)).toEqual(expect.arrayContaining([expect.stringMatching(WARNING), expect.stringMatching(/^stack-emulator: VM "plugin" ready in/)]))
  }, 120_000)
})

describe('ps and stop --all', () => {
  it('lists every instance, running or stopped, and stop --all stops the running ones', async () => {
    expect((await cli(['start', '--name', 'listed'])).exitCode).toBe(0)
    fs.mkdirSync(path.join(home, 'state', 'gone'), { mode: 0o700 })
    const listed = JSON.parse((await cli(['ps', '--json'])).stdout)
    expect(listed.stateRoot).toBe(path.join(home, 'state'))
    const byName = Object.fromEntries(listed.instances.map((i: { name: string }) => [i.name, i]))
    expect(byName.gone).toMatchObject({ state: 'stopped', urls: {}, leases: [] })
    expect(byName.listed).toMatchObject({
      state: 'ready',
      driver: 'external',
      urls: { backend: url, dashboard: url },
      leases: [],
      accel: 'remote',
      pid: expect.any(Number),
      startedAt: expect.any(String),
    })
    expect(byName.listed.uptimeMs).toBeGreaterThanOrEqual(0)
    const table = (await cli(['list'])).stdout.split('\n')
    expect(table[0]).toMatch(/^NAME +STATE +DRIVER +IMAGE +LEASES +UPTIME +URLS$/)
    expect(table).toContainEqual(expect.stringMatching(new RegExp(`^listed +ready +external +\\S+ +0 +\\d+s +backend=${url} dashboard=${url}$`)))
    expect(table).toContainEqual(expect.stringMatching(/^gone +stopped +- +- +- +- +-$/))

    const stopped = await cli(['stop', '--all', '--json'])
    expect(JSON.parse(stopped.stdout).stopped).toEqual(expect.arrayContaining(['listed']))
    const after = JSON.parse((await cli(['ps', '--json'])).stdout).instances as { state: string }[]
    expect(after.map((i) => i.state)).toEqual(after.map(() => 'stopped'))
  }, 30_000)
})

describe('on a terminal', () => {
  it('a log line gets a line of its own: the progress line is cleared before it and drawn again after', async () => {
    healthy = false
    const command = [process.execPath, cliPath, 'start', '--name', 'tty'].map((a) => `'${a}'`).join(' ')
    const child = execa('script', ['-qec', command, '/dev/null'], {
      cwd: project,
      env: env(),
      extendEnv: false,
      reject: false,
      stdin: 'ignore',
      timeout: 60_000,
    })
    let raw = ''
    child.stdout!.on('data', (chunk: Buffer) => (raw += chunk.toString()))
    try {
      // The progress line shows after 2 s of waiting; the warning comes once the stand-in is healthy.
      await pollUntil(() => /\x1b\[Kstack-emulator: [^\r\n]* \(\d+s\)$/.test(raw), {
        timeoutMs: 30_000,
        intervalMs: 50,
        timeoutError: () => new Error(`no progress line drawn: ${JSON.stringify(raw)}`),
      })
    } finally {
      healthy = true
    }
    const result = await child
    expect(result.exitCode, raw).toBe(0)
    const lines = screen(raw)
    expect(lines, raw).toContainEqual(expect.stringMatching(WARNING))
    for (const line of lines) expect(line.split('stack-emulator:').length, JSON.stringify(raw)).toBeLessThanOrEqual(2)
    // Drawn again after the warning, then cleared for good before the output.
    const warningAt = raw.search(/@stackframe\/js 2\.8\.108 sends only/)
    expect(raw.slice(warningAt)).toMatch(/^[^\n]*\n\r?\x1b\[Kstack-emulator: [^\r\n]* \(\d+s\)/)
    expect(lines.at(-1)).toMatch(/^Run a command with its environment/)
    expect(lines).toContainEqual(expect.stringMatching(/^Stack Auth emulator "tty" is ready/))
  }, 60_000)
})
