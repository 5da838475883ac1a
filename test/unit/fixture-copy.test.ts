/**
 * A fixture build found in another cache (CI's empty-cache run) is copied into this one through
 * the build's own publish step, a staging folder renamed into place, rather than built again.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ensureFixtureImage, fixtureDir, fixtureFingerprint } from '../../src/image/fixture.js'

const root = fs.mkdtempSync(path.join(os.tmpdir(), 'se-fixture-copy-'))
afterAll(() => fs.rmSync(root, { recursive: true, force: true }))

/** A finished build (its manifest names the current inputs) in a cache of its own. */
async function cacheWithBuild(name: string): Promise<string> {
  const cache = path.join(root, name)
  const fingerprint = await fixtureFingerprint()
  const dir = fixtureDir(cache, fingerprint)
  fs.mkdirSync(dir, { recursive: true })
  fs.writeFileSync(path.join(dir, 'disk.qcow2'), `disk of ${name}`)
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ name: 'stack-auth-fixture', fingerprint }))
  return cache
}

describe('ensureFixtureImage({ from })', () => {
  it("copies the other cache's build into place, leaving no staging folder", async () => {
    const from = await cacheWithBuild('from')
    const cache = path.join(root, 'empty')
    const said: string[] = []
    const manifest = await ensureFixtureImage({ cacheRoot: cache, from, progress: (line) => said.push(line) })
    const dir = fixtureDir(cache, await fixtureFingerprint())
    expect(manifest).toBe(path.join(dir, 'manifest.json'))
    expect(fs.readFileSync(path.join(dir, 'disk.qcow2'), 'utf8')).toBe('disk of from')
    expect(JSON.parse(fs.readFileSync(manifest, 'utf8')).fingerprint).toBe(await fixtureFingerprint())
    expect(fs.readdirSync(path.dirname(dir)).filter((entry) => entry.includes('.staging-'))).toEqual([])
    expect(said).toEqual([`copying the fixture image from ${fixtureDir(from, await fixtureFingerprint())}`])
    expect(fs.existsSync(path.join(fixtureDir(from, await fixtureFingerprint()), 'disk.qcow2'))).toBe(true) // the source stays
  })

  it('keeps a build this cache already has', async () => {
    const from = await cacheWithBuild('other')
    const cache = await cacheWithBuild('has-one')
    const said: string[] = []
    await ensureFixtureImage({ cacheRoot: cache, from, progress: (line) => said.push(line) })
    expect(fs.readFileSync(path.join(fixtureDir(cache, await fixtureFingerprint()), 'disk.qcow2'), 'utf8')).toBe('disk of has-one')
    expect(said).toEqual([])
  })
})
