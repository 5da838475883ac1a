/**
 * One conformance suite, run against every driver that runs here (STACK_EMULATOR_TEST_DRIVERS,
 * default docker and external; qemu is covered by test/integration), through real supervisors,
 * real containers and real HTTP. The external driver attaches to a fixture container that a
 * Docker instance runs, as a team server would.
 */
import fs from 'node:fs'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { acquire, type Emulator } from '../../src/client/acquire.js'
import { stopInstance } from '../../src/client/control.js'
import { generatedConfigDir, projectRoot } from '../../src/stack/project-config.js'
import { cliPath, eventually, instanceNames, processesMentioning, spawnAcquirer, useTempHome } from '../helpers.js'
import { containersOf, dockerEnv } from './docker.js'

const home = useTempHome('se-drv-')
Object.assign(process.env, dockerEnv)
const stateDir = (name: string) => path.join(home, 'state', name)
const drivers = (process.env.STACK_EMULATOR_TEST_DRIVERS ?? 'docker,external').split(',')

/** The emulator the external driver attaches to, and the options that reach it. */
let remote: Emulator | undefined
const remoteOptions = () => ({
  driver: 'external' as const,
  urls: remote!.services,
  internalKey: fs.readFileSync(path.join(stateDir('remote'), 'share', stateDir('remote'), 'vm', 'internal-pck'), 'utf8'),
  // The remote reads config files it can see: the generated default its own instance shares (this project's).
  configFile: path.join(generatedConfigDir(path.join(home, 'state'), projectRoot(process.cwd())), 'stack.config.ts'),
})

beforeAll(async () => {
  if (drivers.includes('external')) remote = await acquire({ name: 'remote', driver: 'docker', keepAlive: true, idleTimeoutMs: 0, onLog: () => {} })
}, 600_000)

afterAll(async () => {
  await remote?.release()
  for (const name of instanceNames(home)) await stopInstance(name)
  // The engine removes a container moments after it exits.
  expect(await eventually(async () => (await containersOf(home)).length === 0, 15_000)).toBe(true)
})

