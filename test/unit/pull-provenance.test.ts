/**
 * Where a pulled image came from: the upstream commit read from the release (its tag, notes or
 * target, as Stack Auth's workflow writes them), recorded and compared with the commit the shipped
 * manifest and base env describe; and the user's own files (`image pull --manifest`,
 * `--base-env`). Real files, a real cache folder and the loopback release API of
 * test/release-server.ts; small random disks, no VM.
 */
import crypto from 'node:crypto'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from 'vitest'
import { snapshotStore } from '../../src/drivers/qemu/snapshot.js'
import { pullImage } from '../../src/client/pull.js'
import { runCli } from '../../src/cli/commands.js'
import { DEFAULT_TEMPLATE, SHIPPED_BASE_ENV, SHIPPED_COMMIT, provenanceLine, pullRelease } from '../../src/image/pull.js'
import { releaseCommit } from '../../src/image/release.js'
import { readSettings } from '../../src/settings.js'
import { startReleaseServer, workflowNotes, type ReleaseServer } from '../release-server.js'

const ASSET = 'stack-emulator-amd64.qcow2'
const OTHER = '26704a1b2c3d4e5f60718293a4b5c6d7e8f90123' // a later upstream commit than the shipped files'
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'se-provenance-'))
const disk = path.join(home, 'disk.qcow2')
fs.writeFileSync(disk, crypto.randomBytes(200_000))
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'))
const imageDir = (cache: string, tag: string) => path.join(cache, 'images', `stack-auth-amd64-${tag}`)
const apiCalls = () => server.served.filter((s) => s.server === 'api').length
const fileCalls = () => server.served.filter((s) => s.server === 'files').length

let server: ReleaseServer
let cache: string
let caches = 0

beforeAll(async () => {
  server = await startReleaseServer()
  server.publish('emulator-dev-latest', ASSET, disk) // as the workflow: targets the commit, notes without it
  server.publish('emulator-dev-20260401-1a2b3c4d', ASSET, disk, { body: workflowNotes('dev', `1a2b3c4d${'e'.repeat(32)}`) })
  server.publish('emulator-old-20260301-2f719903', ASSET, disk) // the sha8 alone: the shipped files' commit
  server.publish('emulator-mirror-latest', ASSET, disk, { body: 'Latest emulator images from `mirror`.', target_commitish: 'mirror' })
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
  for (const name of ['no_proxy', 'NO_PROXY']) vi.stubEnv(name, '127.0.0.1') // a proxy in the environment cannot reach the loopback server
})
afterEach(() => vi.unstubAllEnvs())

function pull(tag: string, more: Partial<Parameters<typeof pullRelease>[0]> = {}) {
  const logs: string[] = []
  const result = pullRelease({
    tag,
    arch: 'amd64',
    sha256: undefined,
    snapshots: snapshotStore,
    manifestTemplate: DEFAULT_TEMPLATE,
    settings: readSettings(), // the cache and the server stubbed in beforeEach
    onProgress: () => {},
    onLog: (line) => logs.push(line),
    ...more,
  })
  return result.then((pulled) => ({ pulled, logs }))
}

/** The CLI in this process: exit code, stdout, stderr. */
async function cli(args: string[]): Promise<{ exitCode: number; stdout: string; stderr: string }> {
  let stdout = ''
  let stderr = ''
  const out = vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
    stdout += String(chunk)
    return true
  })
  const err = vi.spyOn(process.stderr, 'write').mockImplementation((chunk) => {
    stderr += String(chunk)
    return true
  })
  try {
    return { exitCode: await runCli(args), stdout, stderr }
  } finally {
    out.mockRestore()
    err.mockRestore()
  }
}

function writeFile(name: string, text: string): string {
  const file = path.join(home, name)
  fs.mkdirSync(path.dirname(file), { recursive: true })
  fs.writeFileSync(file, text)
  return file
}

/** Everything under the cache and the temporary folder the pull could have left behind. */
function leftovers(): string[] {
  const images = fs.existsSync(path.join(cache, 'images')) ? fs.readdirSync(path.join(cache, 'images')) : []
  return [...images, ...fs.readdirSync(os.tmpdir()).filter((e) => e.startsWith('stack-emulator-manifest-'))]
}

