/**
 * The CLI against the real fixture VM (QEMU under TCG here): start, status, stop, persistence,
 * two instances, and bad input.
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { acquire } from '../../src/client/acquire.js'
import {
  cli,
  createUser,
  instanceNames,
  eventually,
  http,
  internalClientHeaders,
  listUserEmails,
  processesMentioning,
  qemuProcesses,
  sharedCache,
  useTempHome,
  leftoversUnder,
} from '../helpers.js'

const home = useTempHome()
const stateDir = (name: string) => path.join(home, 'state', name)

afterAll(async () => {
  for (const name of instanceNames(home)) await cli(['stop', '--name', name])
  expect(await leftoversUnder(home)).toEqual([])
})

describe('stack-emulator start / status / stop', () => {
  it('boots the fixture image: every service healthy, credentials, users listed by the dashboard', async () => {
    const probedBefore = fs.existsSync(path.join(sharedCache, 'accel-probe.json'))
    const start = await cli(['start', '--json', '--name', 'main'])
    expect(start.exitCode, start.stderr).toBe(0)
    const out = JSON.parse(start.stdout)
    expect(Object.keys(out)).toEqual(expect.arrayContaining(['backendUrl', 'dashboardUrl', 'services', 'env', 'driver', 'id', 'accel']))
    expect(out.backendUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
    // KVM is broken on these machines: the probe falls back to TCG and says so once per machine
    // (a later start reuses the cached verdict quietly).
    const warnings = start.stderr.split('\n').filter((l) => /KVM is not usable/.test(l))
    expect(warnings).toHaveLength(out.accel === 'tcg' && !probedBefore ? 1 : 0)

    expect((await http(`${out.backendUrl}/health?db=1`)).status).toBe(200)
    expect((await http(`${out.backendUrl}/health`)).json).toEqual({ status: 'ok' })
    const signIn = await http(`${out.dashboardUrl}/handler/sign-in`)
    expect(signIn.status).toBe(200)
    expect(signIn.text).toMatch(/<html/i)

    // The start output carries working credentials.
    expect(out.env.STACK_PROJECT_ID).toBeTruthy()
    const ada = await createUser(out.backendUrl, out.env, 'ada@example.com')
    expect(ada.status, ada.text).toBe(201)
    // Stack Auth's answers without credentials: a known error (code in the body and the header).
    const anonymous = await http(`${out.backendUrl}/api/v1/users`)
    expect([anonymous.status, anonymous.json.code]).toEqual([400, 'ACCESS_TYPE_REQUIRED'])
    // The current SDK's header spelling (x-hexclave-*) authenticates as the older x-stack-* does.
    const hexclave = {
      'x-hexclave-project-id': out.env.STACK_PROJECT_ID,
      'x-hexclave-access-type': 'server',
      'x-hexclave-secret-server-key': out.env.STACK_SECRET_SERVER_KEY,
    }
    expect((await http(`${out.backendUrl}/api/v1/users`, { method: 'POST', body: { primary_email: 'grace@example.com' }, headers: hexclave })).status).toBe(201)
    const wrongKey = await http(`${out.backendUrl}/api/v1/users`, { headers: { ...hexclave, 'x-hexclave-secret-server-key': 'ssk_wrong' } })
    expect([wrongKey.status, wrongKey.json.code]).toEqual([401, 'INVALID_SECRET_SERVER_KEY'])
    expect(await listUserEmails(out.backendUrl, out.env)).toEqual(['ada@example.com', 'grace@example.com'])
    const usersPage = await http(`${out.dashboardUrl}/users`)
    expect(usersPage.text).toContain('ada@example.com')

    const status = await cli(['status', '--json', '--name', 'main'])
    expect(status.exitCode).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ running: true, healthy: true, vm: { driver: 'qemu', id: out.id } })
    expect(qemuProcesses(stateDir('main'))).toHaveLength(1)

    // Stack Auth's credentials route, called as Stack Auth's CLI does: client access to the internal
    // project, the absolute host path of an existing config file (read through the /host share).
    const route = `${out.backendUrl}/api/v1/internal/local-emulator/project`
    const configFile = (name: string) => {
      const file = path.join(home, 'apps', name, 'stack.config.ts')
      fs.mkdirSync(path.dirname(file), { recursive: true })
      fs.writeFileSync(file, '')
      return file
    }
    const [fileA, fileB] = [configFile('a'), configFile('b')]
    // The guest sees a config file only once a suite asked for its credentials (the share holds
    // nothing else): two suites on this instance, one per file. (The first restores the VM: the
    // start's lease ended, so the VM counts as used.)
    for (const file of [fileA, fileB]) await (await acquire({ name: 'main', configFile: file })).release()
    const mint = (file: string, headers = internalClientHeaders()) => http(route, { method: 'POST', body: { absolute_file_path: file }, headers })
    const a1 = await mint(fileA)
    const a2 = await mint(fileA)
    const b = await mint(fileB)
    expect(a1.status, a1.text).toBe(200)
    expect(Object.keys(a1.json)).toEqual(
      expect.arrayContaining(['project_id', 'publishable_client_key', 'secret_server_key', 'super_secret_admin_key', 'branch_config_override_string']),
    )
    expect(a1.json.project_id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/)
    expect(a2.json).toEqual(a1.json)
    expect(b.json.project_id).not.toBe(a1.json.project_id)
    // An empty config file is given the newer backend's onboarding sentinel (the fixture answers
    // as after the Hexclave rename unless STACK_EMULATOR_FIXTURE_HEADERS=x-stack: then `{}`).
    expect(fs.readFileSync(fileA, 'utf8')).toMatch(/export const config: StackConfig = "show-onboarding";/)
    // Refused as Stack Auth refuses: no access type, a wrong key, a missing file.
    expect((await http(route, { method: 'POST', body: { absolute_file_path: fileA } })).json.code).toBe('ACCESS_TYPE_REQUIRED')
    expect((await mint(fileA, internalClientHeaders('pck_wrong'))).json.code).toBe('INVALID_PUBLISHABLE_CLIENT_KEY')
    expect((await mint(path.join(home, 'apps', 'none', 'stack.config.ts'))).status).toBe(400)
    expect((await mint(configFile('never-exposed'))).status).toBe(400) // on the host, but not shared

    const stop = await cli(['stop', '--json', '--name', 'main'])
    expect(stop.exitCode).toBe(0)
    expect(JSON.parse(stop.stdout)).toEqual({ name: 'main', stopped: true })
    expect(processesMentioning(stateDir('main'))).toEqual([])
    expect(fs.existsSync(path.join(stateDir('main'), 'supervisor.sock'))).toBe(false)
    expect(fs.existsSync(path.join(stateDir('main'), 'qmp.sock'))).toBe(false)
    expect((await cli(['status', '--name', 'main'])).exitCode).toBe(3)
    expect((await cli(['stop', '--name', 'main'])).exitCode).toBe(0) // nothing running is fine
  })

  it('keeps data across stop and start on the same overlay, and drops it on a fresh one', async () => {
    const args = ['--json', '--name', 'persist', '--no-snapshot']
    const first = JSON.parse((await cli(['start', ...args])).stdout)
    expect(first.origin).toBe('cold-boot')
    expect((await createUser(first.backendUrl, first.env, 'kept@example.com')).status).toBe(201)
    await cli(['stop', '--name', 'persist'])

    const second = JSON.parse((await cli(['start', ...args])).stdout)
    expect(await listUserEmails(second.backendUrl, second.env)).toEqual(['kept@example.com'])
    await cli(['stop', '--name', 'persist'])

    const fresh = JSON.parse((await cli(['start', ...args, '--fresh'])).stdout)
    expect(await listUserEmails(fresh.backendUrl, fresh.env)).toEqual([])
    await cli(['stop', '--name', 'persist'])
    expect(qemuProcesses(stateDir('persist'))).toEqual([])
  })

  it('runs two named instances side by side on different ports', async () => {
    const [one, two] = await Promise.all([cli(['start', '--json', '--name', 'one']), cli(['start', '--json', '--name', 'two'])])
    const a = JSON.parse(one.stdout)
    const b = JSON.parse(two.stdout)
    expect(a.backendUrl).not.toBe(b.backendUrl)
    expect(a.id).not.toBe(b.id)
    await createUser(a.backendUrl, a.env, 'only-in-one@example.com')
    expect(await listUserEmails(a.backendUrl, a.env)).toEqual(['only-in-one@example.com'])
    expect(await listUserEmails(b.backendUrl, b.env)).toEqual([])
    await Promise.all([cli(['stop', '--name', 'one']), cli(['stop', '--name', 'two'])])
    expect(await leftoversUnder(home)).toEqual([])
  })
})

describe('bad input: one clear line, non-zero exit, nothing left running', () => {
  const oneLine = (stderr: string) =>
    stderr
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('stack-emulator:'))

  it('unknown option', async () => {
    const r = await cli(['start', '--bogus'])
    expect(r.exitCode).toBe(2)
    expect(oneLine(r.stderr)).toEqual([expect.stringMatching(/Unknown option "--bogus".*--help/)])
  })

  it('missing image', async () => {
    const r = await cli(['start', '--name', 'noimage', '--image', '/nonexistent/manifest.json'])
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/manifest \/nonexistent\/manifest.json cannot be read.*--image/)
    expect(processesMentioning(stateDir('noimage'))).toEqual([])
  })

  it('missing config file: named before anything starts', async () => {
    const r = await cli(['start', '--name', 'noconfig', '--config-file', '/nonexistent/stack.config.ts'])
    expect(r.exitCode).toBe(1)
    expect(oneLine(r.stderr)).toEqual([expect.stringMatching(/Config file \/nonexistent\/stack\.config\.ts does not exist.*Create it/)])
    expect(fs.existsSync(path.join(stateDir('noconfig'), 'supervisor.log'))).toBe(false)
    expect(processesMentioning(stateDir('noconfig'))).toEqual([])
  })

  it('one port for two services', async () => {
    const r = await cli(['start', '--name', 'twice', '--port', 'backend=26790', '--port', 'dashboard=26790'])
    expect(r.exitCode).toBe(2)
    expect(oneLine(r.stderr)).toEqual([expect.stringMatching(/gives port 26790 twice, to backend and to dashboard/)])
    expect(processesMentioning(stateDir('twice'))).toEqual([])
  })

  it('missing qemu binary', async () => {
    // A PATH that has node and nothing else (node may live beside QEMU, in /usr/bin).
    const bin = fs.mkdtempSync(path.join(home, 'bin-'))
    fs.symlinkSync(process.execPath, path.join(bin, 'node'))
    const r = await cli(['start', '--name', 'noqemu'], { PATH: bin })
    expect(r.exitCode).toBe(1)
    expect(r.stderr).toMatch(/Did not find QEMU binary "qemu-system-x86_64".*apt-get install qemu-system-x86/)
    expect(await eventually(() => processesMentioning(stateDir('noqemu')).length === 0, 5000)).toBe(true)
  })

  it('busy fixed port', async () => {
    const server = net.createServer().listen(0, '127.0.0.1')
    await new Promise((r) => server.once('listening', r))
    const port = (server.address() as net.AddressInfo).port
    try {
      const r = await cli(['start', '--name', 'busy', '--port', `backend=${port}`])
      expect(r.exitCode).toBe(1)
      expect(r.stderr).toMatch(new RegExp(`Host port ${port} is already in use.*let QEMU pick one`))
      expect(await eventually(() => processesMentioning(stateDir('busy')).length === 0, 5000)).toBe(true)
    } finally {
      server.close()
    }
  })
})
