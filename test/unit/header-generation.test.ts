/**
 * The header-generation check: a real HTTP server on loopback answering /api/v1/projects/current
 * as each backend generation does (Stack Auth's parseAuth order: no access type -> auth null ->
 * ACCESS_TYPE_REQUIRED; an access type without a project id -> ACCESS_TYPE_WITHOUT_PROJECT_ID),
 * and real package folders in a temp dir for the SDK resolution.
 */
import fs from 'node:fs'
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  backendHeaderFamily,
  headerGenerationWarning,
  headerMismatchWarning,
  installedSdkHeaderFamily,
  installedSdks,
  type BackendHeaders,
} from '../../src/stack/header-generation.js'

/** A backend of one generation: which request-header prefixes it reads. */
function backend(reads: string[]): http.Server {
  return http.createServer((req, res) => {
    const header = (name: string) => reads.map((prefix) => req.headers[prefix + name]).find((v) => typeof v === 'string' && v !== '')
    const knownError = (code: string) => {
      res.writeHead(400, { 'content-type': 'application/json', 'x-stack-known-error': code })
      res.end(JSON.stringify({ code, error: code }))
    }
    if (req.url !== '/api/v1/projects/current') {
      res.writeHead(404, { 'content-type': 'text/plain' })
      return res.end('Not found')
    }
    const accessType = header('access-type')
    if (!accessType) return knownError('ACCESS_TYPE_REQUIRED')
    if (!header('project-id')) return knownError('ACCESS_TYPE_WITHOUT_PROJECT_ID')
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ id: header('project-id') }))
  })
}

const servers: Record<string, string> = {}
const open: http.Server[] = []
let closedPort = 0

beforeAll(async () => {
  const start = async (name: string, server: http.Server) => {
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    open.push(server)
    servers[name] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }
  await start('x-stack', backend(['x-stack-']))
  await start('both', backend(['x-hexclave-', 'x-stack-']))
  await start(
    'other',
    http.createServer((_req, res) => res.end('<html>not Stack Auth</html>')),
  )
  // A port nothing listens on: bound, then closed.
  const probe = http.createServer()
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve))
  closedPort = (probe.address() as AddressInfo).port
  await new Promise((resolve) => probe.close(resolve))
})

const made: string[] = []
afterAll(async () => {
  await Promise.all(open.map((server) => new Promise((resolve) => server.close(resolve))))
  for (const dir of made) fs.rmSync(dir, { recursive: true, force: true })
})

describe('backendHeaderFamily', () => {
  it('tells a backend that reads only x-stack-* from one that reads X-Hexclave-* too', async () => {
    expect(await backendHeaderFamily(servers['x-stack']!)).toBe<BackendHeaders>('x-stack')
    expect(await backendHeaderFamily(servers.both!)).toBe<BackendHeaders>('both')
    expect(await backendHeaderFamily(`${servers.both}/`)).toBe('both') // a trailing slash
  })

  it('knows nothing of a server that is not Stack Auth, or of none', async () => {
    expect(await backendHeaderFamily(servers.other!)).toBeUndefined()
    expect(await backendHeaderFamily(`http://127.0.0.1:${closedPort}`, 1000)).toBeUndefined()
  })
})

/** A project folder with package folders under node_modules: { '@stackframe/js': '2.8.108' }. */
function project(packages: Record<string, string | object>, root?: string): string {
  if (!root) made.push((root = fs.mkdtempSync(path.join(os.tmpdir(), 'se-sdk-'))))
  for (const [name, version] of Object.entries(packages)) {
    const dir = path.join(root, 'node_modules', name)
    fs.mkdirSync(dir, { recursive: true })
    const json =
      typeof version === 'string'
        ? { name, version, exports: { '.': './index.js' } } // package.json not exported: found all the same
        : version
    fs.writeFileSync(path.join(dir, 'package.json'), JSON.stringify(json))
  }
  return root
}