describe('the commit a release was built from', () => {
  it("is read from an immutable tag's sha8, the workflow's notes, or a sha target", () => {
    expect(releaseCommit('emulator-dev-20260401-1a2b3c4d', null, 'dev')).toEqual({ sha: '1a2b3c4d', from: 'tag' })
    // The notes' full sha extends the tag's sha8.
    expect(releaseCommit('emulator-dev-20260401-1a2b3c4d', workflowNotes('dev', `1a2b3c4d${'e'.repeat(32)}`), 'dev')).toEqual({
      sha: `1a2b3c4d${'e'.repeat(32)}`,
      from: 'body',
    })
    // A body that names another commit than the tag does not override it.
    expect(releaseCommit('emulator-dev-20260401-1a2b3c4d', workflowNotes('dev', OTHER), undefined)).toEqual({ sha: '1a2b3c4d', from: 'tag' })
    expect(releaseCommit('emulator-dev-latest', workflowNotes('dev', OTHER.toUpperCase()), 'dev')).toEqual({ sha: OTHER, from: 'body' })
    expect(releaseCommit('emulator-dev-latest', 'Built from dev @ 26704a1 (short)', undefined)).toEqual({ sha: '26704a1', from: 'body' })
    expect(releaseCommit('emulator-dev-latest', `rebuilt; see ${OTHER} for details`, undefined)).toEqual({ sha: OTHER, from: 'body' })
    // emulator-<branch>-latest: notes without a sha, the target set to github.sha.
    expect(releaseCommit('emulator-dev-latest', 'Latest emulator images from `dev`. Auto-updated on each build.', SHIPPED_COMMIT)).toEqual({
      sha: SHIPPED_COMMIT,
      from: 'target_commitish',
    })
  })

  it('is unknown when none of them names one (a branch name is not a commit)', () => {
    expect(releaseCommit('emulator-dev-latest', 'Latest emulator images from `dev`. Auto-updated on each build.', 'dev')).toBeUndefined()
    expect(releaseCommit('emulator-dev-latest', null, 'deadbeef')).toBeUndefined()
    expect(releaseCommit('emulator-dev-latest', 'sha 1a2b3c4d', undefined)).toBeUndefined()
    expect(releaseCommit('emulator-dev-latest', undefined, undefined)).toBeUndefined()
  })

  it('is compared with the one commit the shipped manifest and base env describe', () => {
    expect(fs.readFileSync(SHIPPED_BASE_ENV, 'utf8').split('\n').slice(0, 3).join(' ')).toContain(`stack-auth/stack-auth ${SHIPPED_COMMIT}`)
    expect(fs.readFileSync(path.resolve('docs/stack-auth-contract.md'), 'utf8')).toContain(SHIPPED_COMMIT)
    expect(readJson(DEFAULT_TEMPLATE).runtimeVolume.files['base.env']).toBe(path.basename(SHIPPED_BASE_ENV))
    const image = 'stack-auth@emulator-dev-latest (amd64)'
    expect(provenanceLine(image, { sha: SHIPPED_COMMIT, from: 'target_commitish' }, undefined)).toBeUndefined()
    expect(provenanceLine(image, { sha: '2f719903', from: 'tag' }, undefined)).toBeUndefined()
    expect(provenanceLine(image, { sha: OTHER, from: 'body' }, undefined)).toBe(
      `${image} was built from stack-auth/stack-auth 26704a1b2c3d, but the manifest and base env shipped with stack-emulator describe 2f719903b181: ` +
        'pull it again with files that match that image (--base-env FILE, --manifest FILE), or update stack-emulator',
    )
    expect(provenanceLine(image, undefined, undefined)).toMatch(
      /^stack-auth@emulator-dev-latest \(amd64\): the release does not say which stack-auth\/stack-auth commit it was built from, so whether the shipped manifest and base env \(written for 2f719903b181\) match it cannot be checked$/,
    )
    expect(provenanceLine(image, { sha: OTHER, from: 'body' }, { baseEnv: '/x/base.env' })).toBe(
      `${image} uses your base env /x/base.env and the shipped manifest: the commit check is skipped (the image was built from stack-auth/stack-auth 26704a1b2c3d, the shipped files describe 2f719903b181)`,
    )
  })
})

