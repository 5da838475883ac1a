/**
 * The real image's boot contract, driven through the same manifest fields as the real image and
 * reproduced by the fixture: services on the real guest ports, the STACKCFG runtime volume, the
 * per-instance 9p share (never in the snapshot, hot-plugged and mounted after every restore), the internal-pck
 * handshake with the three headers, the clock through the guest agent. Uses a private snapshot cache
 * that starts with a copy of the shared ready snapshot.
 */
import fs from 'node:fs'
import path from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { acquire, type Emulator } from '../../src/client/acquire.js'
import { stopInstance } from '../../src/client/control.js'
import { guestExec, withGuestAgent } from '../../src/drivers/qemu/guest-agent.js'
import { cli, fixtureVariant, http, leftoversUnder, privateCacheWithSnapshot, processesMentioning, qemuProcesses, useTempHome } from '../helpers.js'

const home = useTempHome()
const cache = await privateCacheWithSnapshot(home)
process.env.STACK_EMULATOR_CACHE_DIR = cache
const instanceDir = (name: string) => path.join(home, 'state', name)
const apps = fs.mkdtempSync(path.join(home, 'apps-'))
fs.writeFileSync(path.join(apps, 'gen.config.ts'), '')
const names = ['contract', 'ports-a', 'ports-b', 'no-volume', 'held', 'gen-x-stack', 'gen-both', 'gen-typo']

const variant = (name: string, change: (manifest: Record<string, any>) => void) =>
  fixtureVariant(path.join(home, `image-${name}`), (m) => {
    m.name = `fixture-${name}`
    change(m)
  })

/**
 * Runs a command in the guest of the QEMU `vm` names, through its agent (the supervisor holds no
 * agent connection between tasks), found on its command line: a reset restores beside the old VM,
 * in the other slot's files, and a warm spare may run beside it.
 */
const inGuest = (vm: Emulator, argv: string[]) => {
  const qemu = processesMentioning('qemu-system').find((p) => p.pid === Number(vm.id))
  if (!qemu) throw new Error(`no QEMU with pid ${vm.id}`)
  const socket = /socket,id=qga,path=([^,\s]+)/.exec(qemu.cmdline)![1]!
  return withGuestAgent(socket, 10_000, (agent) => guestExec(agent, argv, 10_000))
}

/**
 * A guest shell expression: the pid of the fixture's services, its only python3 process (by `comm`:
 * reading another process's cmdline can block on that process's memory).
 */
const servicesPid = 'for p in $(ls /proc | grep -E "^[0-9]+$" | sort -n); do [ "$(cat /proc/$p/comm 2>/dev/null)" = python3 ] && { echo $p; break; }; done'

const route = (vm: Emulator) => `${vm.backendUrl}/api/v1/internal/local-emulator/project`
const internalKeyFile = (name: string) => path.join(instanceDir(name), 'share', instanceDir(name), 'vm', 'internal-pck')
const handshake = (key: string) => ({ 'x-stack-project-id': 'internal', 'x-stack-access-type': 'client', 'x-stack-publishable-client-key': key })

afterAll(async () => {
  for (const name of names) await stopInstance(name)
  expect(await leftoversUnder(home)).toEqual([])
})

