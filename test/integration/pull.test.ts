/**
 * `stack-emulator image pull` and pullImage() against a loopback stand-in for GitHub's release
 * API (test/release-server.ts) serving the fixture image's disk as the release asset: install,
 * resume, integrity, errors, the token, concurrency, list/rm/prune, names, and a pulled image
 * that boots. Each case has a cache of its own; no real network.
 */
import crypto from 'node:crypto'
import { createReadStream } from 'node:fs'
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { snapshotStore } from '../../src/drivers/qemu/snapshot.js'
import { acquire } from '../../src/client/acquire.js'
import { stopInstance } from '../../src/client/control.js'
import { pullImage, type PullProgress } from '../../src/client/pull.js'
import { fixtureDir, fixtureFingerprint } from '../../src/image/fixture.js'
import { resolveImage } from '../../src/image/resolve.js'
import { readSettings } from '../../src/settings.js'
import { cli, http, leftoversUnder, qemuProcesses, sharedCache, useTempHome } from '../helpers.js'
import { startReleaseServer, type ReleaseServer } from '../release-server.js'

const home = useTempHome('se-pull-')
const fixture = fixtureDir(sharedCache, await fixtureFingerprint())
const disk = path.join(fixture, 'disk.qcow2')
const diskSize = fs.statSync(disk).size
const ASSET = 'stack-emulator-amd64.qcow2'
const small = (name: string) => {
  const file = path.join(home, name)
  fs.writeFileSync(file, crypto.randomBytes(1_000_000))
  return file
}
const smallA = small('small-a.qcow2')
const smallB = small('small-b.qcow2')
let server: ReleaseServer

let caches = 0
/** A cache of its own, for this process (pullImage) and the CLI runs below. */
function freshCache(): string {
  const cache = path.join(home, `cache-${++caches}`)
  fs.mkdirSync(cache)
  process.env.STACK_EMULATOR_CACHE_DIR = cache
  return cache
}
const imageDir = (cache: string, tag: string, arch = 'amd64') => path.join(cache, 'images', `stack-auth-${arch}-${tag}`)
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'))
const filesSince = (since: number) => server.served.slice(since).filter((s) => s.server === 'files')
const lines = (text: string) => text.split('\n').filter(Boolean)

async function sha256Of(file: string): Promise<string> {
  const hash = crypto.createHash('sha256')
  for await (const chunk of createReadStream(file)) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Every file under `dir` whose bytes contain `needle`. */
function filesContaining(dir: string, needle: string): string[] {
  return fs
    .readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => path.join(e.parentPath, e.name))
    .filter((file) => fs.readFileSync(file).includes(needle))
}

let diskSha: string
beforeAll(async () => {
  server = await startReleaseServer()
  process.env.STACK_EMULATOR_RELEASES_URL = server.api
  process.env.no_proxy = process.env.NO_PROXY = '127.0.0.1' // a proxy in the environment cannot reach the loopback server
  server.publish('emulator-dev-latest', ASSET, disk)
  server.publish('emulator-dev-latest', 'stack-emulator-arm64.qcow2', smallB)
  server.publish('emulator-small-latest', ASSET, smallA)
  server.publish('emulator-small-20260401-1a2b3c4d', ASSET, smallB)
  diskSha = await sha256Of(disk)
})

afterAll(async () => {
  await server?.close()
  await stopInstance('pulled')
  expect(await leftoversUnder(home)).toEqual([])
  fs.rmSync(home, { recursive: true, force: true }) // several copies of the disk: about 500 MB
})

