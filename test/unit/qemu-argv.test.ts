import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildArgv, hostShareDevice, machineShape, qemuBinaryFor, type LaunchPaths } from '../../src/drivers/qemu/argv.js'
import { findUefiFirmware } from '../../src/drivers/qemu/firmware.js'
import { expectedFingerprint } from '../../src/drivers/qemu/snapshot.js'
import { parseUsernet } from '../../src/drivers/qemu/usernet.js'
import type { ImageManifest } from '../../src/image/manifest.js'

const manifest: ImageManifest = {
  name: 'test',
  fingerprint: 'f'.repeat(64),
  file: '/img/manifest.json',
  dir: '/img',
  disk: 'disk.qcow2',
  memoryMb: 512,
  cpus: 2,
  boot: { kind: 'kernel', kernel: 'vmlinux', initrd: 'initrd.img', append: 'console=ttyS0', bios: 'qboot' },
  services: [
    { name: 'backend', guestPort: 8102 },
    { name: 'dashboard', guestPort: 8101 },
  ],
}

describe('buildArgv', () => {
  const shape = machineShape(manifest, 'tcg', 512)
  const args = (ports: number[], paths: string, ram: { share: boolean }, incoming: boolean) =>
    buildArgv({
      manifest,
      shape,
      incoming,
      paths: { disk: `${paths}/overlay.qcow2`, qmpSocket: `${paths}/qmp.sock`, consoleLog: `${paths}/console.log` },
      forwards: [
        { hostPort: ports[0]!, guestPort: 8102 },
        { hostPort: ports[1]!, guestPort: 8101 },
      ],
      ram: { path: '/snap/ram', ...ram },
    })

  it('binds every forward to loopback and keeps the guest off the network', () => {
    const argv = args([0, 26700], '/a', { share: false }, false)
    const netdev = argv[argv.indexOf('-netdev') + 1]!
    expect(netdev).toContain('hostfwd=tcp:127.0.0.1:0-:8102')
    expect(netdev).toContain('hostfwd=tcp:127.0.0.1:26700-:8101')
    expect(netdev).toContain('restrict=on')
    expect(netdev).not.toMatch(/hostfwd=tcp::/)
  })

  it('differs between capture and restore only in paths, ports, RAM sharing and -incoming', () => {
    const capture = args([0, 0], '/staging', { share: true }, false)
    const restore = args([40001, 40002], '/instance', { share: false }, true)
    const normalize = (argv: string[]) =>
      argv
        .filter((a) => a !== '-incoming' && a !== 'defer')
        .map((a) =>
          a
            .replace(/\/(staging|instance)\//g, '/X/')
            .replace(/127\.0\.0\.1:\d+-/g, '127.0.0.1:P-')
            .replace(/share=(on|off)/, 'share=S'),
        )
    expect(normalize(restore)).toEqual(normalize(capture))
    expect(restore.slice(-2)).toEqual(['-incoming', 'defer'])
    expect(capture.join(' ')).toContain('share=on')
    expect(restore.join(' ')).toContain('share=off')
  })

  it('uses a portable CPU model under TCG and the host CPU under KVM', () => {
    expect(machineShape(manifest, 'tcg', 512).cpu).toBe('qemu64,+rdrand')
    expect(machineShape(manifest, 'kvm', 512).cpu).toBe('host')
    expect(machineShape(manifest, 'tcg', 768).memoryMb).toBe(768)
  })

  it('doubles commas in paths, so a path cannot add options', () => {
    const argv = args([0, 0], '/a,b', { share: false }, false)
    expect(argv).toContain('file=/a,,b/overlay.qcow2,if=virtio,format=qcow2,cache=writeback,discard=unmap,werror=enospc')
    expect(argv).toContain('socket,id=qmp,path=/a,,b/qmp.sock,server=on,wait=off')
    expect(argv).toContain('file,id=console,path=/a,,b/console.log')
    expect(argv.join(' ')).toContain('mem-path=/snap/ram,share=off')
  })
})

describe('parseUsernet', () => {
  it('reads the host ports QEMU bound', () => {
    const text = [
      'Hub -1 (net0):',
      '  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ',
      '  TCP[HOST_FORWARD]  14       127.0.0.1 38211       10.0.2.15  8101     0     0',
      '  TCP[HOST_FORWARD]  13       127.0.0.1 40123       10.0.2.15  8102     0     0',
      '  TCP[ESTABLISHED]   20       10.0.2.15 51234        10.0.2.2    80     0     0',
    ].join('\r\n')
    expect(parseUsernet(text)).toEqual([
      { hostPort: 38211, guestPort: 8101 },
      { hostPort: 40123, guestPort: 8102 },
    ])
  })
})

/** The real image's manifest as shipped (amd64), and the arm64 one `image pull --arch arm64` makes of it. */
const real = {
  ...JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../manifests/stack-auth.json'), 'utf8')),
  file: '/img/manifest.json',
  dir: '/img',
} as ImageManifest
const { machine: _machine, cpu: _cpu, firmware: _firmware, ...realRest } = real
const arm = { ...realRest, arch: 'arm64' } as ImageManifest
const realPaths: LaunchPaths = {
  disk: '/i/run.qcow2',
  qmpSocket: '/i/qmp.sock',
  consoleLog: '/i/console.log',
  runtimeVolume: '/i/stackcfg.iso',
  hostShare: '/i/host',
  guestAgentSocket: '/i/qga.sock',
}
const firmware = { code: '/usr/share/AAVMF/AAVMF_CODE.fd', vars: '/i/efivars.fd' }
const realForwards = [{ hostPort: 26701, guestPort: 8102 }]
/** The same argv under a hardware accelerator: only the accelerator and the CPU model differ. */
const underKvm = (argv: string[]) => argv.map((a) => (a === 'max' ? 'host' : a.replace('accel=tcg', 'accel=kvm')))

const REAL_DEVICES = [
  '-drive',
  'file=/i/run.qcow2,if=virtio,format=qcow2,cache=writeback,discard=unmap,werror=enospc',
  '-drive',
  'file=/i/stackcfg.iso,if=virtio,format=raw,readonly=on',
  '-netdev',
  'user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:26701-:8102',
  '-device',
  'virtio-net-pci,netdev=net0',
  '-fsdev',
  'local,id=hostfs,path=/i/host,security_model=none',
  '-device',
  'pcie-root-port,id=hostfs-port,bus=pcie.0,chassis=1',
  '-device',
  'virtio-serial-pci,id=serial0',
  '-chardev',
  'socket,id=qga,path=/i/qga.sock,server=on,wait=off',
  '-device',
  'virtserialport,bus=serial0.0,chardev=qga,name=org.qemu.guest_agent.0',
  '-chardev',
  'file,id=console,path=/i/console.log',
  '-serial',
  'chardev:console',
  '-chardev',
  'socket,id=qmp,path=/i/qmp.sock,server=on,wait=off',
  '-mon',
  'chardev=qmp,mode=control',
]

describe('buildArgv for the real image', () => {
  it('amd64: q35, -cpu max under TCG, SeaBIOS (no firmware drives), disk boot, STACKCFG read-only virtio disk, share host side and root port, guest agent', () => {
    const argv = buildArgv({ manifest: real, shape: machineShape(real, 'tcg', 4096), paths: realPaths, forwards: realForwards })
    expect(argv).toEqual([
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-no-reboot',
      '-machine',
      'q35,accel=tcg',
      '-cpu',
      'max',
      '-smp',
      '4',
      '-m',
      '4096M',
      ...REAL_DEVICES,
    ])
    expect(buildArgv({ manifest: real, shape: machineShape(real, 'kvm', 4096), paths: realPaths, forwards: realForwards })).toEqual([
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-no-reboot',
      '-machine',
      'q35,accel=kvm',
      '-cpu',
      'host',
      '-smp',
      '4',
      '-m',
      '4096M',
      ...REAL_DEVICES,
    ])
  })

  it("arm64: virt, -cpu max, pflash code (read-only) and the instance's vars copy", () => {
    const capture = (accel: 'tcg' | 'kvm' | 'hvf') =>
      buildArgv({
        manifest: arm,
        shape: machineShape(arm, accel, 4096),
        paths: { ...realPaths, firmware },
        forwards: realForwards,
        ram: { path: '/s/ram', share: true },
      })
    const expected = [
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-no-reboot',
      '-machine',
      'virt,accel=tcg,memory-backend=mem',
      '-cpu',
      'max',
      '-smp',
      '4',
      '-m',
      '4096M',
      '-object',
      'memory-backend-file,id=mem,size=4096M,mem-path=/s/ram,share=on',
      '-drive',
      'if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/AAVMF/AAVMF_CODE.fd',
      '-drive',
      'if=pflash,format=raw,unit=1,file=/i/efivars.fd',
      ...REAL_DEVICES,
    ]
    expect(capture('tcg')).toEqual(expected)
    expect(capture('kvm')).toEqual(underKvm(expected))
    expect(capture('kvm').slice(5, 9)).toEqual(['-machine', 'virt,accel=kvm,memory-backend=mem', '-cpu', 'host'])
    expect(capture('hvf').slice(5, 9)).toEqual(['-machine', 'virt,accel=hvf,memory-backend=mem', '-cpu', 'host'])
  })

  it('doubles commas in every new path', () => {
    const argv = buildArgv({
      manifest: arm,
      shape: machineShape(arm, 'tcg', 4096),
      forwards: [],
      paths: {
        disk: '/a,b/d',
        qmpSocket: '/a,b/q',
        consoleLog: '/a,b/c',
        runtimeVolume: '/a,b/v.iso',
        hostShare: '/a,b/h',
        guestAgentSocket: '/a,b/g',
        firmware: { code: '/f,w/code', vars: '/a,b/vars' },
      },
    }).join(' ')
    for (const part of ['file=/f,,w/code', 'file=/a,,b/vars', 'file=/a,,b/v.iso,', 'path=/a,,b/h,', 'path=/a,,b/g,']) expect(argv).toContain(part)
  })

  it('refuses to build an argv without a file the manifest asks for (a driver bug caught before QEMU runs)', () => {
    expect(() =>
      buildArgv({ manifest: arm, shape: machineShape(arm, 'tcg', 4096), paths: { disk: '/d', qmpSocket: '/q', consoleLog: '/c' }, forwards: [] }),
    ).toThrow(/needs UEFI firmware, the runtime volume STACKCFG, the host share hostfs, the guest agent socket/)
  })

  it('takes the machine, the TCG CPU model and the firmware from the manifest, with defaults written once', () => {
    expect(machineShape({ ...manifest, boot: { kind: 'disk' } }, 'tcg', 512)).toMatchObject({ machine: 'q35', cpu: 'qemu64,+rdrand' })
    expect(machineShape({ ...manifest, machine: 'q35', cpu: 'max' }, 'tcg', 512)).toMatchObject({ machine: 'q35', cpu: 'max' })
    expect(machineShape(arm, 'hvf', 512)).toMatchObject({ machine: 'virt', cpu: 'host', accel: 'hvf' })
  })

  it('returns device_add arguments that plug the 9p share into its root port', () => {
    expect(hostShareDevice(real)).toEqual({ driver: 'virtio-9p-pci', id: 'hostfs-dev', fsdev: 'hostfs', mount_tag: 'hostfs', bus: 'hostfs-port' })
    expect(hostShareDevice({ ...real, hostShare: { tag: 'other', guestPath: '/x', mountCommand: ['/m'] } }).mount_tag).toBe('other')
    expect(() => hostShareDevice(manifest)).toThrow(/no hostShare/)
  })

  it('binds a snapshot to arch, firmware and the new devices, leaving manifests without them as they were', () => {
    const devices = (m: ImageManifest) => expectedFingerprint(m, machineShape(m, 'tcg', 4096), '7.2.22', 's', '').devices
    expect(devices(real)).toBe(
      'virtio-blk virtio-net-pci fw_cfg-seed disk guest-ports=8101,8102,9090,9001,8114 arch=amd64 firmware=default runtime-volume=STACKCFG fsdev=hostfs pcie-root-port=hostfs-port mount=/usr/local/bin/mount-host-fs --post-resume virtserialport=org.qemu.guest_agent.0',
    )
    expect(devices(arm)).toBe(
      'virtio-blk virtio-net-pci fw_cfg-seed disk guest-ports=8101,8102,9090,9001,8114 arch=arm64 firmware=uefi runtime-volume=STACKCFG fsdev=hostfs pcie-root-port=hostfs-port mount=/usr/local/bin/mount-host-fs --post-resume virtserialport=org.qemu.guest_agent.0',
    )
    expect(expectedFingerprint(arm, machineShape(arm, 'tcg', 4096), '7.2.22', 's', '')).toMatchObject({ machine: 'virt', cpu: 'max' })
    expect(devices(manifest)).toBe('virtio-blk virtio-net-pci fw_cfg-seed vmlinux initrd.img console=ttyS0 qboot guest-ports=8102,8101')
  })
})

describe('qemuBinaryFor', () => {
  it('uses the configured binary for amd64 and qemu-system-aarch64 for arm64, beside a configured path', () => {
    expect(qemuBinaryFor('amd64', 'qemu-system-x86_64')).toBe('qemu-system-x86_64')
    expect(qemuBinaryFor('amd64', '/opt/q/bin/qemu-system-x86_64')).toBe('/opt/q/bin/qemu-system-x86_64')
    expect(qemuBinaryFor('arm64', 'qemu-system-x86_64')).toBe('qemu-system-aarch64')
    expect(qemuBinaryFor('arm64', '/opt/q/bin/qemu-system-x86_64')).toBe('/opt/q/bin/qemu-system-aarch64')
  })
})

describe('findUefiFirmware', () => {
  const lister = (tree: Record<string, string[]>) => async (dir: string) => tree[dir] ?? []

  it("finds Debian's AAVMF pair", async () => {
    const listDir = lister({ '/usr/share/AAVMF': ['AAVMF_CODE.fd', 'AAVMF_CODE.ms.fd', 'AAVMF_VARS.fd'], '/usr/share/qemu-efi-aarch64': ['QEMU_EFI.fd'] })
    expect(await findUefiFirmware('arm64', { listDir })).toEqual({ code: '/usr/share/AAVMF/AAVMF_CODE.fd', varsTemplate: '/usr/share/AAVMF/AAVMF_VARS.fd' })
  })

  it("finds QEMU's own edk2 files beside a Homebrew binary", async () => {
    const listDir = lister({
      '/opt/homebrew/Cellar/qemu/9.2/share/qemu': ['edk2-aarch64-code.fd', 'edk2-arm-vars.fd', 'edk2-x86_64-code.fd', 'edk2-i386-vars.fd'],
    })
    expect(await findUefiFirmware('arm64', { qemuBinary: '/opt/homebrew/Cellar/qemu/9.2/bin/qemu-system-aarch64', listDir })).toEqual({
      code: '/opt/homebrew/Cellar/qemu/9.2/share/qemu/edk2-aarch64-code.fd',
      varsTemplate: '/opt/homebrew/Cellar/qemu/9.2/share/qemu/edk2-arm-vars.fd',
    })
    expect((await findUefiFirmware('amd64', { qemuBinary: '/opt/homebrew/Cellar/qemu/9.2/bin/qemu-system-x86_64', listDir })).code).toBe(
      '/opt/homebrew/Cellar/qemu/9.2/share/qemu/edk2-x86_64-code.fd',
    )
  })

  it('says which package to install when nothing is found (a code file without its vars does not count)', async () => {
    const error = await findUefiFirmware('arm64', {
      listDir: lister({ '/usr/share/AAVMF': ['AAVMF_CODE.fd'], '/usr/share/qemu-efi-aarch64': ['QEMU_EFI.fd'] }),
    }).catch((e) => e)
    expect(error.code).toBe('QEMU_NOT_FOUND')
    expect(error.message).toContain('/usr/share/AAVMF/AAVMF_CODE.fd')
    expect(error.fix).toContain('apt-get install qemu-efi-aarch64')
    expect(error.fix).toContain('brew install qemu')
    expect((await findUefiFirmware('amd64', { listDir: lister({}) }).catch((e) => e)).fix).toContain('apt-get install ovmf')
  })
})
