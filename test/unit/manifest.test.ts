/** Manifest validation: every field checked, one error listing what is wrong, names safe as paths. */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadManifest } from '../../src/image/manifest.js'

const good = {
  name: 'stack-auth-emulator', fingerprint: 'abc123', boot: { kind: 'disk' }, disk: 'disk.qcow2', memoryMb: 4096, cpus: 4,
  services: [{ name: 'backend', guestPort: 8102, hostPort: 26701, health: { path: '/health?db=1', status: 200 } }],
  credentials: { service: 'backend', path: '/api/v1/internal/local-emulator/project' },
}

function write(manifest: unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'se-manifest-'))
  fs.writeFileSync(path.join(dir, 'disk.qcow2'), '')
  fs.writeFileSync(path.join(dir, 'manifest.json'), typeof manifest === 'string' ? manifest : JSON.stringify(manifest))
  return path.join(dir, 'manifest.json')
}

describe('loadManifest', () => {
  it('loads a complete manifest and resolves its folder', async () => {
    const file = write(good)
    expect(await loadManifest(file)).toMatchObject({ name: 'stack-auth-emulator', dir: path.dirname(file), file })
  })

  it.each(['../../../tmp/x', 'a/b', '..', '.hidden', ''])('refuses the name %j, which would become a path', async (name) => {
    await expect(loadManifest(write({ ...good, name }))).rejects.toThrow(/"name" must be letters, digits/)
  })

  it('lists every problem of a malformed manifest in one error, never a TypeError', async () => {
    const error = await loadManifest(write({ name: 'x', boot: null, services: [{ name: 'Back End', guestPort: 0 }, 7], credentials: { service: 'nope', path: 'x' } })).catch((e) => e)
    expect(error.code).toBe('IMAGE_NOT_FOUND')
    for (const part of ['"fingerprint"', '"disk"', '"memoryMb"', '"cpus"', '"boot.kind"', 'service {"name":"Back End"', 'service 7', '"credentials"']) {
      expect(error.message).toContain(part)
    }
  })

  it.each(['null', '[]', '"text"', '{not json'])('refuses %s as a manifest', async (text) => {
    await expect(loadManifest(write(text))).rejects.toMatchObject({ code: 'IMAGE_NOT_FOUND' })
  })

  it('names a missing disk file and the fix', async () => {
    await expect(loadManifest(write({ ...good, disk: 'missing.qcow2' }))).rejects.toThrow(/missing\.qcow2 named by .* is missing/)
  })
})
