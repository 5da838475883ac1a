import { describe, expect, it } from 'vitest'
import { describeDownload, formatBytes, planResume, resumeRefused } from '../../src/image/download.js'
import { checkArch, checkBranch, checkSha256, checkTag, parseImageRef, parsePulledFolder, pulledFolderName } from '../../src/image/names.js'
import { checkFreeSpace } from '../../src/image/pull.js'
import { proxySettings, readSettings } from '../../src/settings.js'

describe('release names', () => {
  it('takes the tags, branches, arches and digests of the real releases', () => {
    expect(checkTag('emulator-dev-latest')).toBe('emulator-dev-latest')
    expect(checkTag('emulator-dev-20260401-1a2b3c4d')).toBe('emulator-dev-20260401-1a2b3c4d')
    expect(checkTag('emulator-release.1_x-latest')).toBe('emulator-release.1_x-latest')
    expect(checkBranch('dev')).toBe('dev')
    expect(checkArch('arm64')).toBe('arm64')
    expect(checkSha256('AB'.repeat(32))).toBe('ab'.repeat(32))
  })

  it('refuses anything else, naming the option and what it takes', () => {
    for (const tag of [
      'v1.0',
      'emulator-dev',
      'emulator-dev-2026-1a2b3c4d',
      'emulator-dev-20260401-1A2B3C4D',
      'emulator-../x-latest',
      'emulator-a/b-latest',
      'emulator-dev-latest ',
      '',
    ]) {
      expect(() => checkTag(tag), tag).toThrow(/^Option "tag" must be a release tag emulator-<branch>-latest or emulator-<branch>-<YYYYMMDD>-<sha8>/)
    }
    for (const branch of ['a/b', '..', 'a..b', '-x', 'x-', 'a'.repeat(20), '']) expect(() => checkBranch(branch), branch).toThrow(/^Option "branch"/)
    expect(() => checkArch('x86_64')).toThrow('Option "arch" must be amd64 or arm64, got "x86_64" (string)')
    expect(() => checkSha256('abc')).toThrow(/^Option "sha256" must be a sha256 digest \(64 hex digits\)/)
    expect(() => checkSha256('g'.repeat(64))).toThrow(/sha256/)
  })

  it('keeps the longest image folder one valid path part, and reads it back', () => {
    const longest = pulledFolderName('amd64', `emulator-${'b'.repeat(19)}-20260401-1a2b3c4d`)
    expect(longest).toHaveLength(63)
    expect(parsePulledFolder(longest)).toEqual({ arch: 'amd64', tag: `emulator-${'b'.repeat(19)}-20260401-1a2b3c4d` })
    expect(parsePulledFolder('stack-auth-amd64-emulator-dev-latest.part')).toBeUndefined()
    expect(parsePulledFolder('fixture-0123456789abcdef')).toBeUndefined()
  })
})

describe('the image option', () => {
  it('is the fixture, a pulled image by name, or a path', () => {
    expect(parseImageRef(undefined)).toEqual({ kind: 'fixture' })
    expect(parseImageRef('fixture')).toEqual({ kind: 'fixture' })
    expect(parseImageRef('stack-auth')).toEqual({ kind: 'pulled', tag: undefined })
    expect(parseImageRef('stack-auth@emulator-dev-20260401-1a2b3c4d')).toEqual({ kind: 'pulled', tag: 'emulator-dev-20260401-1a2b3c4d' })
    expect(parseImageRef('./images/x/manifest.json')).toEqual({ kind: 'path', path: './images/x/manifest.json' })
    expect(() => parseImageRef('stack-auth@latest')).toThrow(/^Option "image" must be stack-auth@<tag> with a tag emulator-<branch>-latest/)
  })
})

describe('resuming a download', () => {
  const asset = { url: 'http://127.0.0.1:1/repos/stack-auth/stack-auth/releases/assets/7', size: 1000 }
  const record = { assetUrl: asset.url, size: 1000, etag: '"abc"', lastModified: 'Wed, 01 Apr 2026 00:00:00 GMT' }

  it('continues a part of the same asset against its ETag, else its Last-Modified', () => {
    expect(planResume(record, 400, asset)).toEqual({ from: 400, ifRange: '"abc"' })
    expect(planResume({ ...record, etag: 'W/"weak"' }, 400, asset)).toEqual({ from: 400, ifRange: record.lastModified })
    expect(planResume({ assetUrl: asset.url, size: 1000 }, 1000, asset)).toEqual({ from: 1000 })
    expect(planResume(undefined, 0, asset)).toEqual({ from: 0 })
  })

  it('starts over, saying why, when the part cannot be continued', () => {
    expect(planResume(undefined, 400, asset).reason).toBe('the partial download is of another file')
    expect(planResume({ ...record, size: 999 }, 400, asset).reason).toBe('the partial download is of another file')
    expect(planResume({ ...record, assetUrl: `${asset.url}8` }, 400, asset)).toMatchObject({ from: 0 })
    expect(planResume(record, 1001, asset)).toMatchObject({ from: 0, reason: 'the partial download is longer than the file' })
    expect(planResume({ assetUrl: asset.url, size: 1000 }, 400, asset)).toMatchObject({ from: 0, reason: expect.stringMatching(/does not support resuming/) })
  })

  it('appends only a 206 for exactly the rest', () => {
    expect(resumeRefused(400, 1000, 206, { 'content-range': 'bytes 400-999/1000' })).toBeUndefined()
    expect(resumeRefused(400, 1000, 206, { 'content-range': 'bytes 400-999/*' })).toBeUndefined()
    expect(resumeRefused(400, 1000, 206, { 'content-range': 'bytes 0-999/1000' })).toMatch(/another range/)
    expect(resumeRefused(400, 1000, 200, {})).toBe('the server does not support resuming (no Range)')
    expect(resumeRefused(400, 1000, 200, { 'accept-ranges': 'bytes' })).toBe('the file changed on the server since the partial download')
    expect(resumeRefused(400, 1000, 500, {})).toBeUndefined() // an error, reported as one
  })
})