describe('the fixture through the real contract', () => {
  let vm: Emulator
  const appDir = path.join(apps, 'app')
  const configFile = path.join(appDir, 'stack.config.ts')
  beforeAll(async () => {
    fs.mkdirSync(appDir)
    fs.writeFileSync(configFile, '') // empty: the route writes a default config into it, through the share
    fs.writeFileSync(path.join(appDir, 'secret.txt'), 'not for the guest')
    vm = await acquire({ name: 'contract', keepAlive: true, idleTimeoutMs: 0, configFile })
  })
  afterAll(() => vm.release())

  it('forwards to the real guest ports and finds every service healthy there', async () => {
    expect(Object.keys(vm.services).sort()).toEqual(['backend', 'dashboard', 'inbucket', 'minio', 'mock-oauth'])
    const [qemu] = qemuProcesses(instanceDir('contract'))
    for (const guestPort of [8101, 8102, 9090, 9001, 8114]) expect(qemu!.cmdline).toContain(`-:${guestPort}`)
    for (const [service, healthPath] of [
      ['backend', '/health?db=1'],
      ['dashboard', '/handler/sign-in'],
      ['minio', '/minio/health/live'],
      ['inbucket', '/'],
    ]) {
      expect((await http(vm.services[service!]! + healthPath)).status).toBe(200)
    }
  })

  it('mints credentials through the internal-pck handshake and writes the config back through the share', async () => {
    expect(vm.credentials?.projectId).toMatch(/^[0-9a-f-]{36}$/)
    expect(fs.statSync(internalKeyFile('contract')).mode & 0o777).toBe(0o600)
    // The guest gave the empty file a default config; it reached the user's file.
    expect(fs.readFileSync(configFile, 'utf8')).not.toBe('')
    expect(vm.credentials?.branchConfigOverride).toBeTypeOf('string')
  })

  it('refuses a call without the handshake headers, a relative path, and a file outside the share', async () => {
    const key = fs.readFileSync(internalKeyFile('contract'), 'utf8').trim()
    const noHeaders = await http(route(vm), { method: 'POST', body: { absolute_file_path: configFile } })
    expect(noHeaders.status).toBeGreaterThanOrEqual(400)
    expect(noHeaders.json.code).toBeTypeOf('string')
    const wrongKey = await http(route(vm), { method: 'POST', body: { absolute_file_path: configFile }, headers: handshake('0'.repeat(64)) })
    expect(wrongKey.status).toBeGreaterThanOrEqual(400)
    const relative = await http(route(vm), { method: 'POST', body: { absolute_file_path: 'stack.config.ts' }, headers: handshake(key) })
    expect(relative.status).toBe(400)
    const outside = await http(route(vm), { method: 'POST', body: { absolute_file_path: path.join(appDir, 'secret.txt') }, headers: handshake(key) })
    expect(outside.status).toBe(400)
    expect(outside.text).toMatch(/not found/i)
    const allowed = await http(route(vm), { method: 'POST', body: { absolute_file_path: configFile }, headers: handshake(key) })
    expect(allowed.status).toBe(200)
    expect(allowed.json.project_id).toBe(vm.credentials?.projectId)
  })

  it('shows the guest nothing outside the shared folder', async () => {
    expect((await inGuest(vm, ['/bin/ls', '-A', `/host${appDir}`])).split('\n').filter(Boolean)).toEqual(['stack.config.ts'])
    expect((await inGuest(vm, ['/bin/ls', '-A', '/host'])).split('\n').filter(Boolean)).toEqual([home.split('/')[1]])
    await expect(inGuest(vm, ['/usr/bin/test', '-e', '/host/etc/passwd'])).rejects.toThrow(/exit code 1/)
  })

  it('restores without the share, hot-plugs and mounts it once after each restore and reset, and mints again after a reset', async () => {
    expect(vm.origin).toBe('snapshot')
    // One mount of the share is one 9p superblock, listed more than once (its copies propagated to the root's peers): a second mount would add one.
    const shareMounts = async () =>
      new Set(
        (await inGuest(vm, ['/bin/cat', '/proc/self/mountinfo']))
          .split('\n')
          .filter((line) => / \/host .* - 9p hostfs /.test(line))
          .map((line) => line.split(' ')[2]),
      ).size
    for (let round = 0; round < 2; round++) {
      // As Stack Auth's script: the snapshot has only the empty root port; the device is hot-plugged after the restore.
      const cmdline = qemuProcesses(instanceDir('contract')).find((p) => p.pid === Number(vm.id))!.cmdline
      expect(cmdline).toContain('pcie-root-port,id=hostfs-port')
      expect(cmdline).not.toContain('virtio-9p-pci')
      expect(await shareMounts()).toBe(1)
      // The services (their own mount namespace, as the real container) see the share that was plugged after their start.
      expect(await inGuest(vm, ['/bin/sh', '-c', `cat "/proc/$(${servicesPid})/root/host$0"`, configFile])).toBe(fs.readFileSync(configFile, 'utf8'))
      await vm.reset()
    }
    const again = await acquire({ name: 'contract', configFile })
    expect(again.credentials?.projectId).toMatch(/^[0-9a-f-]{36}$/)
    await again.release()
  })

  it("shows the services' own output after a restore: their unit's journal, read through the guest agent", async () => {
    expect(vm.origin).toBe('snapshot')
    const { stdout, exitCode } = await cli(['logs', '--name', 'contract'])
    expect(exitCode).toBe(0)
    // The services started at the capture, before the snapshot: their start-up line is in the journal, not on this QEMU's console.
    expect(stdout).toMatch(/--- the services' output: journalctl -u stack\.service \(in the guest\) ---\n[\s\S]*fixture-server: listening/)
    const json = JSON.parse((await cli(['logs', '--name', 'contract', '--json'])).stdout)
    expect(json.services.text).toMatch(/fixture-server: listening/)
  })
})

describe('a guest whose services hold the share (as the real container does)', () => {
  it('refuses the old capture (share mounted at boot, unmounted before saving): the services hold it', async () => {
    const { loadManifest } = await import('../../src/image/manifest.js')
    const { readSettings } = await import('../../src/settings.js')
    const { startQemuVm } = await import('../../src/drivers/qemu/vm.js')
    const { migrateToFile } = await import('../../src/drivers/qemu/capture.js')
    const { fixtureDir, fixtureFingerprint } = await import('../../src/image/fixture.js')
    const manifest = await loadManifest(path.join(fixtureDir(cache, await fixtureFingerprint()), 'manifest.json'))
    const dir = instanceDir('held')
    fs.mkdirSync(dir, { recursive: true, mode: 0o700 })
    const vm = await startQemuVm({
      kind: 'qemu',
      manifest,
      settings: readSettings(),
      instanceDir: dir,
      ports: Object.fromEntries(manifest.services.map((s) => [s.name, 0])),
      memoryMb: manifest.memoryMb,
      snapshot: false,
      fresh: true,
      bootTimeoutMs: 180_000, // under the test's 240 s: a boot that hangs fails with its own error, naming the console log
      log: () => {},
      progress: () => {},
    })
    try {
      const run = (argv: string[]) => withGuestAgent(path.join(dir, 'qga.sock'), 10_000, (a) => guestExec(a, argv, 10_000))
      // As the real run-stack-container: the services' output is teed into stack.log in the VM folder, through the share.
      expect(fs.readFileSync(path.join(dir, 'share', dir, 'vm', 'stack.log'), 'utf8')).toMatch(/fixture-server: listening/)
      expect(await vm.serviceLogs()).toMatchObject({
        source: path.join(dir, 'share', dir, 'vm', 'stack.log'),
        text: expect.stringMatching(/fixture-server: listening/),
      })
      // The old capture's step, unmounting /host in the guest's root namespace, is refused...
      await expect(run(['/bin/sh', '-c', 'if grep -q " $0 9p " /proc/mounts; then exec umount "$0"; fi', '/host'])).rejects.toThrow(/busy/)
      // ...and a lazy one, which detaches it there, leaves the services' own mount namespace holding the share:
      await run(['/bin/umount', '-l', '/host'])
      expect(await run(['/bin/sh', '-c', 'grep -c " /host .* - 9p " /proc/1/mountinfo || true'])).toBe('0\n')
      expect(await run(['/bin/sh', '-c', `grep " /host " /proc/$(${servicesPid})/mountinfo`])).toMatch(/ \/host .* - 9p hostfs /)
      // so QEMU refuses to save the VM, as it would refuse Stack Auth's image.
      const proc = (vm as unknown as { proc: import('../../src/drivers/qemu/process.js').QemuProcess }).proc
      await expect(migrateToFile(proc, path.join(dir, 'migrate.sock'), path.join(dir, 'state'))).rejects.toThrow(
        /Migration is disabled when VirtFS export path .* is mounted/,
      )
    } finally {
      await vm.stop()
    }
  })
})

describe('a backend of the generation before the Hexclave rename (STACK_EMULATOR_FIXTURE_HEADERS=x-stack)', () => {
  it('refuses X-Hexclave-only requests as dev 2f719903b does, and start warns that the SDK installed here sends only those', async () => {
    const env = { STACK_EMULATOR_FIXTURE_HEADERS: 'x-stack' }
    const started = await cli(['start', '--name', 'gen-x-stack', '--config-file', path.join(apps, 'gen.config.ts'), '--json'], env)
    expect(started.exitCode).toBe(0)
    expect(started.stderr).toMatch(
      /@stackframe\/js 2\.8\.\d+ sends only X-Hexclave-\* headers, but the backend of image stack-auth-fixture reads only x-stack-\*.*pin the SDK to 2\.8\.102/,
    )
    const { backendUrl, env: vars } = JSON.parse(started.stdout)
    const headers = (family: string) => ({
      [`${family}-project-id`]: vars.STACK_PROJECT_ID,
      [`${family}-access-type`]: 'client',
      [`${family}-publishable-client-key`]: vars.STACK_PUBLISHABLE_CLIENT_KEY,
    })
    const hexclave = await http(`${backendUrl}/api/v1/projects/current`, { headers: headers('x-hexclave') })
    expect([hexclave.status, hexclave.json.code]).toEqual([400, 'ACCESS_TYPE_REQUIRED'])
    expect((await http(`${backendUrl}/api/v1/projects/current`, { headers: headers('x-stack') })).status).toBe(200)
    expect((await cli(['stop', '--name', 'gen-x-stack'], env)).exitCode).toBe(0)
  })

  it('prints no such line against the default fixture (both families), and refuses a value it does not know', async () => {
    const started = await cli(['start', '--name', 'gen-both', '--config-file', path.join(apps, 'gen.config.ts')])
    expect(started.exitCode).toBe(0)
    expect(started.stderr).not.toMatch(/X-Hexclave/)
    await cli(['stop', '--name', 'gen-both'])
    const typo = await cli(['start', '--name', 'gen-typo'], { STACK_EMULATOR_FIXTURE_HEADERS: 'x-stak' })
    expect(typo.exitCode).not.toBe(0)
    expect(typo.stderr).toMatch(/STACK_EMULATOR_FIXTURE_HEADERS must be one of x-stack, both; got "x-stak"/)
  })
})

describe('host ports baked into the snapshot', () => {
  it('gives two instances side by side their own ports and their own snapshots', async () => {
    const image = await variant('ports', (m) => (m.runtimeVolume.hostPortsInSnapshot = true))
    // Below Linux's ephemeral range (32768 up), where the other VMs' ports (0: QEMU picks) never land.
    const ports = (base: number) => ({ dashboard: base, backend: base + 1, minio: base + 2, inbucket: base + 3, 'mock-oauth': base + 4 })
    const [a, b] = await Promise.all([
      acquire({ name: 'ports-a', image, ports: ports(26810), configFile: false }),
      acquire({ name: 'ports-b', image, ports: ports(26820), configFile: false }),
    ])
    try {
      expect(a.backendUrl).toBe('http://127.0.0.1:26811')
      expect(b.backendUrl).toBe('http://127.0.0.1:26821')
      // Each guest was captured with, and serves, its own host ports.
      expect((await http(`${a.backendUrl}/api/v1/internal/emulator/info`)).json.runtime.backend_host_port).toBe(26811)
      expect((await http(`${b.backendUrl}/api/v1/internal/emulator/info`)).json.runtime.backend_host_port).toBe(26821)
      const slots = fs.readdirSync(path.join(cache, 'snapshots')).filter((d) => d.startsWith('fixture-ports-') && !d.includes('.'))
      expect(slots).toHaveLength(2)
    } finally {
      await Promise.all([a.release(), b.release()])
    }
    await expect(acquire({ name: 'ports-a', image, ports: { backend: 0 }, configFile: false })).rejects.toThrow(/needs a fixed one/)
  })
})

describe('without its runtime volume', () => {
  it('fails as the real guest does, and the error names the console log', async () => {
    const image = await variant('no-volume', (m) => delete m.runtimeVolume)
    // The guest never gets healthy, so the acquire always waits its whole boot timeout: 50 s, not
    // the 90 s it had, is still over twice the 21 s the guest takes to say why on its console
    // (render-stack-env, retried every 5 s or so, so the line is in the error's last lines).
    const error = await acquire({ name: 'no-volume', image, snapshot: false, bootTimeoutMs: 50_000, configFile: false }).catch((e: unknown) => e as Error)
    expect(error).toBeInstanceOf(Error)
    expect(String(error)).toMatch(/did not become healthy/)
    const details = (error as { details?: string }).details ?? ''
    expect(details).toMatch(/no runtime volume labelled STACKCFG/)
    expect(String((error as { fix?: string }).fix) + details).toContain(path.join(instanceDir('no-volume'), 'console.log'))
  })
})

describe('the real image manifest', () => {
  it('fails only for want of the real disk file, and says where to get it', async () => {
    const result = await cli(['start', '--image', path.join(import.meta.dirname, '../../manifests/stack-auth.json'), '--name', 'real'])
    expect(result.exitCode).not.toBe(0)
    expect(result.stderr).toMatch(/stack-emulator\.qcow2 .* is missing/)
    expect(result.stderr).toMatch(/image pull/)
  })
})
