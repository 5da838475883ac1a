/** One options pipeline: defaults once, bounds named, the image's services and a running VM respected. */
import { describe, expect, it } from 'vitest'
import { DEFAULTS, assertCompatible, driverOptions, maxMemoryMb, resolveOptions } from '../../src/client/options.js'
import type { EmulatorManifest } from '../../src/drivers/manifest.js'
import { readSettings } from '../../src/settings.js'

const settings = readSettings({ STACK_EMULATOR_HOME: '/tmp/x' })
// As the QEMU driver resolves an image: its arch filled in (amd64 when the image says none).
const manifest: EmulatorManifest = {
  name: 'img',
  fingerprint: 'f',
  memoryMb: 512,
  arch: 'amd64',
  file: '/m.json',
  services: [
    { name: 'backend', guestPort: 8102, hostPort: 26701 },
    { name: 'dashboard', guestPort: 8101 },
  ],
}

describe('resolveOptions', () => {
  it('fills every default in one place, from the settings where the environment has one', () => {
    const resolved = resolveOptions({}, { ...settings, name: 'from-env', image: '/env/manifest.json' })
    expect(resolved).toMatchObject({ name: 'from-env', image: '/env/manifest.json', isolation: DEFAULTS.isolation, keepAlive: false, idleTimeoutMs: 300_000 })
    expect(driverOptions(resolved, manifest)).toEqual({
      kind: 'qemu',
      snapshot: true,
      fresh: false,
      bootTimeoutMs: 180_000,
      memoryMb: 512,
      ports: { backend: 26701, dashboard: 0 },
    })
  })

  it.each([
    [{ memoryMb: 999_999 }, /Option "memoryMb" must be an integer from 64 to \d+, got 999999/],
    [{ memoryMb: 63 }, /memoryMb/],
    [{ idleTimeoutMs: 3_000_000_000 }, /idleTimeoutMs" must be an integer from 0 to 2147483647/],
    [{ bootTimeoutMs: 10 }, /bootTimeoutMs" must be an integer from 1000/],
    [{ ports: { backend: 65_536 } }, /ports.backend" must be an integer from 0 to 65535/],
    [{ isolation: 'x' }, /isolation" must be one of suite, exclusive, none, got "x" \(string\)/],
    [{ keepAlive: 'yes' }, /keepAlive" must be true or false/],
    [{ onLog: 'stderr' }, /onLog" must be a function/],
  ])('refuses %j with a BAD_OPTION naming the range', (options, message) => {
    expect(() => resolveOptions(options as never, settings)).toThrow(message)
    expect(() => resolveOptions(options as never, settings)).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }))
  })

  it('never allows more guest memory than the host has', () => {
    expect(maxMemoryMb()).toBeGreaterThanOrEqual(64)
    expect(() => resolveOptions({ memoryMb: maxMemoryMb() + 1 }, settings)).toThrow(/memoryMb/)
  })

  it('takes the driver from STACK_EMULATOR_DRIVER when the option is unset, and names the drivers when it is none of them', () => {
    expect(resolveOptions({}, readSettings({ STACK_EMULATOR_DRIVER: 'docker' })).driver).toBe('docker')
    expect(resolveOptions({ driver: 'qemu' }, readSettings({ STACK_EMULATOR_DRIVER: 'docker' })).driver).toBe('qemu')
    expect(resolveOptions({}, readSettings({})).driver).toBe('qemu')
    expect(() => resolveOptions({}, readSettings({ STACK_EMULATOR_DRIVER: 'podman' }))).toThrow(
      expect.objectContaining({ code: 'BAD_OPTION', message: 'STACK_EMULATOR_DRIVER must be one of qemu, docker, external; got "podman". Unset it for qemu.' }),
    )
  })
})

describe('driverOptions', () => {
  it("takes ports for the image's services and refuses others, naming the known ones", () => {
    expect(driverOptions(resolveOptions({ ports: { dashboard: 26700 }, memoryMb: 640 }, settings), manifest)).toMatchObject({
      memoryMb: 640,
      ports: { backend: 26701, dashboard: 26700 },
    })
    expect(() => driverOptions(resolveOptions({ ports: { mail: 1 } }, settings), manifest)).toThrow(
      /ports.mail.*one of the image's services \(backend, dashboard\)/,
    )
    expect(() => driverOptions(resolveOptions({ ports: { backend: 26700, dashboard: 26700 } }, settings), manifest)).toThrow(
      /^Option "ports" gives port 26700 twice, to backend and to dashboard/,
    )
    expect(() => driverOptions(resolveOptions({ ports: { backend: 0, dashboard: 0 } }, settings), manifest)).not.toThrow()
  })
})

describe('assertCompatible', () => {
  const running = { kind: 'qemu' as const, snapshot: true, fresh: false, bootTimeoutMs: 180_000, memoryMb: 512, ports: { backend: 26701, dashboard: 0 } }
  it('lets through what the caller left unset or asked for as running', () => {
    expect(() => assertCompatible('x', {}, running)).not.toThrow()
    expect(() => assertCompatible('x', { memoryMb: 512, ports: { backend: 26701, dashboard: 0 } }, running)).not.toThrow()
  })
  it('names every difference and the fix', () => {
    expect(() => assertCompatible('x', { memoryMb: 640, snapshot: false, ports: { backend: 1 } }, running)).toThrow(
      /Instance "x" is running with memoryMb 512, not 640, snapshot true, not false, ports.backend 26701, not 1.*stack-emulator stop --name x/,
    )
  })
})

describe('the arch option', () => {
  it('is amd64 or arm64', () => {
    expect(resolveOptions({ arch: 'arm64' }, settings).arch).toBe('arm64')
    expect(resolveOptions({}, settings).arch).toBeUndefined()
    expect(() => resolveOptions({ arch: 'x86_64' as never }, settings)).toThrow(/Option "arch" must be amd64 or arm64, got "x86_64"/)
  })

  it("must be the image's arch when given", () => {
    const arm: EmulatorManifest = { ...manifest, arch: 'arm64' }
    expect(() => driverOptions(resolveOptions({ arch: 'amd64' }, settings), manifest)).not.toThrow()
    expect(() => driverOptions(resolveOptions({ arch: 'arm64' }, settings), arm)).not.toThrow()
    expect(() => driverOptions(resolveOptions({}, settings), arm)).not.toThrow()
    expect(() => driverOptions(resolveOptions({ arch: 'arm64' }, settings), manifest)).toThrow(expect.objectContaining({ code: 'BAD_OPTION' }))
    expect(() => driverOptions(resolveOptions({ arch: 'arm64' }, settings), manifest)).toThrow(/^Option "arch" is arm64, but the image img is built for amd64/)
    expect(() => driverOptions(resolveOptions({ arch: 'amd64' }, settings), arm)).toThrow(/"arch" is amd64, but the image img is built for arm64/)
  })
})