describe('download progress', () => {
  it('shows bytes, rate and time left, the detail in a trailing parenthesis', () => {
    expect(formatBytes(999)).toBe('999 B')
    expect(formatBytes(82_118_144)).toBe('82.1 MB')
    expect(describeDownload('x.qcow2', { receivedBytes: 41_200_000, totalBytes: 82_118_144, bytesPerSecond: 20_000_000 })).toBe(
      'downloading x.qcow2 (41.2 of 82.1 MB, 20.0 MB/s, 3 s left)',
    )
    expect(describeDownload('x.qcow2', { receivedBytes: 500, totalBytes: 4e9, bytesPerSecond: 1e6 })).toBe(
      'downloading x.qcow2 (500 B of 4.0 GB, 1.0 MB/s, 67 min left)',
    )
    expect(describeDownload('x.qcow2', { receivedBytes: 0, totalBytes: 1e6, bytesPerSecond: 0 })).toBe('downloading x.qcow2 (0 B of 1.0 MB)')
  })
})

describe('free space', () => {
  const statfs = (free: number) => (async () => ({ bavail: free / 4096, bsize: 4096 })) as never
  it('names the shortfall before a download', async () => {
    await expect(checkFreeSpace('/cache/images', 80e6, statfs(40_960_000))).rejects.toMatchObject({
      code: 'DISK_FULL',
      message: expect.stringMatching(
        /^Not enough space in \/cache\/images for the image: it needs 80\.0 MB, 41\.0 MB are free \(short by 39\.0 MB\)\. Free some space/,
      ),
    })
    await expect(checkFreeSpace('/cache/images', 80e6, statfs(81_920_000))).resolves.toBeUndefined()
  })
})

describe('where images come from', () => {
  it("is GitHub's API unless STACK_EMULATOR_RELEASES_URL names a mirror", () => {
    expect(readSettings({}).releasesUrl).toBe('https://api.github.com')
    expect(readSettings({ STACK_EMULATOR_RELEASES_URL: 'http://127.0.0.1:8080/mirror/' }).releasesUrl).toBe('http://127.0.0.1:8080/mirror')
    expect(() => readSettings({ STACK_EMULATOR_RELEASES_URL: 'ftp://x' })).toThrow(/^STACK_EMULATOR_RELEASES_URL must be an http\(s\) URL/)
    expect(() => readSettings({ STACK_EMULATOR_RELEASES_URL: 'https://user:pw@x' })).toThrow(/without credentials/)
    // The token stays out of Settings, which is written to the supervisor's config file.
    expect(JSON.stringify(readSettings({ GITHUB_TOKEN: 'secret' }))).not.toContain('secret')
  })

  it('stalls a pull after 60 s unless STACK_EMULATOR_PULL_IDLE_TIMEOUT says otherwise', () => {
    expect(readSettings({}).pullIdleTimeoutMs).toBe(60_000)
    expect(readSettings({ STACK_EMULATOR_PULL_IDLE_TIMEOUT: '0.5' }).pullIdleTimeoutMs).toBe(500)
    for (const value of ['0', '-3', 'soon']) {
      expect(() => readSettings({ STACK_EMULATOR_PULL_IDLE_TIMEOUT: value })).toThrow(
        /^STACK_EMULATOR_PULL_IDLE_TIMEOUT must be a number of seconds above 0; got ".*"\. Unset it for 60 s/,
      )
    }
  })

  it('reads the proxy variables, lower case first, and keeps them out of Settings', () => {
    expect(proxySettings({})).toEqual({ httpProxy: '', httpsProxy: '', noProxy: '' })
    expect(proxySettings({ HTTPS_PROXY: 'http://127.0.0.1:3128', https_proxy: 'http://127.0.0.2:3128', NO_PROXY: 'localhost' })).toEqual({
      httpProxy: '',
      httpsProxy: 'http://127.0.0.2:3128',
      noProxy: 'localhost',
    })
    expect(JSON.stringify(readSettings({ HTTPS_PROXY: 'http://user:pw@127.0.0.1:3128' }))).not.toContain('pw@')
  })
})
