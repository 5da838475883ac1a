/** One registry: every driver loads its image to the same neutral, normalised manifest. */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { healthTargets, serviceUrls } from '../../src/drivers/manifest.js'
import { driverFor } from '../../src/drivers/registry.js'
import { FIXTURE_CONTAINER_MANIFEST } from '../../src/drivers/service-manifest.js'
import { DRIVER_NAMES } from '../../src/drivers/names.js'

function imageManifest(extra: object = {}): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'se-registry-'))
  fs.writeFileSync(path.join(dir, 'disk.qcow2'), '')
  const manifest = {
    name: 'img',
    fingerprint: 'abc',
    boot: { kind: 'disk' },
    disk: 'disk.qcow2',
    memoryMb: 512,
    cpus: 1,
    services: [
      { name: 'backend', guestPort: 8102, health: { path: '/health' } },
      { name: 'dashboard', guestPort: 8101 },
    ],
    ...extra,
  }
  fs.writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify(manifest))
  return path.join(dir, 'manifest.json')
}

describe('driverFor', () => {
  it('has a driver for every name', () => {
    for (const name of DRIVER_NAMES) expect(driverFor(name).name).toBe(name)
    expect(() => driverFor('podman' as never)).toThrow(/No driver is named "podman"/)
  })

  it('QEMU: the neutral part of the image manifest, health and arch filled in', async () => {
    const file = imageManifest()
    const manifest = await driverFor('qemu').load(file)
    expect(manifest).toEqual({
      name: 'img',
      fingerprint: 'abc',
      file,
      memoryMb: 512,
      arch: 'amd64',
      services: [
        { name: 'backend', guestPort: 8102, health: { path: '/health', status: 200 } },
        { name: 'dashboard', guestPort: 8101 },
      ],
      credentials: undefined,
      source: undefined,
    })
    expect(Object.keys(manifest)).not.toContain('disk')
  })

  it.each(['docker', 'external'] as const)('%s: the container manifest, health filled in, no arch', async (kind) => {
    const manifest = await driverFor(kind).load(FIXTURE_CONTAINER_MANIFEST)
    expect(manifest).toMatchObject({ name: 'stack-auth-fixture-container', file: FIXTURE_CONTAINER_MANIFEST })
    expect(manifest.arch).toBeUndefined()
    expect(manifest.services.filter((s) => s.health).every((s) => s.health!.status === 200)).toBe(true)
    expect(Object.keys(manifest)).not.toContain('container')
  })

  it('only the external driver attaches to URLs it is given', () => {
    expect(DRIVER_NAMES.filter((name) => driverFor(name).attaches)).toEqual(['external'])
  })
})

describe('healthTargets', () => {
  it('probes each service with a health check and a URL, at its status', () => {
    const services = [
      { name: 'backend', guestPort: 1, health: { path: '/health', status: 200 } },
      { name: 'mail', guestPort: 2, health: { path: '/', status: 204 } },
      { name: 'dashboard', guestPort: 3 },
    ]
    expect(healthTargets(services, { backend: 'http://127.0.0.1:1', dashboard: 'http://127.0.0.1:3' })).toEqual([
      { name: 'backend', url: 'http://127.0.0.1:1/health', status: 200 },
    ])
  })
})

describe('serviceUrls', () => {
  it('gives each service with a host port its base URL, in the manifest order', () => {
    const services = [
      { name: 'dashboard', guestPort: 8101 },
      { name: 'backend', guestPort: 8102 },
      { name: 'mail', guestPort: 9001 },
    ]
    expect(serviceUrls(services, '127.0.0.1', { backend: 40001, dashboard: 40000 })).toEqual({
      dashboard: 'http://127.0.0.1:40000',
      backend: 'http://127.0.0.1:40001',
    })
  })
})
