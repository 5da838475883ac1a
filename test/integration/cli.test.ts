/**
 * The CLI against the real fixture VM (QEMU under TCG here): start, status, stop, persistence,
 * two instances, and bad input.
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { cli, createUser, eventually, http, listUserEmails, processesMentioning, qemuProcesses, sharedCache, useTempHome, leftoversUnder } from '../helpers.js'

const home = useTempHome()
const stateDir = (name: string) => path.join(home, 'state', name)

afterAll(async () => {
  for (const name of fs.existsSync(path.join(home, 'state')) ? fs.readdirSync(path.join(home, 'state')) : []) await cli(['stop', '--name', name])
  expect(await leftoversUnder(home)).toEqual([])
})

describe('stack-emulator start / status / stop', () => {
  it('boots the fixture image: every service healthy, credentials, users listed by the dashboard', async () => {
    const probedBefore = fs.existsSync(path.join(sharedCache, 'accel-probe.json'))
    const start = await cli(['start', '--json', '--name', 'main'])
    expect(start.exitCode, start.stderr).toBe(0)
    const out = JSON.parse(start.stdout)
    expect(Object.keys(out)).toEqual(expect.arrayContaining(['backendUrl', 'dashboardUrl', 'services', 'env', 'pid', 'accel']))
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

    const route = `${out.backendUrl}/api/v1/internal/local-emulator/project`
    const a1 = await http(route, { method: 'POST', body: { absolute_file_path: '/app/a/stack.config.ts' } })
    const a2 = await http(route, { method: 'POST', body: { absolute_file_path: '/app/a/stack.config.ts' } })
    const b = await http(route, { method: 'POST', body: { absolute_file_path: '/app/b/stack.config.ts' } })
    expect(Object.keys(a1.json)).toEqual(expect.arrayContaining(['project_id', 'publishable_client_key', 'secret_server_key', 'super_secret_admin_key']))
    expect(a2.json).toEqual(a1.json)
    expect(b.json.project_id).not.toBe(a1.json.project_id)
    // The start output carries working credentials too.
    expect(out.env.STACK_PROJECT_ID).toBeTruthy()

    expect((await createUser(out.backendUrl, out.env, 'ada@example.com')).status).toBe(201)
    expect((await http(`${out.backendUrl}/api/v1/users`)).status).toBe(401)
    // The current SDK's header spelling (x-hexclave-*) authenticates as the older x-stack-* does.
    const hexclave = { 'x-hexclave-project-id': out.env.STACK_PROJECT_ID, 'x-hexclave-secret-server-key': out.env.STACK_SECRET_SERVER_KEY }
    expect((await http(`${out.backendUrl}/api/v1/users`, { method: 'POST', body: { email: 'grace@example.com' }, headers: hexclave })).status).toBe(201)
    expect((await http(`${out.backendUrl}/api/v1/users`, { headers: { ...hexclave, 'x-hexclave-secret-server-key': 'ssk_wrong' } })).status).toBe(401)
    expect(await listUserEmails(out.backendUrl, out.env)).toEqual(['ada@example.com', 'grace@example.com'])
    const usersPage = await http(`${out.dashboardUrl}/users`)
    expect(usersPage.text).toContain('ada@example.com')

    const status = await cli(['status', '--json', '--name', 'main'])
    expect(status.exitCode).toBe(0)
    expect(JSON.parse(status.stdout)).toMatchObject({ running: true, healthy: true, vm: { pid: out.pid } })
    expect(qemuProcesses(stateDir('main'))).toHaveLength(1)

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
    expect(a.pid).not.toBe(b.pid)
    await createUser(a.backendUrl, a.env, 'only-in-one@example.com')
    expect(await listUserEmails(a.backendUrl, a.env)).toEqual(['only-in-one@example.com'])
    expect(await listUserEmails(b.backendUrl, b.env)).toEqual([])
    await Promise.all([cli(['stop', '--name', 'one']), cli(['stop', '--name', 'two'])])
    expect(qemuProcesses(home)).toEqual([])
  })
})

describe('bad input: one clear line, non-zero exit, nothing left running', () => {
  const oneLine = (stderr: string) => stderr.trim().split('\n').filter((l) => l.startsWith('stack-emulator:'))

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