describe('a pull records the commit', () => {
  it('from the target of emulator-<branch>-latest: the shipped files match, no line', async () => {
    const { pulled, logs } = await pull('emulator-dev-latest')
    expect(pulled).toMatchObject({ downloaded: true, commit: SHIPPED_COMMIT, userFiles: null })
    expect(readJson(pulled.manifest).source).toMatchObject({ tag: 'emulator-dev-latest', commit: SHIPPED_COMMIT, commitFrom: 'target_commitish' })
    expect(logs).toEqual([])
    // A second pull downloads nothing and rewrites nothing.
    const before = fs.statSync(pulled.manifest).mtimeMs
    const again = await pull('emulator-dev-latest')
    expect(again.pulled).toMatchObject({ downloaded: false, commit: SHIPPED_COMMIT })
    expect(again.logs).toEqual(['stack-auth@emulator-dev-latest (amd64) is up to date'])
    expect(fs.statSync(pulled.manifest).mtimeMs).toBe(before)
  })

  it("from an immutable tag's notes (the full sha), with one warning line when it is not the shipped files' commit", async () => {
    const { pulled, logs } = await pull('emulator-dev-20260401-1a2b3c4d')
    const sha = `1a2b3c4d${'e'.repeat(32)}`
    expect(pulled.commit).toBe(sha)
    expect(readJson(pulled.manifest).source).toMatchObject({ commit: sha, commitFrom: 'body' })
    expect(logs).toEqual([
      expect.stringMatching(
        /^stack-auth@emulator-dev-20260401-1a2b3c4d \(amd64\) was built from stack-auth\/stack-auth 1a2b3c4deeee, but the manifest and base env shipped with stack-emulator describe 2f719903b181: .*--base-env FILE, --manifest FILE/,
      ),
    ])
  })

  it("from an immutable tag's sha8 alone", async () => {
    const { pulled, logs } = await pull('emulator-old-20260301-2f719903')
    expect(readJson(pulled.manifest).source).toMatchObject({ commit: '2f719903', commitFrom: 'tag' })
    expect(logs).toEqual([]) // a prefix of the shipped files' commit
  })

  it('as unknown when the release does not say, in one line', async () => {
    const { pulled, logs } = await pull('emulator-mirror-latest')
    expect(pulled.commit).toBeNull()
    expect(readJson(pulled.manifest).source).not.toHaveProperty('commit')
    expect(logs).toEqual([expect.stringMatching(/^stack-auth@emulator-mirror-latest \(amd64\): the release does not say which .* cannot be checked$/)])
  })

  it('shows it in image list, as text and JSON', async () => {
    await pull('emulator-dev-20260401-1a2b3c4d')
    await pull('emulator-mirror-latest')
    const json = await cli(['image', 'list', '--json'])
    expect(json.exitCode, json.stderr).toBe(0)
    expect(JSON.parse(json.stdout).images).toEqual([
      expect.objectContaining({ tag: 'emulator-dev-20260401-1a2b3c4d', commit: `1a2b3c4d${'e'.repeat(32)}`, userFiles: null }),
      expect.objectContaining({ tag: 'emulator-mirror-latest', commit: null, userFiles: null }),
    ])
    const text = (await cli(['image', 'list'])).stdout.split('\n').filter(Boolean)
    expect(text).toEqual([
      expect.stringMatching(/^IMAGE +ARCH +SIZE +SNAPSHOTS +SEEDED +SHA256 +PULLED +LAST USED +COMMIT$/),
      expect.stringMatching(/^stack-auth@emulator-dev-20260401-1a2b3c4d +amd64 .* 1a2b3c4deeee$/),
      expect.stringMatching(/^stack-auth@emulator-mirror-latest +amd64 .* unknown$/),
    ])
  })
})

