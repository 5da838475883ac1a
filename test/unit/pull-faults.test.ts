/**
 * A pull against a release server that misbehaves (#22, #24): more bytes than the release lists,
 * a drip that never ends, and the HTTP(S)_PROXY / NO_PROXY a user's network needs. Real HTTP on
 * loopback (test/release-server.ts and a tiny proxy below), real files, small random disks, no VM.
 * Bounds come from STACK_EMULATOR_PULL_IDLE_TIMEOUT, never from timing assertions.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import http from 'node:http'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import type { AddressInfo } from 'node:net'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { snapshotStore } from '../../src/drivers/qemu/snapshot.js'
import { DEFAULT_TEMPLATE, pullRelease } from '../../src/image/pull.js'
import { readSettings } from '../../src/settings.js'
import { startReleaseServer, type ReleaseServer } from '../release-server.js'

const ASSET = 'stack-emulator-amd64.qcow2'
const TAG = 'emulator-dev-latest'
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'se-pull-faults-'))
const disk = path.join(home, 'disk.qcow2')
const bytes = crypto.randomBytes(300_000)
fs.writeFileSync(disk, bytes)
const diskSha = crypto.createHash('sha256').update(bytes).digest('hex')

let server: ReleaseServer
let cache: string
let caches = 0
const part = () => path.join(cache, 'images', `stack-auth-amd64-${TAG}.part`)
const filesSince = (since: number) => server.served.slice(since).filter((s) => s.server === 'files')

beforeAll(async () => {
  server = await startReleaseServer()
  server.publish(TAG, ASSET, disk)
})
afterAll(async () => {
  await server?.close()
  fs.rmSync(home, { recursive: true, force: true })
})
beforeEach(() => {
  cache = path.join(home, `cache-${++caches}`)
  fs.mkdirSync(cache)
  vi.stubEnv('STACK_EMULATOR_CACHE_DIR', cache)
  vi.stubEnv('STACK_EMULATOR_RELEASES_URL', server.api)
  vi.stubEnv('GITHUB_TOKEN', '')
  for (const name of ['HTTP_PROXY', 'HTTPS_PROXY', 'NO_PROXY']) {
    vi.stubEnv(name, '')
    vi.stubEnv(name.toLowerCase(), '')
  }
  Object.assign(server.mode, { range: true, extraBytes: undefined, drip: undefined })
})
afterEach(() => vi.unstubAllEnvs())

function pull() {
  const logs: string[] = []
  const result = pullRelease({
    tag: TAG,
    arch: 'amd64',
    sha256: undefined,
    snapshots: snapshotStore,
    manifestTemplate: DEFAULT_TEMPLATE,
    settings: readSettings(),
    onProgress: () => {},
    onLog: (line) => logs.push(line),
  })
  return { result, logs }
}

describe('a pull stops at the release size', () => {
  it('fails on more bytes than the release lists, and keeps no part file', async () => {
    server.mode.extraBytes = 2_000_000 // no Content-Length: only the release's size says where the file ends
    await expect(pull().result).rejects.toMatchObject({
      code: 'PULL_FAILED',
      message: expect.stringMatching(
        /^The download of stack-emulator-amd64\.qcow2 \(.*\) sent more than the 300000 bytes expected .*; the partial download was removed\. Try again later/,
      ),
    })
    expect(fs.existsSync(part())).toBe(false)
    expect(fs.existsSync(`${part()}.json`)).toBe(false)

    const { result } = pull() // a good answer then installs
    expect(await result).toMatchObject({ sha256: diskSha, resumedFrom: 0, transferredBytes: bytes.length })
  })
})

describe('a stalled pull', () => {
  it('fails when a drip outlasts the idle deadline, and the next pull resumes with Range and verifies', async () => {
    vi.stubEnv('STACK_EMULATOR_PULL_IDLE_TIMEOUT', '1')
    // A byte every 100 ms: the connection is never silent for long, yet the file never arrives.
    server.mode.drip = { after: 100_000, everyMs: 100 }
    await expect(pull().result).rejects.toMatchObject({
      code: 'PULL_FAILED',
      message: expect.stringMatching(
        /^The download of stack-emulator-amd64\.qcow2 stalled at .+ of 300\.0 kB: less than 64\.0 kB arrived in 1 s\. Run the pull again: it resumes where it stopped\. On a slow link, raise STACK_EMULATOR_PULL_IDLE_TIMEOUT/,
      ),
    })
    const kept = fs.statSync(part()).size
    expect(kept).toBeGreaterThan(0)
    expect(kept).toBeLessThan(bytes.length)

    const since = server.served.length
    const { result, logs } = pull()
    expect(await result).toMatchObject({ sha256: diskSha, resumedFrom: kept, transferredBytes: bytes.length - kept })
    expect(filesSince(since)).toEqual([expect.objectContaining({ status: 206, range: `bytes=${kept}-`, ifRange: expect.stringMatching(/^"/) })])
    expect(logs).toEqual([expect.stringMatching(/^resuming the download of stack-emulator-amd64\.qcow2 at /)])
    expect(fs.existsSync(part())).toBe(false)
  }, 60_000)

  it('fails on silence the same way, and starts over from zero when the server answers 200 to the Range', async () => {
    vi.stubEnv('STACK_EMULATOR_PULL_IDLE_TIMEOUT', '1')
    server.mode.drip = { after: 100_000, everyMs: 600_000 } // then nothing at all
    await expect(pull().result).rejects.toMatchObject({
      code: 'PULL_FAILED',
      message: expect.stringMatching(/ stalled at .+ of 300\.0 kB: .* raise STACK_EMULATOR_PULL_IDLE_TIMEOUT/),
    })

    server.mode.range = false
    const since = server.served.length
    const { result, logs } = pull()
    expect(await result).toMatchObject({ sha256: diskSha, resumedFrom: 0, transferredBytes: bytes.length })
    expect(filesSince(since)).toEqual([expect.objectContaining({ status: 200, range: expect.stringMatching(/^bytes=\d+-$/) })])
    expect(logs).toEqual(['the server does not support resuming (no Range); starting over'])
  }, 60_000)
})

describe('a pull through a proxy', () => {
  it('goes through HTTP_PROXY, and around it for the hosts NO_PROXY names', async () => {
    const proxy = await startProxy()
    try {
      vi.stubEnv('HTTP_PROXY', proxy.url)
      expect(await pull().result).toMatchObject({ sha256: diskSha })
      const apiHost = new URL(server.api).host
      expect(proxy.seen).toContain(apiHost) // the release API
      expect(proxy.seen.some((host) => host !== apiHost)).toBe(true) // the file host it redirects to

      cache = path.join(home, `cache-${++caches}`)
      fs.mkdirSync(cache)
      vi.stubEnv('STACK_EMULATOR_CACHE_DIR', cache)
      vi.stubEnv('NO_PROXY', '127.0.0.1')
      const before = proxy.seen.length
      expect(await pull().result).toMatchObject({ sha256: diskSha, transferredBytes: bytes.length })
      expect(proxy.seen.slice(before)).toEqual([])
    } finally {
      await proxy.close()
    }
  })
})

/** A loopback HTTP proxy: CONNECT tunnels and absolute-URL forwards, recording each target host. */
async function startProxy(): Promise<{ url: string; seen: string[]; close(): Promise<void> }> {
  const seen: string[] = []
  const proxy = http.createServer((req, res) => {
    const target = new URL(req.url ?? '')
    seen.push(target.host)
    const upstream = http.request(target, { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers)
      answer.pipe(res)
    })
    upstream.on('error', () => res.destroy())
    req.pipe(upstream)
  })
  proxy.on('connect', (req: http.IncomingMessage, socket: net.Socket, head: Buffer) => {
    seen.push(req.url ?? '')
    const [host, port] = (req.url ?? '').split(':')
    const upstream = net.connect(Number(port), host, () => {
      socket.write('HTTP/1.1 200 Connection Established\r\n\r\n')
      upstream.write(head)
      upstream.pipe(socket).pipe(upstream)
    })
    upstream.on('error', () => socket.destroy())
    socket.on('error', () => upstream.destroy())
  })
  await new Promise<void>((resolve) => proxy.listen(0, '127.0.0.1', resolve))
  return {
    url: `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`,
    seen,
    close: async () => {
      proxy.closeAllConnections()
      await new Promise((r) => proxy.close(r))
    },
  }
}