describe('image pull', () => {
  it('installs the disk and a manifest whose fingerprint is the sha256 of the file; a second pull downloads nothing', async () => {
    const cache = freshCache()
    const progress: PullProgress[] = []
    const logs: string[] = []
    const started = performance.now()
    const result = await pullImage({ onProgress: (p) => progress.push(p), onLog: (l) => logs.push(l) })
    const seconds = (performance.now() - started) / 1000
    console.log(`pulled ${(diskSize / 1e6).toFixed(1)} MB in ${seconds.toFixed(2)} s: ${(diskSize / 1e6 / seconds).toFixed(1)} MB/s`)

    const dir = imageDir(cache, 'emulator-dev-latest')
    expect(result).toMatchObject({
      image: 'stack-auth@emulator-dev-latest',
      arch: 'amd64',
      downloaded: true,
      resumedFrom: 0,
      transferredBytes: diskSize,
      sizeBytes: diskSize,
      manifest: path.join(dir, 'manifest.json'),
    })
    // The runtime volume's base.env travels from beside the template into the image folder.
    expect(fs.readdirSync(dir).sort()).toEqual([ASSET, 'manifest.json', 'stack-auth.base.env'].sort())
    expect(fs.readdirSync(path.join(cache, 'images'))).toEqual(['stack-auth-amd64-emulator-dev-latest']) // no part, staging or lock left
    const manifest = readJson(path.join(dir, 'manifest.json'))
    const template = readJson(path.resolve('manifests/stack-auth.json'))
    expect(manifest.fingerprint).toBe(await sha256Of(path.join(dir, ASSET)))
    expect(manifest.fingerprint).toBe(diskSha)
    expect(manifest).toMatchObject({
      name: 'stack-auth-amd64-emulator-dev-latest',
      disk: ASSET,
      boot: { kind: 'disk' },
      services: template.services,
      memoryMb: template.memoryMb,
      source: {
        repo: 'stack-auth/stack-auth',
        tag: 'emulator-dev-latest',
        arch: 'amd64',
        assetUrl: expect.stringMatching(new RegExp(`^${server.api}/repos/stack-auth/stack-auth/releases/assets/\\d+$`)),
        sizeBytes: diskSize,
      },
    })
    expect(Date.now() - Date.parse(manifest.source.pulledAt)).toBeLessThan(60_000)
    expect(progress.at(-1)).toEqual({ receivedBytes: diskSize, totalBytes: diskSize, bytesPerSecond: expect.any(Number) })
    expect(progress.at(-1)!.bytesPerSecond).toBeGreaterThan(0)
    expect(logs).toEqual([])

    const since = server.served.length
    const again = await pullImage({ onLog: (l) => logs.push(l) })
    expect(again).toMatchObject({ downloaded: false, sha256: diskSha })
    expect(filesSince(since)).toEqual([])
    expect(logs).toEqual(['stack-auth@emulator-dev-latest (amd64) is up to date'])
  })

  it('resumes a download cut halfway, asking only for the rest', async () => {
    const cache = freshCache()
    server.mode.dropAfter = Math.floor(diskSize / 2)
    const cut = await cli(['image', 'pull'])
    expect(cut.exitCode).toBe(1)
    const total = `${(diskSize / 1e6).toFixed(1)} MB`.replace('.', '\\.')
    expect(lines(cut.stderr)).toEqual([
      expect.stringMatching(
        new RegExp(
          `^stack-emulator: The download of stack-emulator-amd64\\.qcow2 was interrupted after [\\d.]+ MB of ${total} \\(.*\\)\\. Run the pull again: it resumes where it stopped\\.$`,
        ),
      ),
    ])
    const kept = fs.statSync(`${imageDir(cache, 'emulator-dev-latest')}.part`).size
    expect(kept).toBeGreaterThan(0)
    expect(fs.existsSync(imageDir(cache, 'emulator-dev-latest'))).toBe(false)

    const since = server.served.length
    const started = performance.now()
    const resumed = await cli(['image', 'pull', '--json'])
    const seconds = (performance.now() - started) / 1000
    expect(resumed.exitCode, resumed.stderr).toBe(0)
    expect(resumed.stderr).toContain(`resuming the download of ${ASSET} at`)
    const [file] = filesSince(since)
    expect(file).toMatchObject({ status: 206, range: `bytes=${kept}-`, ifRange: expect.stringMatching(/^"/), bytes: diskSize - kept })
    expect(server.fileBytes(since)).toBeLessThan(diskSize)
    expect(JSON.parse(resumed.stdout)).toMatchObject({ downloaded: true, resumedFrom: kept, transferredBytes: diskSize - kept, sha256: diskSha })
    console.log(
      `resume: kept ${kept} bytes, re-sent ${server.fileBytes(since) - (diskSize - kept)} bytes, the rest (${diskSize - kept} bytes) in ${seconds.toFixed(2)} s (CLI start included)`,
    )
  })

  it('installs nothing when the digest is not the one pinned, and names both', async () => {
    const cache = freshCache()
    const wrong = '0'.repeat(64)
    const result = await cli(['image', 'pull', '--branch', 'small', '--sha256', wrong, '--json'])
    expect(result.exitCode).toBe(1)
    const actual = await sha256Of(smallA)
    expect(lines(result.stderr)).toHaveLength(1)
    expect(result.stderr).toContain(`has sha256 ${actual}, not the expected ${wrong}; nothing was installed`)
    expect(JSON.parse(result.stdout).error.code).toBe('CHECKSUM_MISMATCH')
    expect(fs.readdirSync(path.join(cache, 'images'))).toEqual([])

    const right = await cli(['image', 'pull', '--branch', 'small', '--sha256', actual.toUpperCase()])
    expect(right.exitCode, right.stderr).toBe(0)
  })

  it('starts over, saying why, when the server cannot resume', async () => {
    const cache = freshCache()
    server.mode.range = false
    try {
      server.mode.dropAfter = 300_000
      expect((await cli(['image', 'pull', '--branch', 'small'])).exitCode).toBe(1)
      expect(fs.statSync(`${imageDir(cache, 'emulator-small-latest')}.part`).size).toBeGreaterThan(0)
      const since = server.served.length
      const again = await cli(['image', 'pull', '--branch', 'small'])
      expect(again.exitCode, again.stderr).toBe(0)
      expect(lines(again.stderr)).toEqual(['stack-emulator: the server does not support resuming (no Range); starting over'])
      expect(filesSince(since)).toMatchObject([{ status: 200, bytes: 1_000_000 }])
      expect(readJson(path.join(imageDir(cache, 'emulator-small-latest'), 'manifest.json')).fingerprint).toBe(await sha256Of(smallA))
    } finally {
      server.mode.range = true
    }
  })

  it('says in one line what it tried and what to do when the tag does not exist or the server cannot be reached', async () => {
    freshCache()
    const missing = await cli(['image', 'pull', '--tag', 'emulator-dev-20200101-deadbeef'], { GITHUB_TOKEN: 'ghp_not_in_messages' })
    expect(missing.exitCode).toBe(1)
    expect(lines(missing.stderr)).toEqual([
      `stack-emulator: No release emulator-dev-20200101-deadbeef in stack-auth/stack-auth (404 from ${server.api}/repos/stack-auth/stack-auth/releases/tags/emulator-dev-20200101-deadbeef). Check the tag: emulator-<branch>-latest (--branch, default dev) or an immutable emulator-<branch>-<YYYYMMDD>-<sha8> (--tag) listed on the repository's releases page; with a mirror, check STACK_EMULATOR_RELEASES_URL.`,
    ])

    const closed = net.createServer()
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r))
    const port = (closed.address() as net.AddressInfo).port
    await new Promise((r) => closed.close(r))
    const offline = await cli(['image', 'pull'], { STACK_EMULATOR_RELEASES_URL: `http://127.0.0.1:${port}`, GITHUB_TOKEN: 'ghp_not_in_messages' })
    expect(offline.exitCode).toBe(1)
    expect(lines(offline.stderr)).toEqual([
      `stack-emulator: Cannot reach http://127.0.0.1:${port}/repos/stack-auth/stack-auth/releases/tags/emulator-dev-latest (ECONNREFUSED). Check the network (and any proxy), set STACK_EMULATOR_RELEASES_URL to a reachable mirror of GitHub's release API, or point --image at the manifest.json of an image you already have.`,
    ])
    expect(missing.stderr + offline.stderr).not.toContain('ghp_not_in_messages')
  })

  it('sends GITHUB_TOKEN to the API only, never to the file host, and writes it nowhere', async () => {
    const cache = freshCache()
    const token = `ghp_${crypto.randomBytes(12).toString('hex')}`
    const since = server.served.length
    const result = await cli(['image', 'pull', '--branch', 'small', '--json'], { GITHUB_TOKEN: token })
    expect(result.exitCode, result.stderr).toBe(0)
    const served = server.served.slice(since)
    expect(served.map((s) => [s.server, s.status, s.authorization ?? null])).toEqual([
      ['api', 200, `Bearer ${token}`], // the release
      ['api', 302, `Bearer ${token}`], // the asset's API URL
      ['files', 200, null], // the redirect target, on another origin
    ])
    expect(served[1]!.accept).toBe('application/octet-stream')
    expect(result.stdout + result.stderr).not.toContain(token)
    expect(filesContaining(cache, token)).toEqual([])
    if (fs.existsSync(path.join(home, 'state'))) expect(filesContaining(path.join(home, 'state'), token)).toEqual([])
  })

  it('downloads once when two pulls run at once; the second waits and says so', async () => {
    const cache = freshCache()
    server.mode.bytesPerSecond = 400_000 // 2.5 s for the asset: the second pull arrives while the first downloads
    try {
      const since = server.served.length
      const [a, b] = await Promise.all([cli(['image', 'pull', '--branch', 'small', '--json']), cli(['image', 'pull', '--branch', 'small', '--json'])])
      expect([a.exitCode, b.exitCode], a.stderr + b.stderr).toEqual([0, 0])
      expect(filesSince(since)).toHaveLength(1)
      const outcomes = [a, b].map((r) => JSON.parse(r.stdout).downloaded).sort()
      expect(outcomes).toEqual([false, true])
      // After 2 s of quiet, plain progress lines (stderr is not a terminal): bytes, rate, time left.
      const downloader = [a, b].find((r) => JSON.parse(r.stdout).downloaded)!
      expect(downloader.stderr).toMatch(
        /^stack-emulator: downloading stack-emulator-amd64\.qcow2 \([\d.]+( kB)? of 1\.0 MB, [\d.]+ kB\/s, \d+ s left\) \(\ds\)$/m,
      )
      const waited = [a, b].filter((r) => r.stderr.includes('waiting for another pull of stack-auth@emulator-small-latest (amd64)'))
      expect(waited).toHaveLength(1)
      expect(fs.readdirSync(path.join(cache, 'images'))).toEqual(['stack-auth-amd64-emulator-small-latest'])
    } finally {
      server.mode.bytesPerSecond = undefined
    }
  })

  it('drops the snapshots of the image it replaces, and only those', async () => {
    const cache = freshCache()
    const tag = 'emulator-replace-latest'
    server.publish(tag, ASSET, smallA)
    const first = await pullImage({ branch: 'replace' })
    const snapshot = (name: string, image: string) => {
      const dir = path.join(cache, 'snapshots', `${name}-${crypto.randomBytes(8).toString('hex')}`)
      fs.mkdirSync(dir, { recursive: true })
      fs.writeFileSync(path.join(dir, 'snapshot.json'), JSON.stringify({ fingerprint: { image } }))
      fs.writeFileSync(path.join(dir, 'ram'), Buffer.alloc(4096, 1))
      return dir
    }
    const old = snapshot(`stack-auth-amd64-${tag}`, first.sha256)
    const otherFingerprint = snapshot(`stack-auth-amd64-${tag}`, 'f'.repeat(64))
    const otherImage = snapshot('stack-auth-amd64-emulator-dev-latest', first.sha256)

    server.publish(tag, ASSET, smallB) // a new upload under the moving tag
    const logs: string[] = []
    const second = await pullImage({ branch: 'replace', onLog: (l) => logs.push(l) })
    expect(second).toMatchObject({ downloaded: true, sha256: await sha256Of(smallB) })
    expect(readJson(second.manifest).fingerprint).toBe(second.sha256)
    expect([old, otherFingerprint, otherImage].map((d) => fs.existsSync(d))).toEqual([false, true, true])
    expect(logs).toEqual([expect.stringMatching(/^dropped the snapshots of the replaced stack-auth@emulator-replace-latest \(\d/)])
  })
  it('keeps the download when the manifest template is bad, and installs it without another', async () => {
    freshCache()
    const bad = path.join(home, 'bad-template.json')
    fs.writeFileSync(bad, JSON.stringify({ name: 'x', boot: { kind: 'disk' }, services: [] }))
    await expect(pullImage({ branch: 'small', manifestTemplate: bad })).rejects.toMatchObject({
      code: 'IMAGE_NOT_FOUND',
      message: expect.stringMatching(new RegExp(`^The manifest made from ${bad} does not load: Image manifest .* is invalid: .*"memoryMb"`)),
    })
    const since = server.served.length
    expect(await pullImage({ branch: 'small' })).toMatchObject({ downloaded: true, resumedFrom: 1_000_000, transferredBytes: 0 })
    expect(filesSince(since)).toEqual([])
  })
})

describe('image list, rm and prune', () => {
  it('lists pulled images and built fixtures, removes by name, prunes what was not used', async () => {
    const cache = freshCache()
    for (const args of [
      ['--branch', 'small'],
      ['--tag', 'emulator-small-20260401-1a2b3c4d'],
    ])
      expect((await cli(['image', 'pull', ...args])).exitCode).toBe(0)
    const fixtureCopy = path.join(cache, 'images', 'fixture-0123456789abcdef')
    fs.mkdirSync(fixtureCopy)
    fs.writeFileSync(path.join(fixtureCopy, 'manifest.json'), JSON.stringify({ ...readJson(path.join(fixture, 'manifest.json')), fingerprint: 'fixture-fp' }))

    const list = await cli(['image', 'list', '--json'])
    expect(list.exitCode, list.stderr).toBe(0)
    const { images } = JSON.parse(list.stdout)
    expect(images).toEqual([
      expect.objectContaining({
        name: 'fixture',
        tag: null,
        arch: 'amd64',
        sha256: null,
        pulledAt: null,
        imageName: 'stack-auth-fixture',
        fingerprint: 'fixture-fp',
      }),
      expect.objectContaining({
        name: 'stack-auth',
        tag: 'emulator-small-20260401-1a2b3c4d',
        arch: 'amd64',
        sha256: await sha256Of(smallB),
        pulledAt: expect.any(String),
        lastUsedAt: expect.any(String),
      }),
      expect.objectContaining({ name: 'stack-auth', tag: 'emulator-small-latest', sha256: await sha256Of(smallA), sizeBytes: expect.any(Number) }),
    ])
    expect(images[2].sizeBytes).toBeGreaterThanOrEqual(1_000_000)
    expect(lines((await cli(['image', 'list'])).stdout)).toEqual([
      expect.stringMatching(/^IMAGE +ARCH +SIZE +SNAPSHOTS +SEEDED +SHA256 +PULLED +LAST USED +COMMIT$/),
      expect.stringMatching(/^fixture +amd64 /),
      expect.stringMatching(/^stack-auth@emulator-small-20260401-1a2b3c4d +amd64 +1\.0 MB +- +- +[0-9a-f]{12} +\d{4}-/),
      expect.stringMatching(/^stack-auth@emulator-small-latest +amd64 /),
    ])

    const rm = await cli(['image', 'rm', 'stack-auth@emulator-small-20260401-1a2b3c4d', '--json'])
    expect(rm.exitCode, rm.stderr).toBe(0)
    expect(JSON.parse(rm.stdout)).toMatchObject({ removed: [{ tag: 'emulator-small-20260401-1a2b3c4d' }], freedBytes: expect.any(Number) })
    expect(fs.existsSync(imageDir(cache, 'emulator-small-20260401-1a2b3c4d'))).toBe(false)
    const none = await cli(['image', 'rm', 'stack-auth@emulator-nope-latest'])
    expect([none.exitCode, none.stderr]).toEqual([
      1,
      expect.stringContaining('No cached image is stack-auth@emulator-nope-latest (cached: fixture, stack-auth@emulator-small-latest)'),
    ])
    expect((await cli(['image', 'rm', './manifest.json'])).exitCode).toBe(2)

    // Unused for 40 days: the pulled image, a snapshot, a partial download. Recent: the fixture and a
    // snapshot of an image outside the cache. An orphan: a fixture snapshot whose build is gone.
    const old = new Date(Date.now() - 40 * 86_400_000)
    fs.utimesSync(path.join(imageDir(cache, 'emulator-small-latest'), 'manifest.json'), old, old)
    const hex = () => crypto.randomBytes(8).toString('hex')
    const snapshot = (name: string, image: string, when?: Date, seededSnapshot = false) => {
      const dir = path.join(cache, 'snapshots', `${name}-${hex()}${seededSnapshot ? `-checkpoint-${hex()}` : ''}`)
      fs.mkdirSync(dir, { recursive: true })
      fs.writeFileSync(path.join(dir, 'snapshot.json'), JSON.stringify({ fingerprint: { image } }))
      if (when) fs.utimesSync(path.join(dir, 'snapshot.json'), when, when)
      return dir
    }
    const stale = snapshot('my-image', 'x', old)
    const recent = snapshot('my-image', 'y')
    const orphan = snapshot('stack-auth-fixture', 'a-build-that-is-gone')
    const ofFixture = snapshot('stack-auth-fixture', 'fixture-fp')
    // Seeded snapshots (seeded snapshots) sit beside their ready snapshot and go with it.
    const orphanSeededSnapshot = snapshot('stack-auth-fixture', 'a-build-that-is-gone', undefined, true)
    const seededSnapshotOfFixture = snapshot('stack-auth-fixture', 'fixture-fp', undefined, true)
    const part = path.join(cache, 'images', 'stack-auth-amd64-emulator-x-latest.part')
    fs.writeFileSync(part, Buffer.alloc(1000))
    fs.utimesSync(part, old, old)

    const prune = await cli(['image', 'prune', '--older-than', '30', '--json'])
    expect(prune.exitCode, prune.stderr).toBe(0)
    const pruned = JSON.parse(prune.stdout)
    expect(pruned.images.map((i: { tag: string }) => i.tag)).toEqual(['emulator-small-latest'])
    expect(pruned.snapshots.sort()).toEqual([stale, orphan, orphanSeededSnapshot].sort())
    expect(pruned.leftovers).toEqual([part])
    expect(pruned.freedBytes).toBeGreaterThan(1_000_000)
    expect([recent, ofFixture, seededSnapshotOfFixture, fixtureCopy].every((d) => fs.existsSync(d))).toBe(true)
    expect((await cli(['image', 'prune'])).stdout).toBe('Nothing unused for 30 days; freed 0 B.')
  })
})

describe('images by name', () => {
  it('resolves stack-auth@<tag> and stack-auth, pulling what is missing, and records their use', async () => {
    const cache = freshCache()
    const settings = readSettings()
    const phases: string[] = []
    const ctx = { settings, snapshots: snapshotStore, progress: (p: string) => phases.push(p), log: () => {} }
    const named = await resolveImage('stack-auth@emulator-small-20260401-1a2b3c4d', ctx)
    expect(named.name).toBe('stack-auth-amd64-emulator-small-20260401-1a2b3c4d')
    expect(phases[0]).toBe('pulling stack-auth@emulator-small-20260401-1a2b3c4d (amd64), which is not in the cache yet')
    expect(phases.at(-1)).toMatch(/^downloading stack-emulator-amd64\.qcow2 \(1\.0 of 1\.0 MB/)

    await new Promise((r) => setTimeout(r, 20))
    await pullImage({ branch: 'small' })
    const newest = await resolveImage('stack-auth', ctx)
    expect(newest.name).toBe('stack-auth-amd64-emulator-small-latest')

    const old = new Date(Date.now() - 40 * 86_400_000)
    fs.utimesSync(named.file, old, old)
    phases.length = 0
    await resolveImage('stack-auth@emulator-small-20260401-1a2b3c4d', ctx)
    expect(phases).toEqual([]) // in the cache: no pull
    expect(Date.now() - fs.statSync(named.file).mtimeMs).toBeLessThan(60_000)

    // Nothing pulled yet: `stack-auth` pulls the dev branch's latest.
    freshCache()
    expect((await resolveImage('stack-auth', { ...ctx, settings: readSettings() })).name).toBe('stack-auth-amd64-emulator-dev-latest')
    expect(cache).not.toBe(process.env.STACK_EMULATOR_CACHE_DIR)
  })

  it('refuses bad input with exit code 2 and a message that names it, before any request', async () => {
    freshCache()
    const since = server.served.length
    const cases: [string[], RegExp][] = [
      [['image', 'pull', '--arch', 'x86'], /--arch must be amd64 or arm64, got "x86"/],
      [['image', 'pull', '--tag', 'v1.0'], /--tag must be a release tag emulator-<branch>-latest or emulator-<branch>-<YYYYMMDD>-<sha8>, got "v1.0"/],
      [['image', 'pull', '--sha256', 'xyz'], /--sha256 must be a sha256 digest \(64 hex digits\), got "xyz"/],
      [['image', 'pull', '--branch', 'a/b'], /--branch must be a release branch/],
      [['image', 'pull', '--branch', 'dev', '--tag', 'emulator-dev-latest'], /^stack-emulator: Pass a branch or a tag, not both: a tag names its branch/],
      [['start', '--image', 'stack-auth@latest'], /--image must be stack-auth@<tag> with a tag/],
    ]
    for (const [args, message] of cases) {
      const result = await cli(args)
      expect(result.exitCode, args.join(' ')).toBe(2)
      expect(lines(result.stderr), args.join(' ')).toEqual([expect.stringMatching(message)])
    }
    expect(server.served.length).toBe(since)
  })
})

describe('a pulled image', () => {
  it('boots: --warm captures its ready snapshot, and the next start restores it', async () => {
    const cache = freshCache()
    // The fixture's manifest as the template, with its runtime volume's base.env beside it: the
    // pull carries that file into the installed image.
    const { fingerprint: _f, builtAt: _b, buildSeconds: _s, ...fixtureManifest } = readJson(path.join(fixture, 'manifest.json'))
    const template = path.join(home, 'fixture-template.json')
    fs.writeFileSync(template, JSON.stringify(fixtureManifest))
    fs.copyFileSync(path.join(fixture, 'base.env'), path.join(home, 'base.env'))
    server.publish('emulator-boot-latest', ASSET, disk)
    const phases: string[] = []
    const pulled = await pullImage({ branch: 'boot', manifestTemplate: template, warm: true, onPhase: (p) => phases.push(p) })
    expect(pulled).toMatchObject({ warmed: true, sha256: diskSha })
    expect(phases).toContain('capturing the ready snapshot')
    const snapshots = fs.readdirSync(path.join(cache, 'snapshots')).filter((d) => /^stack-auth-amd64-emulator-boot-latest-[0-9a-f]{16}$/.test(d))
    expect(snapshots).toHaveLength(1)
    expect(readJson(path.join(cache, 'snapshots', snapshots[0]!, 'snapshot.json')).fingerprint.image).toBe(diskSha)
    expect(qemuProcesses(home)).toEqual([]) // the warm-up VM is gone

    const emulator = await acquire({ image: 'stack-auth@emulator-boot-latest', name: 'pulled' })
    try {
      expect(emulator.origin).toBe('snapshot')
      expect((await http(`${emulator.backendUrl}/health?db=1`)).status).toBe(200)
      expect((await http(`${emulator.dashboardUrl}/handler/sign-in`)).status).toBe(200)
      expect(emulator.env.STACK_PROJECT_ID).toBeTruthy()
    } finally {
      await emulator.release()
      await stopInstance('pulled')
    }
  })
})
