/** Manifest validation: every field checked, one error listing what is wrong, names safe as paths. */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadManifest, platform } from '../../src/image/manifest.js'
import { forArch } from '../../src/image/pull.js'
import { runtimeVolumeDigest } from '../../src/drivers/qemu/runtime-volume.js'
import { runtimeEnvText } from '../../src/stack/runtime-env.js'

const good = {
  name: 'stack-auth-emulator',
  fingerprint: 'abc123',
  boot: { kind: 'disk' },
  disk: 'disk.qcow2',
  memoryMb: 4096,
  cpus: 4,
  services: [{ name: 'backend', guestPort: 8102, hostPort: 26701, health: { path: '/health?db=1', status: 200 } }],
  credentials: { service: 'backend', path: '/api/v1/internal/local-emulator/project' },
}

function write(manifest: unknown): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'se-manifest-'))
  fs.writeFileSync(path.join(dir, 'disk.qcow2'), '')
  fs.writeFileSync(path.join(dir, 'stack-auth.base.env'), '') // the real manifest's runtime volume file
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
    const error = await loadManifest(
      write({ name: 'x', boot: null, services: [{ name: 'Back End', guestPort: 0 }, 7], credentials: { service: 'nope', path: 'x' } }),
    ).catch((e) => e)
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
    const volume = { label: 'STACKCFG', files: { 'base.env': 'gone.env' } }
    await expect(loadManifest(write({ ...good, runtimeVolume: volume }))).rejects.toThrow(/gone\.env named by .* is missing/)
  })
})

describe('the machine fields', () => {
  const shipped = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../manifests/stack-auth.json'), 'utf8')) as Record<string, unknown>

  it('accepts the shipped real-image manifest, and the arm64 one a pull makes of it', async () => {
    const amd = await loadManifest(write({ ...shipped, disk: 'disk.qcow2' }))
    expect(amd).toMatchObject({
      arch: 'amd64',
      machine: 'q35',
      cpu: 'max',
      firmware: 'default',
      guestAgent: true,
      runtimeVolume: { label: 'STACKCFG', runtimeEnv: 'runtime.env', files: { 'base.env': 'stack-auth.base.env' } },
      hostShare: { tag: 'hostfs', guestPath: '/host', mountCommand: ['/usr/local/bin/mount-host-fs', '--post-resume'] },
    })
    const arm = await loadManifest(write({ ...forArch(shipped, 'arm64'), disk: 'disk.qcow2' }))
    expect(platform(arm)).toEqual({ arch: 'arm64', machine: 'virt', tcgCpu: 'max', firmware: 'uefi' })
    expect(forArch(shipped, 'amd64')).toEqual(shipped)
  })

  it('fills the defaults in one place', () => {
    const kernel = { kind: 'kernel', kernel: 'k', append: '' } as const
    expect(platform({ boot: kernel })).toEqual({ arch: 'amd64', machine: 'pc', tcgCpu: 'qemu64,+rdrand', firmware: 'default' })
    expect(platform({ boot: { kind: 'disk' } })).toEqual({ arch: 'amd64', machine: 'q35', tcgCpu: 'qemu64,+rdrand', firmware: 'default' })
    expect(platform({ boot: { kind: 'disk' }, arch: 'arm64' })).toEqual({ arch: 'arm64', machine: 'virt', tcgCpu: 'max', firmware: 'uefi' })
    expect(platform({ boot: kernel, machine: 'q35', cpu: 'max', firmware: 'uefi' })).toEqual({ arch: 'amd64', machine: 'q35', tcgCpu: 'max', firmware: 'uefi' })
  })

  it('lists every malformed machine field in one error', async () => {
    const error = await loadManifest(
      write({
        ...good,
        machine: 7,
        cpu: 'max; rm',
        firmware: 'bios',
        runtimeVolume: { label: 'stackcfg', files: { '../runtime.env': 'x' } },
        hostShare: { tag: 'a tag', guestPath: 'host' },
        guestAgent: 'yes',
      }),
    ).catch((e) => e)
    expect(error.code).toBe('IMAGE_NOT_FOUND')
    for (const part of [
      '"machine" must be a string',
      '"cpu" must be a QEMU CPU model',
      '"firmware" must be default or uefi',
      '"runtimeVolume" must be',
      '"hostShare" must be',
      '"guestAgent" must be true or false',
    ]) {
      expect(error.message).toContain(part)
    }
  })

  it.each([
    [{ arch: 'riscv64' }, /"arch" must be amd64 or arm64/],
    [{ arch: 'arm64', machine: 'q35' }, /"machine" must be virt on arm64, not "q35"/],
    [{ machine: 'virt' }, /"machine" must be pc or q35 on amd64, not "virt"/],
    [{ arch: 'arm64', firmware: 'default' }, /"firmware" must be uefi on arm64/],
    [
      { machine: 'pc', guestAgent: true, hostShare: { tag: 'hostfs', guestPath: '/host', mountCommand: ['/m'] } },
      /"hostShare" needs a PCIe machine .* not "pc"/,
    ],
    [{ hostShare: { tag: 'hostfs', guestPath: '/host', mountCommand: ['/m'] } }, /"hostShare" needs "guestAgent": true/],
    [{ hostShare: { tag: 'hostfs', guestPath: '/host', mountCommand: ['m'] }, guestAgent: true }, /"hostShare" must be/],
    [
      { credentials: { service: 'backend', path: '/p', internalKey: { file: 'internal-pck', guestPath: '/k' } } },
      /"credentials.internalKey" needs a "hostShare"/,
    ],
    [{ runtimeVolume: { label: 'STACKCFG', files: {}, runtimeEnv: 'a.env', env: { 'bad name': 'x' } } }, /"runtimeVolume" must be/],
    [{ runtimeVolume: { label: 'STACKCFG', files: { 'a.env': 'a' }, runtimeEnv: 'a.env' } }, /"runtimeVolume" must be/],
    [{ arch: 'arm64', boot: { kind: 'kernel', kernel: 'k', append: '', bios: 'qboot' } }, /"boot.bios" qboot needs arch amd64 and firmware default/],
    [{ runtimeVolume: { label: 'STACKCFG', files: [] } }, /"runtimeVolume" must be/],
  ])('refuses %j', async (fields, message) => {
    await expect(loadManifest(write({ ...good, ...fields }))).rejects.toThrow(message)
  })

  it.each([{ machine: 'pc-q35-7.2' }, { arch: 'arm64', machine: 'virt-7.2' }, { firmware: 'uefi' }, { machine: 'pc' }, { guestAgent: false }])(
    'accepts %j',
    async (fields) => {
      await expect(loadManifest(write({ ...good, ...fields }))).resolves.toMatchObject(fields)
    },
  )
})

