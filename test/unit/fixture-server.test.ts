/**
 * The fixture image's backend (fixtures/image/guest/server.py) run on this host, no VM: a private
 * PostgreSQL in a temp folder on a loopback port, loaded with the image's schema.sql, and the
 * server with FIXTURE_BIND=127.0.0.1, once per backend generation (STACK_EMULATOR_FIXTURE_HEADERS).
 * Needs PostgreSQL's server binaries and python3 with psycopg2 and PyJWT (Debian: postgresql,
 * python3-psycopg2, python3-jwt, python3-cryptography; scripts/prerequisites.sh installs the
 * Python ones, .ci/run PostgreSQL); skipped, saying which is missing, without them. The server's
 * own Python tests: fixture-server-python.test.ts.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { httpRequest } from '../../src/http.js'
import { pollUntil } from '../../src/poll.js'
import { backendHeaderFamily } from '../../src/stack/header-generation.js'

const GUEST = path.join(import.meta.dirname, '..', '..', 'fixtures', 'image', 'guest')
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3'
/** The placeholder internal key server.py uses when the environment names none (as Stack Auth's snapshot builds). */
const INTERNAL_PCK = '0'.repeat(32) + 'f'.repeat(32)
const ADMIN_USER_ID = '63abbc96-5329-454a-ba56-e0460173c6c1'

/** Why this file cannot run here, or undefined: asked of the server's own test helper (tests/postgres.py). */
function missing(): string | undefined {
  let bin: string
  try {
    bin = execFileSync(PYTHON, ['-B', '-c', 'import jwt; from tests.postgres import postgres_bin; print(postgres_bin() or "")'], {
      cwd: GUEST,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
    }).trim()
  } catch {
    return `needs ${PYTHON} with psycopg2 and PyJWT (apt-get install python3-psycopg2 python3-jwt python3-cryptography)`
  }
  return bin ? undefined : 'needs PostgreSQL server binaries (apt-get install postgresql)'
}

const skipReason = missing()
if (skipReason) console.warn(`fixture-server.test.ts skipped: it ${skipReason}`)

async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  return pollUntil(() => probe().catch(() => undefined), { timeoutMs, intervalMs: 100, timeoutError: () => new Error(`timed out waiting for ${what}`) })
}

interface Answer {
  status: number
  headers: Record<string, string>
  text: string
  json: any
}

/** A request whose answer headers are kept too (httpRequest keeps only the body). */
function request(url: string, options: { method?: string; headers?: Record<string, string>; json?: unknown } = {}): Promise<Answer> {
  const body = options.json === undefined ? undefined : JSON.stringify(options.json)
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      {
        method: options.method ?? 'GET',
        agent: false,
        signal: AbortSignal.timeout(10_000),
        headers: { ...options.headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8')
          let json: unknown
          try {
            json = JSON.parse(text)
          } catch {
            json = undefined
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers as Record<string, string>, text, json })
        })
      },
    )
    req.on('error', reject)
    req.end(body)
  })
}

/** The headers Stack Auth's SDK sends as a client of project `internal`, in one spelling. */
function internal(prefix: 'x-stack-' | 'x-hexclave-'): Record<string, string> {
  return { [`${prefix}project-id`]: 'internal', [`${prefix}access-type`]: 'client', [`${prefix}publishable-client-key`]: INTERNAL_PCK }
}

/** apps/backend/src/proxy.tsx at 2f719903b: the CORS allow-list, in its order. */
const CORS_AT_2F719903B = [
  'content-type',
  'authorization',
  'x-stack-project-id',
  'x-stack-branch-id',
  'x-stack-override-error-status',
  'x-stack-random-nonce',
  'x-stack-client-version',
  'x-stack-disable-artificial-development-delay',
  'x-stack-access-type',
  'x-stack-publishable-client-key',
  'x-stack-secret-server-key',
  'x-stack-super-secret-admin-key',
  'x-stack-admin-access-token',
  'x-stack-refresh-token',
  'x-stack-access-token',
  'x-stack-allow-anonymous-user',
  'baggage',
  'sentry-trace',
  'x-vercel-protection-bypass',
  'ngrok-skip-browser-warning',
]