for (const driver of drivers) {
  const options = (name: string) =>
    driver === 'external' ? { name: `${driver}-${name}`, ...remoteOptions() } : { name: `${driver}-${name}`, driver: driver as 'docker' }

  describe(`driver ${driver}`, () => {
    it('serves healthy services and working credentials', async () => {
      await using emulator = await acquire({ ...options('healthy'), onLog: () => {} })
      expect(emulator.driver).toBe(driver)
      for (const service of ['backend', 'dashboard']) expect(emulator.services[service]).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect((await fetch(`${emulator.backendUrl}/health?db=1`)).status).toBe(200)
      expect(emulator.credentials?.projectId).toBeTruthy()
      const users = await fetch(`${emulator.backendUrl}/api/v1/users`, { headers: serverHeaders(emulator) })
      expect(users.status).toBe(200)
    })

    if (driver === 'external') {
      it("isolation 'project': a copy of the config file the remote emulator cannot read is refused, saying so", async () => {
        await using emulator = await acquire({ ...options('project'), onLog: () => {} })
        await expect(emulator.newProject()).rejects.toMatchObject({
          code: 'CREDENTIALS',
          message: expect.stringMatching(/credential route refused .*shares no files with this machine.*isolation 'worker'/s),
        })
      })
    } else {
      it("isolation 'project': each ask is a fresh project, with the sign-in helpers working in it and nothing crossing", async () => {
        await using emulator = await acquire({ ...options('project'), onLog: () => {} })
        const [a, b] = await Promise.all([emulator.newProject(), emulator.newProject()])
        expect(new Set([a.projectId, b.projectId, emulator.credentials!.projectId]).size).toBe(3)
        const user = await a.users.create()
        const me = await fetch(`${emulator.backendUrl}/api/v1/users/me`, { headers: await a.authHeaders(user) })
        expect(me.status).toBe(200)
        const inB = await fetch(`${emulator.backendUrl}/api/v1/users`, { headers: serverHeaders(b) })
        expect(((await inB.json()) as { items: unknown[] }).items).toEqual([])
      })
    }

    if (driver === 'external') {
      it('refuses a reset with a clear error', async () => {
        await using emulator = await acquire({ ...options('refuse'), onLog: () => {} })
        await expect(emulator.reset()).rejects.toMatchObject({ code: 'RESET_UNSUPPORTED', message: expect.stringMatching(/cannot be reset from here/) })
      })

      it('stack-emulator start --driver external attaches by URL; stop leaves the remote running', async () => {
        const remote = remoteOptions()
        const urls = Object.entries(remote.urls).flatMap(([service, url]) => ['--url', `${service}=${url}`])
        const cli = (args: string[]) => execa(process.execPath, [cliPath, ...args], { reject: false })
        const started = await cli([
          'start',
          '--name',
          'external-cli',
          '--driver',
          'external',
          ...urls,
          '--internal-key',
          remote.internalKey,
          '--config-file',
          remote.configFile,
          '--json',
        ])
        expect(started.exitCode, started.stderr).toBe(0)
        const handle = JSON.parse(started.stdout)
        expect(handle).toMatchObject({ driver: 'external', backendUrl: remote.urls.backend })
        expect(handle.env.STACK_PROJECT_ID).toMatch(/^[0-9a-f-]{36}$/)
        const stopped = await cli(['stop', '--name', 'external-cli'])
        expect(stopped.exitCode, stopped.stderr).toBe(0)
        expect((await fetch(`${remote.urls.backend}/health?db=1`)).status).toBe(200)
      })
    } else {
      it('a reset empties what a test wrote and keeps the URLs; credentials are minted again', async () => {
        await using emulator = await acquire({ ...options('reset'), onLog: () => {} })
        const urls = emulator.services
        const created = await fetch(`${emulator.backendUrl}/api/v1/users`, {
          method: 'POST',
          headers: { ...serverHeaders(emulator), 'content-type': 'application/json' },
          body: JSON.stringify({ primary_email: 'ada@example.com' }),
        })
        expect(created.status).toBe(201)
        const { durationMs } = await emulator.reset()
        expect(emulator.services).toEqual(urls)
        const listed = (await (await fetch(`${emulator.backendUrl}/api/v1/users`, { headers: serverHeaders(emulator) })).json()) as { items: unknown[] }
        expect(listed.items).toEqual([])
        console.log(`[conformance] ${driver} reset: ${durationMs} ms`)
      })
    }

    it('stack-emulator status, reset, logs and stop work on its instance', async () => {
      await using emulator = await acquire({ ...options('ops'), onLog: () => {} })
      const cli = (...args: string[]) => execa(process.execPath, [cliPath, ...args, '--name', emulator.name], { reject: false })
      const status = await cli('status', '--json')
      expect(status.exitCode, status.stderr).toBe(0)
      expect(JSON.parse(status.stdout)).toMatchObject({ running: true, healthy: true, vm: { driver, urls: emulator.services } })
      const reset = await cli('reset', '--force', '--json')
      if (driver === 'external') {
        expect(reset.exitCode).not.toBe(0)
        expect(reset.stderr).toMatch(/cannot be reset from here/)
      } else {
        expect(reset.exitCode, reset.stderr).toBe(0)
        expect(JSON.parse(reset.stdout)).toMatchObject({ name: emulator.name, origin: 'cold-boot' })
      }
      const logs = await cli('logs')
      expect(logs.exitCode, logs.stderr).toBe(0)
      expect(logs.stderr).toMatch(/no console or services' output to read here; its supervisor's log: stack-emulator logs --supervisor/)
      const supervisor = await cli('logs', '--supervisor')
      expect(supervisor.exitCode, supervisor.stderr).toBe(0)
      const stopped = await cli('stop', '--json')
      expect(JSON.parse(stopped.stdout)).toEqual({ name: emulator.name, stopped: true })
      expect((await cli('status')).exitCode).toBe(3)
      if (driver === 'external') expect((await fetch(`${remote!.backendUrl}/health`)).status).toBe(200) // not ours to stop
    })

    it('two suites share one instance; the last lease out stops it; SIGKILLed runners leak nothing', async () => {
      const [a, b] = [spawnAcquirer({ ...options('shared'), onLog: undefined }), spawnAcquirer(options('shared'))]
      const [ra, rb] = [await a.next(), await b.next()]
      if (ra.error ?? rb.error) [a, b].forEach((p) => p.child.kill('SIGKILL'))
      expect(ra.error ?? rb.error).toBeUndefined()
      expect(ra.urls).toEqual(rb.urls)
      if (driver === 'docker') expect(await containersOf(stateDir(`${driver}-shared`))).toHaveLength(1)
      a.child.kill('SIGKILL')
      b.child.kill('SIGKILL')
      expect(await eventually(() => processesMentioning(stateDir(`${driver}-shared`)).length === 0, 15_000)).toBe(true)
      if (driver === 'docker') expect(await eventually(async () => (await containersOf(stateDir(`${driver}-shared`))).length === 0, 15_000)).toBe(true)
      if (driver === 'external') expect((await fetch(`${remote!.backendUrl}/health`)).status).toBe(200) // not ours to stop
    })
  })
}

function serverHeaders(emulator: { env: Record<string, string> }): Record<string, string> {
  return {
    'x-stack-project-id': emulator.env.STACK_PROJECT_ID!,
    'x-stack-access-type': 'server',
    'x-stack-secret-server-key': emulator.env.STACK_SECRET_SERVER_KEY!,
  }
}