describe('STACK_EMULATOR_FIXTURE_HEADERS', () => {
  const fixture = {
    ...good,
    name: 'stack-auth-fixture',
    runtimeVolume: { label: 'STACKCFG', runtimeEnv: 'runtime.env', files: {}, env: { STACK_EMULATOR_PORT_PREFIX: '81' } },
  }
  const env = async (manifest: object, value?: string) =>
    (await loadManifest(write(manifest), value === undefined ? {} : { STACK_EMULATOR_FIXTURE_HEADERS: value })).runtimeVolume?.env

  it("goes into the fixture's runtime.env when set, and so into the runtime volume's digest (a snapshot per value)", async () => {
    expect(await env(fixture)).toEqual({ STACK_EMULATOR_PORT_PREFIX: '81' })
    expect(await env(fixture, '')).toEqual({ STACK_EMULATOR_PORT_PREFIX: '81' })
    const xStack = await loadManifest(write(fixture), { STACK_EMULATOR_FIXTURE_HEADERS: 'x-stack' })
    expect(xStack.runtimeVolume?.env).toEqual({ STACK_EMULATOR_PORT_PREFIX: '81', STACK_EMULATOR_FIXTURE_HEADERS: 'x-stack' })
    expect(runtimeEnvText({ hostPorts: { backend: 26701 }, vmDir: '', env: xStack.runtimeVolume!.env! })).toContain(
      '\nSTACK_EMULATOR_FIXTURE_HEADERS=x-stack\n',
    )
    const digests = await Promise.all(
      [undefined, 'x-stack', 'both'].map(async (value) =>
        runtimeVolumeDigest(await loadManifest(write(fixture), value ? { STACK_EMULATOR_FIXTURE_HEADERS: value } : {}), {}),
      ),
    )
    expect(new Set(digests).size).toBe(3)
  })

  it('leaves every other image alone, and refuses a value the guest would refuse', async () => {
    expect(await env({ ...fixture, name: 'stack-auth' }, 'x-stack')).toEqual({ STACK_EMULATOR_PORT_PREFIX: '81' })
    await expect(env(fixture, 'x-hexclave')).rejects.toMatchObject({
      code: 'BAD_OPTION',
      message: expect.stringMatching(/STACK_EMULATOR_FIXTURE_HEADERS must be one of x-stack, both; got "x-hexclave"/),
    })
  })
})

describe('host ports in the snapshot', () => {
  const volume = { label: 'STACKCFG', runtimeEnv: 'runtime.env', files: {} }
  const digest = async (hostPortsInSnapshot: unknown, hostPorts: Record<string, number>) =>
    runtimeVolumeDigest(await loadManifest(write({ ...good, runtimeVolume: { ...volume, hostPortsInSnapshot } })), hostPorts)

  it("true: a snapshot per set of host ports; a list: per value of those services' ports only; none: one for all", async () => {
    expect(await digest(true, { backend: 1, dashboard: 2 })).not.toBe(await digest(true, { backend: 1, dashboard: 3 }))
    const listed = (ports: Record<string, number>) => digest(['mock-oauth'], ports)
    expect(await listed({ backend: 1, 'mock-oauth': 8114 })).toBe(await listed({ backend: 2, 'mock-oauth': 8114 }))
    expect(await listed({ 'mock-oauth': 8114 })).not.toBe(await listed({ 'mock-oauth': 28114 }))
    expect(await listed({})).toBe(await listed({ 'mock-oauth': 0 }))
    expect(await digest(undefined, { 'mock-oauth': 8114 })).toBe(await digest(undefined, { 'mock-oauth': 28114 }))
  })

  it('refuses anything else, naming what it takes', async () => {
    for (const bad of ['yes', [8114], { 'mock-oauth': true }])
      await expect(loadManifest(write({ ...good, runtimeVolume: { ...volume, hostPortsInSnapshot: bad } }))).rejects.toThrow(
        /"hostPortsInSnapshot"\?: true, false or a list of service names/,
      )
  })
})