describe.skipIf(skipReason)(`the fixture's server.py on this host${skipReason ? ` (skipped: it ${skipReason})` : ''}`, () => {
  let dir = ''
  let hostRoot = ''
  let pg: { dir: string; port: number } = { dir: '', port: 0 }
  let postgres: ChildProcess | undefined
  const servers: ChildProcess[] = []
  const backend: Record<string, string> = {}
  const outputs: Record<string, () => string> = {}

  /** Runs server.py; resolves with its process once /health?db=1 answers (or it exits). */
  async function startServer(mode: string | undefined): Promise<{ child: ChildProcess; url: string; output: () => string }> {
    const [backendPort, dashboard, minio, inbucket, mockOauth] = await Promise.all([1, 2, 3, 4, 5].map(() => freePort()))
    const env: Record<string, string> = {
      PATH: process.env.PATH ?? '/usr/bin:/bin',
      PYTHONDONTWRITEBYTECODE: '1',
      FIXTURE_BIND: '127.0.0.1',
      FIXTURE_DB_HOST: pg.dir,
      PGPORT: String(pg.port),
      FIXTURE_DB_USER: 'postgres',
      BACKEND_PORT: String(backendPort),
      DASHBOARD_PORT: String(dashboard),
      MINIO_PORT: String(minio),
      INBUCKET_PORT: String(inbucket),
      MOCK_OAUTH_PORT: String(mockOauth),
      NEXT_PUBLIC_STACK_IS_LOCAL_EMULATOR: 'true',
      STACK_LOCAL_EMULATOR_HOST_MOUNT_ROOT: hostRoot,
      ...(mode === undefined ? {} : { STACK_EMULATOR_FIXTURE_HEADERS: mode }),
    }
    // As the image starts it (run-stack-container), less the bytecode written next to the source.
    const child = spawn(PYTHON, ['-B', '-S', '-c', 'import server; server.main()'], { cwd: GUEST, env, stdio: ['ignore', 'pipe', 'pipe'] })
    servers.push(child)
    let output = ''
    child.stdout!.on('data', (c: Buffer) => (output += c.toString()))
    child.stderr!.on('data', (c: Buffer) => (output += c.toString()))
    const url = `http://127.0.0.1:${backendPort}`
    await until('the fixture server', 30_000, async () => {
      if (child.exitCode !== null) return true
      return (await httpRequest(`${url}/health?db=1`, { timeoutMs: 1000 })).status === 200 ? true : undefined
    })
    return { child, url, output: () => output }
  }

  beforeAll(async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'se-fixture-server-'))
    hostRoot = path.join(dir, 'host')
    fs.mkdirSync(hostRoot)
    // A private cluster with the image's schema, until its stdin closes (tests/postgres.py); its folder and port first.
    postgres = spawn(PYTHON, ['-B', '-m', 'tests.postgres'], { cwd: GUEST, stdio: ['pipe', 'pipe', 'inherit'] })
    pg = JSON.parse(
      await new Promise<string>((resolve, reject) => {
        let out = ''
        postgres!.stdout!.on('data', (c: Buffer) => {
          out += c.toString()
          if (out.includes('\n')) resolve(out.split('\n')[0]!)
        })
        postgres!.once('exit', (code) => reject(new Error(`tests/postgres.py exited (${code}) before its cluster was ready`)))
      }),
    )
    for (const mode of ['x-stack', 'both'] as const) {
      const server = await startServer(mode)
      if (server.child.exitCode !== null) throw new Error(`server.py (${mode}) exited: ${server.output()}`)
      backend[mode] = server.url
      outputs[mode] = server.output
    }
  }, 90_000)

  afterAll(async () => {
    const stopped = (child: ChildProcess) =>
      child.exitCode !== null || child.signalCode !== null ? Promise.resolve() : new Promise((resolve) => child.once('exit', resolve))
    for (const child of servers) child.kill('SIGTERM')
    await Promise.all(servers.map(stopped))
    if (postgres) {
      postgres.stdin!.end() // the helper stops its cluster and removes its folder
      await stopped(postgres)
    }
    if (dir) fs.rmSync(dir, { recursive: true, force: true })
  }, 30_000)

  /** A config file under the host mount root; its path as the guest is given it. */
  function configFile(name: string, content = '', packageJson?: object): string {
    const folder = path.join(hostRoot, name)
    fs.mkdirSync(folder, { recursive: true })
    fs.writeFileSync(path.join(folder, 'stack.config.ts'), content)
    if (packageJson) fs.writeFileSync(path.join(folder, 'package.json'), JSON.stringify(packageJson))
    return `/${name}/stack.config.ts`
  }
  const hostFile = (guestPath: string) => fs.readFileSync(path.join(hostRoot, guestPath), 'utf8')
  const mint = (mode: string, file: string, headers = internal('x-stack-')) =>
    request(`${backend[mode]}/api/v1/internal/local-emulator/project`, { method: 'POST', headers, json: { absolute_file_path: file } })

  it('refuses to start on an unknown STACK_EMULATOR_FIXTURE_HEADERS, saying why', async () => {
    const server = await startServer('x-hexclave')
    expect(server.child.exitCode).toBe(2)
    expect(server.output()).toMatch(/refusing to start: STACK_EMULATOR_FIXTURE_HEADERS is 'x-hexclave'; it must be x-stack .* or both/)
  })

  it("logs each API request and its answer as Stack Auth's route handler does (what `logs` and a failed test's report show)", async () => {
    const url = `${backend.both}/api/v1/projects/current?marker=log-line-test`
    expect((await request(url, { headers: internal('x-stack-') })).status).toBe(200)
    expect((await request(`${backend.both}/api/v1/users/me?marker=log-line-error`, { headers: internal('x-stack-') })).status).toBe(400)
    await request(`${backend.both}/health?db=1`)
    const lines = outputs.both!().split('\n')
    const id = /^\[API REQ\] \[([\w-]+) @ internal\] GET (\S+)$/.exec(lines.find((l) => l.includes('log-line-test') && l.startsWith('[API REQ]')) ?? '')
    expect(id?.[2]).toBe(url)
    expect(lines).toContainEqual(expect.stringMatching(new RegExp(`^\\[    RES\\] \\[${id![1]}\\] GET ${url.replace(/[?.]/g, '\\$&')}: 200 \\(in \\d+ms\\)$`)))
    expect(lines).toContainEqual(expect.stringMatching(/^\[ {4}ERR\] \[[\w-]+\] GET \/api\/v1\/users\/me: .+/))
    expect(lines).toContainEqual(expect.stringMatching(/^\[ {4}RES\] \[[\w-]+\] GET \S+log-line-error: 400 \(in \d+ms\)$/))
    expect(lines.filter((l) => l.includes('/health'))).toEqual([]) // not an API route: the probes stay out
  })

  describe('x-stack: as Stack Auth at dev 2f719903b', () => {
    it('refuses an X-Hexclave-only request as that backend does (no access type: ACCESS_TYPE_REQUIRED), takes x-stack-*', async () => {
      const current = `${backend['x-stack']}/api/v1/projects/current`
      const hexclave = await request(current, { headers: internal('x-hexclave-') })
      expect(hexclave.status).toBe(400)
      expect(hexclave.json.code).toBe('ACCESS_TYPE_REQUIRED')
      expect(hexclave.headers['x-stack-known-error']).toBe('ACCESS_TYPE_REQUIRED')
      expect(hexclave.headers['x-hexclave-known-error']).toBeUndefined()
      const stack = await request(current, { headers: internal('x-stack-') })
      expect(stack.status).toBe(200)
      expect(stack.json.id).toBe('internal')
      // Override of the status: only x-stack-override-error-status, answered in x-stack-actual-status alone.
      expect((await request(current, { headers: { 'x-hexclave-override-error-status': 'true' } })).status).toBe(400)
      const overridden = await request(current, { headers: { 'x-stack-override-error-status': 'true' } })
      expect([overridden.status, overridden.headers['x-stack-actual-status'], overridden.headers['x-hexclave-actual-status']]).toEqual([200, '400', undefined])
      expect(await backendHeaderFamily(backend['x-stack']!)).toBe('x-stack')
    })

    it("answers a CORS preflight with 2f719903b's lists: no x-hexclave-* anywhere", async () => {
      const preflight = await request(`${backend['x-stack']}/api/v1/users/me`, {
        method: 'OPTIONS',
        headers: { origin: 'http://localhost:3000', 'access-control-request-headers': 'x-hexclave-project-id' },
      })
      expect(preflight.status).toBe(200)
      expect(preflight.headers['access-control-allow-headers']!.split(', ')).toEqual(CORS_AT_2F719903B)
      expect(preflight.headers['access-control-expose-headers']).toBe('content-type, x-stack-actual-status, x-stack-known-error')
      expect(JSON.stringify(preflight.headers)).not.toContain('hexclave')
    })

    it('has the older local-emulator route: POST only, the default config for an empty file, no sentinel', async () => {
      const file = configFile('old-generation')
      const minted = await mint('x-stack', file)
      expect(minted.status, minted.text).toBe(200)
      expect(Object.keys(minted.json).sort()).toEqual([
        'branch_config_override_string',
        'project_id',
        'publishable_client_key',
        'secret_server_key',
        'super_secret_admin_key',
      ])
      expect(hostFile(file)).toBe('import type { StackConfig } from "@stackframe/js";\n\nexport const config: StackConfig = {};\n')
      expect((await request(`${backend['x-stack']}/api/v1/internal/local-emulator/project`, { headers: internal('x-stack-') })).status).toBe(405)
      const sentinel = await mint('x-stack', configFile('old-sentinel', 'export const config = "show-onboarding";\n'))
      expect([sentinel.status, sentinel.text]).toEqual([400, "Invalid config in /old-sentinel/stack.config.ts. The file must export a 'config' object."])
    })
  })

  describe('both: as after the Hexclave rename', () => {
    it('takes either spelling, and answers errors in both', async () => {
      const current = `${backend.both}/api/v1/projects/current`
      for (const prefix of ['x-hexclave-', 'x-stack-'] as const) {
        const answer = await request(current, { headers: internal(prefix) })
        expect([answer.status, answer.json.id]).toEqual([200, 'internal'])
      }
      const failed = await request(current, { headers: { 'x-hexclave-access-type': 'client' } })
      expect([failed.status, failed.json.code, failed.headers['x-stack-known-error'], failed.headers['x-hexclave-known-error']]).toEqual([
        400,
        'ACCESS_TYPE_WITHOUT_PROJECT_ID',
        'ACCESS_TYPE_WITHOUT_PROJECT_ID',
        'ACCESS_TYPE_WITHOUT_PROJECT_ID',
      ])
      const overridden = await request(current, { headers: { 'x-hexclave-override-error-status': 'true' } })
      expect([overridden.status, overridden.headers['x-stack-actual-status'], overridden.headers['x-hexclave-actual-status']]).toEqual([200, '400', '400'])
      const preflight = await request(`${backend.both}/api/v1/users/me`, { method: 'OPTIONS' })
      expect(preflight.headers['access-control-allow-headers']!.split(', ')).toEqual(
        expect.arrayContaining(['x-hexclave-project-id', 'x-stack-project-id', 'x-hexclave-access-token']),
      )
      expect(preflight.headers['access-control-expose-headers']).toContain('x-hexclave-known-error')
      expect(await backendHeaderFamily(backend.both!)).toBe('both')
    })

    it('writes the onboarding sentinel into an empty config file and answers onboarding_status, keeping the older fields', async () => {
      const file = configFile('new-generation', '', { dependencies: { '@stackframe/stack': '2.8.108' } })
      const first = await mint('both', file)
      expect(first.status, first.text).toBe(200)
      expect(hostFile(file)).toBe('import type { StackConfig } from "@stackframe/stack";\n\nexport const config: StackConfig = "show-onboarding";\n')
      expect(first.json).toMatchObject({ branch_config_override_string: '{}', onboarding_status: 'config_choice', onboarding_outstanding: true })
      for (const key of ['project_id', 'publishable_client_key', 'secret_server_key', 'super_secret_admin_key']) expect(typeof first.json[key]).toBe('string')
      expect(first.json.publishable_client_key).toMatch(/^pck_/)
      // The same path, the same project and keys; a started onboarding stays where it is.
      expect((await mint('both', file, internal('x-hexclave-'))).json).toEqual(first.json)
      // A real config completes it.
      fs.writeFileSync(path.join(hostRoot, file), 'export const config = { auth: { password: { allowSignIn: true } } };\n')
      const configured = await mint('both', file)
      expect(configured.json).toMatchObject({ project_id: first.json.project_id, onboarding_status: 'completed', onboarding_outstanding: false })
      expect(JSON.parse(configured.json.branch_config_override_string)).toEqual({ auth: { password: { allowSignIn: true } } })
      // Back to the sentinel: the completed onboarding reopens at its first stage.
      fs.writeFileSync(path.join(hostRoot, file), 'export const config = "show-onboarding";\n')
      expect((await mint('both', file)).json).toMatchObject({ onboarding_status: 'config_choice', branch_config_override_string: '{}' })
    })

    it("lists the config files' projects (GET), to client access on project internal only", async () => {
      const file = configFile('listed', 'export const config = {};\n')
      const minted = await mint('both', file)
      const route = `${backend.both}/api/v1/internal/local-emulator/project`
      const list = await request(route, { headers: internal('x-hexclave-') })
      expect(list.status, list.text).toBe(200)
      expect(list.json.projects).toContainEqual({
        project_id: minted.json.project_id,
        absolute_file_path: file,
        display_name: 'Local Emulator: stack.config.ts',
      })
      expect(list.json.projects.every((p: object) => Object.keys(p).sort().join() === 'absolute_file_path,display_name,project_id')).toBe(true)
      expect((await request(route)).json.code).toBe('ACCESS_TYPE_REQUIRED')
      const other = {
        'x-stack-project-id': minted.json.project_id,
        'x-stack-access-type': 'client',
        'x-stack-publishable-client-key': minted.json.publishable_client_key,
      }
      expect((await request(route, { headers: other })).json.code).toBe('SCHEMA_ERROR')
    })

    it("signs in the seeded admin user of project internal, as Stack Auth's newer CLI does", async () => {
      const signIn = (password: string) =>
        request(`${backend.both}/api/v1/auth/password/sign-in`, {
          method: 'POST',
          headers: internal('x-stack-'),
          json: { email: 'local-emulator@stack-auth.com', password },
        })
      const answer = await signIn('LocalEmulatorPassword')
      expect(answer.status, answer.text).toBe(200)
      expect(answer.json.user_id).toBe(ADMIN_USER_ID)
      expect(typeof answer.json.access_token).toBe('string')
      expect((await signIn('wrong password')).json.code).toBe('EMAIL_PASSWORD_MISMATCH')
    })
  })
})