describe('installedSdkHeaderFamily', () => {
  it('decides the family from the version: X-Hexclave-* from 2.8.108 on', () => {
    expect(installedSdkHeaderFamily(project({ '@stackframe/js': '2.8.108' }))).toMatchObject({
      name: '@stackframe/js',
      version: '2.8.108',
      headers: 'x-hexclave',
    })
    expect(installedSdkHeaderFamily(project({ '@stackframe/js': '2.9.0' }))).toMatchObject({ headers: 'x-hexclave' })
    expect(installedSdkHeaderFamily(project({ '@stackframe/stack': '2.8.102' }))).toMatchObject({ name: '@stackframe/stack', headers: 'x-stack' })
    expect(installedSdkHeaderFamily(project({ '@stackframe/react': '2.8.89' }))).toMatchObject({ name: '@stackframe/react', headers: 'x-stack' })
    expect(installedSdkHeaderFamily(project({ '@stackframe/js': '2.7.200' }))).toMatchObject({ headers: 'x-stack' })
    // Every @hexclave package is after the rename, whatever its version.
    expect(installedSdkHeaderFamily(project({ '@hexclave/js': '1.0.0' }))).toMatchObject({ name: '@hexclave/js', headers: 'x-hexclave' })
  })

  it('resolves as Node does from the project root: up the folders, the nearest copy first', () => {
    const root = project({ '@stackframe/js': '2.8.108' })
    const app = path.join(root, 'packages', 'app')
    fs.mkdirSync(app, { recursive: true })
    expect(installedSdkHeaderFamily(app)).toMatchObject({ version: '2.8.108', dir: path.join(root, 'node_modules', '@stackframe', 'js') })
    project({ '@stackframe/js': '2.8.102' }, app)
    expect(installedSdkHeaderFamily(app)).toMatchObject({ version: '2.8.102', headers: 'x-stack' })
  })

  it('names the SDK an old backend refuses when the project has several, and none when it has none', () => {
    const root = project({ '@stackframe/js': '2.8.102', '@hexclave/react': '1.2.3', '@hexclave/shared': '1.2.3' })
    expect(installedSdks(root).map((sdk) => `${sdk.name}@${sdk.version} ${sdk.headers}`)).toEqual([
      '@stackframe/js@2.8.102 x-stack',
      '@hexclave/react@1.2.3 x-hexclave',
      '@hexclave/shared@1.2.3 x-hexclave',
    ])
    expect(installedSdkHeaderFamily(root)).toMatchObject({ name: '@hexclave/react' })
    expect(installedSdkHeaderFamily(project({}))).toBeUndefined()
    expect(installedSdkHeaderFamily(project({ '@stackframe/js': { name: '@stackframe/js' } }))).toBeUndefined() // no version
  })

  it("finds this repository's own @stackframe/js, which sends X-Hexclave-*", () => {
    const repo = path.join(import.meta.dirname, '..', '..')
    const installed = JSON.parse(fs.readFileSync(path.join(repo, 'node_modules', '@stackframe', 'js', 'package.json'), 'utf8')) as { version: string }
    const sends = fs.readFileSync(path.join(repo, 'node_modules', '@stackframe', 'stack-shared', 'dist', 'interface', 'client-interface.js'), 'utf8')
    expect(installedSdkHeaderFamily(repo)).toMatchObject({
      name: '@stackframe/js',
      version: installed.version,
      headers: sends.includes('"X-Hexclave-Project-Id"') ? 'x-hexclave' : 'x-stack',
    })
  })
})

describe('the mismatch warning', () => {
  const sdk = (name: string, version: string, headers: 'x-stack' | 'x-hexclave') => ({ name, version, headers, dir: '/x' })

  it('is one line naming both sides and the fix, only for an X-Hexclave SDK and an x-stack backend', () => {
    const line = headerMismatchWarning('x-stack', sdk('@stackframe/js', '2.8.108', 'x-hexclave'), 'stack-auth emulator-dev-latest')!
    expect(line).not.toContain('\n')
    for (const part of [
      '@stackframe/js 2.8.108',
      'image stack-auth emulator-dev-latest',
      'x-stack-*',
      'ACCESS_TYPE_REQUIRED',
      'npm install @stackframe/js@2.8.102',
      'stack-emulator image pull',
    ]) {
      expect(line).toContain(part)
    }
    expect(headerMismatchWarning('x-stack', sdk('@stackframe/react', '2.8.108', 'x-hexclave'), 'i')).toContain('@stackframe/react@2.8.89')
    expect(headerMismatchWarning('x-stack', sdk('@hexclave/js', '1.0.0', 'x-hexclave'), 'i')).toContain('older than 2.8.108 in its place')
    expect(headerMismatchWarning('both', sdk('@stackframe/js', '2.8.108', 'x-hexclave'), 'i')).toBeUndefined()
    expect(headerMismatchWarning('x-stack', sdk('@stackframe/js', '2.8.102', 'x-stack'), 'i')).toBeUndefined()
    expect(headerMismatchWarning(undefined, sdk('@stackframe/js', '2.8.108', 'x-hexclave'), 'i')).toBeUndefined()
    expect(headerMismatchWarning('x-stack', undefined, 'i')).toBeUndefined()
  })

  it('comes from one request to the backend, for a project whose SDK sends X-Hexclave-*', async () => {
    const renamed = project({ '@stackframe/js': '2.8.108' })
    expect(await headerGenerationWarning(servers['x-stack']!, renamed, 'stack-auth-fixture')).toMatch(
      /^@stackframe\/js 2\.8\.108 sends only X-Hexclave-\* headers, but the backend of image stack-auth-fixture reads only x-stack-\*/,
    )
    expect(await headerGenerationWarning(servers.both!, renamed, 'stack-auth-fixture')).toBeUndefined()
    expect(await headerGenerationWarning(servers['x-stack']!, project({ '@stackframe/js': '2.8.102' }), 'stack-auth-fixture')).toBeUndefined()
    expect(await headerGenerationWarning(`http://127.0.0.1:${closedPort}`, renamed, 'stack-auth-fixture')).toBeUndefined()
  })
})