describe('image pull --base-env and --manifest', () => {
  const baseEnv = writeFile('mine/newer.env', '# newer upstream\nSTACK_EMULATOR_MOCK_OAUTH_HOST_PORT=26704\nexport NEXT_PUBLIC_X="a b"\n\n')
  /** The shipped manifest with more memory, and a base env of its own beside it. */
  const manifest = writeFile(
    'theirs/manifest.json',
    JSON.stringify({
      ...readJson(DEFAULT_TEMPLATE),
      memoryMb: 6144,
      runtimeVolume: { ...readJson(DEFAULT_TEMPLATE).runtimeVolume, files: { 'base.env': 'upstream.env' } },
    }),
  )
  writeFile('theirs/upstream.env', 'FROM_THEIR_MANIFEST=1\n')

  it('installs the base env given, records it, and says so instead of the commit warning', async () => {
    const result = await cli(['image', 'pull', '--tag', 'emulator-dev-20260401-1a2b3c4d', '--arch', 'amd64', '--base-env', baseEnv])
    expect(result.exitCode, result.stderr).toBe(0)
    const dir = imageDir(cache, 'emulator-dev-20260401-1a2b3c4d')
    expect(fs.readdirSync(dir).sort()).toEqual([ASSET, 'base.env', 'manifest.json'].sort())
    expect(fs.readFileSync(path.join(dir, 'base.env'), 'utf8')).toBe(fs.readFileSync(baseEnv, 'utf8'))
    const installed = readJson(path.join(dir, 'manifest.json'))
    expect(installed.runtimeVolume.files).toEqual({ 'base.env': 'base.env' })
    expect(installed.memoryMb).toBe(readJson(DEFAULT_TEMPLATE).memoryMb)
    expect(installed.source).toMatchObject({ commit: `1a2b3c4d${'e'.repeat(32)}`, userFiles: { baseEnv } })
    expect(result.stderr).not.toContain('but the manifest and base env shipped') // no commit warning
    expect(result.stderr).toContain(
      `stack-emulator: stack-auth@emulator-dev-20260401-1a2b3c4d (amd64) uses your base env ${baseEnv} and the shipped manifest: the commit check is skipped`,
    )
    expect(result.stdout).toContain(`  commit    1a2b3c4d${'e'.repeat(32)} (stack-auth/stack-auth, from the release)\n  yours     base env ${baseEnv}\n`)
    const list = (await cli(['image', 'list'])).stdout
    expect(list).toMatch(/1a2b3c4deeee \(your files\)\n$/)
  })

  it('installs the manifest given with the files beside it, or with --base-env', async () => {
    const own = await cli(['image', 'pull', '--branch', 'dev', '--arch', 'amd64', '--manifest', manifest, '--json'])
    expect(own.exitCode, own.stderr).toBe(0)
    expect(JSON.parse(own.stdout)).toMatchObject({ commit: SHIPPED_COMMIT, userFiles: { manifest, baseEnv: path.join(home, 'theirs/upstream.env') } })
    const dir = imageDir(cache, 'emulator-dev-latest')
    expect(readJson(path.join(dir, 'manifest.json'))).toMatchObject({
      memoryMb: 6144,
      runtimeVolume: { files: { 'base.env': 'upstream.env' } },
      source: { userFiles: { manifest } },
    })
    expect(fs.readFileSync(path.join(dir, 'upstream.env'), 'utf8')).toBe('FROM_THEIR_MANIFEST=1\n')
    expect(own.stderr).toContain(`uses your manifest ${manifest} and base env ${path.join(home, 'theirs/upstream.env')}: the commit check is skipped`)

    // The disk is up to date: only the files change, without a download.
    const files = fileCalls()
    const both = await cli(['image', 'pull', '--arch', 'amd64', '--manifest', manifest, '--base-env', baseEnv, '--json'])
    expect(both.exitCode, both.stderr).toBe(0)
    expect(fileCalls()).toBe(files)
    expect(JSON.parse(both.stdout)).toMatchObject({ downloaded: false, userFiles: { manifest, baseEnv } })
    expect(fs.readdirSync(dir).sort()).toEqual([ASSET, 'base.env', 'manifest.json'].sort())
    expect(both.stderr).toContain(
      `stack-auth@emulator-dev-latest (amd64) is up to date; its manifest and base env are now your manifest ${manifest} and base env ${baseEnv} (no download)`,
    )

    // Pulled again without them: the shipped files again, still no download.
    const shipped = await pull('emulator-dev-latest')
    expect(fileCalls()).toBe(files)
    expect(shipped.logs).toEqual([
      'stack-auth@emulator-dev-latest (amd64) is up to date; its manifest and base env are now the shipped manifest and base env (no download)',
    ])
    expect(fs.readdirSync(dir).sort()).toEqual([ASSET, 'manifest.json', 'stack-auth.base.env'].sort())
    expect(readJson(path.join(dir, 'manifest.json')).source).not.toHaveProperty('userFiles')
  })

  it('takes them through pullImage() too (manifestTemplate, baseEnv)', async () => {
    const logs: string[] = []
    const pulled = await pullImage({ tag: 'emulator-old-20260301-2f719903', arch: 'amd64', baseEnv, onLog: (l) => logs.push(l) })
    expect(pulled).toMatchObject({ commit: '2f719903', userFiles: { baseEnv }, warmed: false })
    expect(logs).toEqual([expect.stringContaining(`uses your base env ${baseEnv} and the shipped manifest`)])
    await expect(pullImage({ baseEnv: 7 as never })).rejects.toThrow('Option "baseEnv" must be a path to an env file, got 7 (number)')
  })

  it('refuses a missing or invalid file before any request, naming the flag, leaving nothing behind', async () => {
    const notEnv = writeFile('bad/base.env', '{ "this": "is json" }\n')
    const notManifest = writeFile('bad/manifest.json', JSON.stringify({ name: 'x', boot: { kind: 'disk' }, services: [] }))
    const noVolume = writeFile('bad/novolume.json', JSON.stringify({ ...readJson(DEFAULT_TEMPLATE), runtimeVolume: undefined }))
    const missingBeside = writeFile(
      'bad/beside.json',
      JSON.stringify({ ...readJson(DEFAULT_TEMPLATE), runtimeVolume: { ...readJson(DEFAULT_TEMPLATE).runtimeVolume, files: { 'base.env': 'gone.env' } } }),
    )
    const cases: [string[], RegExp][] = [
      [
        ['--base-env', path.join(home, 'nope.env')],
        /^stack-emulator: --base-env names \S+nope\.env, which cannot be read \(ENOENT\)\. Pass an env file of NAME=value lines/,
      ],
      [['--base-env', home], /^stack-emulator: --base-env names \S+, which is not a file\./],
      [
        ['--base-env', notEnv],
        /^stack-emulator: --base-env names \S+, which is not an env file \(line 1 is not NAME=value: "\{ \\"this\\": \\"is json\\" \}"\)\./,
      ],
      [
        ['--manifest', path.join(home, 'nope.json')],
        /^stack-emulator: --manifest names \S+nope\.json, which is missing or not a JSON object\. Point it at a manifest\.json/,
      ],
      [
        ['--manifest', notManifest],
        /^stack-emulator: --manifest names \S+, which does not make a manifest that loads: Image manifest \S+ is invalid: "memoryMb" must be .*\. Fix the manifest/,
      ],
      [['--manifest', missingBeside], /^stack-emulator: --manifest names \S+, whose runtime volume file base\.env \(\S+gone\.env\) is missing\./],
      [['--manifest', noVolume, '--base-env', baseEnv], /^stack-emulator: --base-env replaces the runtime volume's base\.env, but the manifest \S+ has none/],
    ]
    for (const [flags, message] of cases) {
      const calls = apiCalls()
      const result = await cli(['image', 'pull', '--arch', 'amd64', ...flags])
      expect(result.exitCode, flags.join(' ')).toBe(2)
      expect(result.stderr, flags.join(' ')).toMatch(message)
      expect(result.stderr.split('\n').filter(Boolean), flags.join(' ')).toHaveLength(1)
      expect(apiCalls(), flags.join(' ')).toBe(calls)
      expect(leftovers(), flags.join(' ')).toEqual([])
    }
    // The library checks the same files before its request too (the manifest's schema once the disk is there).
    const calls = apiCalls()
    await expect(pullImage({ arch: 'amd64', baseEnv: notEnv })).rejects.toMatchObject({
      code: 'BAD_OPTION',
      message: expect.stringMatching(/^Option "baseEnv" names .* which is not an env file/),
    })
    expect(apiCalls()).toBe(calls)
    expect(leftovers()).toEqual([])
  })
})
