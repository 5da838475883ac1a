/**
 * Builds QEMU's argument array. Everything that a snapshot depends on comes from `MachineShape`
 * and is identical between capture and restore; only paths, ports and the incoming switch vary.
 */
import path from 'node:path'
import { StackEmulatorError } from '../../errors.js'
import { platform, type ImageManifest } from '../../image/manifest.js'
import type { Arch } from '../../image/names.js'
import type { Accel } from './accel.js'

/** What a snapshot is bound to (besides the QEMU version and the image). */
export interface MachineShape {
  accel: Accel
  cpu: string
  machine: string
  memoryMb: number
  cpus: number
}

/** The ids of the 9p share's host side (`-fsdev`), of its root port, and of its device. */
export const HOST_SHARE = { fsdev: 'hostfs', port: 'hostfs-port', device: 'hostfs-dev' } as const

/**
 * The 9p share's device, for QMP `device_add` into its empty root port. As Stack Auth's script
 * does, a snapshot never holds it: the guest's services hold their own mount of the share (a
 * container's mount namespace), which no unmount by the host can release, and QEMU will not
 * migrate a mounted share. It is on the command line of a cold boot, and hot-plugged after each
 * restore (launch.ts).
 */
export function hostShareDevice(manifest: ImageManifest): { driver: 'virtio-9p-pci'; id: string; fsdev: string; mount_tag: string; bus: string } {
  if (!manifest.hostShare) throw new Error(`Image ${manifest.name} has no hostShare`)
  return { driver: 'virtio-9p-pci', id: HOST_SHARE.device, fsdev: HOST_SHARE.fsdev, mount_tag: manifest.hostShare.tag, bus: HOST_SHARE.port }
}
export const GUEST_AGENT_PORT = 'org.qemu.guest_agent.0'

/**
 * The QEMU binary for an arch. `configured` ($STACK_EMULATOR_QEMU, default qemu-system-x86_64)
 * names the amd64 one; an arm64 image uses qemu-system-aarch64 from the same folder when
 * `configured` is a path (a custom build), else from PATH.
 */
export function qemuBinaryFor(arch: Arch, configured: string): string {
  if (arch === 'amd64') return configured
  return configured.includes('/') ? path.join(path.dirname(configured), 'qemu-system-aarch64') : 'qemu-system-aarch64'
}

export interface Forward {
  hostPort: number
  guestPort: number
}

export interface LaunchPaths {
  disk: string
  qmpSocket: string
  consoleLog: string
  /** Cloud-init NoCloud seed files handed to the guest through fw_cfg. */
  seed?: { metaData: string; userData: string }
  /** UEFI images: the firmware's code (read-only) and this instance's own copy of its variable store. */
  firmware?: { code: string; vars: string }
  /** The runtime volume's ISO (manifest `runtimeVolume`). */
  runtimeVolume?: string
  /** The host folder shared over 9p (manifest `hostShare`). */
  hostShare?: string
  /** The guest agent's socket (manifest `guestAgent`). */
  guestAgentSocket?: string
}

/** Guest RAM backed by a file: `share: true` while capturing, false (private, lazy) on restore. */
export interface RamFile {
  path: string
  share: boolean
}

export function machineShape(manifest: ImageManifest, accel: Accel, memoryMb: number): MachineShape {
  const { machine, tcgCpu } = platform(manifest)
  return {
    accel,
    // A fixed model under TCG keeps snapshots valid (see `platform`); hardware accelerators pass the host's.
    cpu: accel === 'tcg' ? tcgCpu : 'host',
    machine,
    memoryMb,
    cpus: manifest.cpus,
  }
}

/** What the manifest asks for that `paths` lacks (a driver bug, caught before QEMU runs). */
function missingPaths(manifest: ImageManifest, paths: LaunchPaths): string[] {
  const missing: string[] = []
  if (platform(manifest).firmware === 'uefi' && !paths.firmware) missing.push('UEFI firmware')
  if (manifest.runtimeVolume && !paths.runtimeVolume) missing.push(`the runtime volume ${manifest.runtimeVolume.label}`)
  if (manifest.hostShare && !paths.hostShare) missing.push(`the host share ${manifest.hostShare.tag}`)
  if (manifest.guestAgent && !paths.guestAgentSocket) missing.push('the guest agent socket')
  return missing
}

export function buildArgv(options: {
  manifest: ImageManifest
  shape: MachineShape
  paths: LaunchPaths
  forwards: Forward[]
  ram?: RamFile
  /** Wait for an incoming migration (snapshot restore) instead of booting. */
  incoming?: boolean
  /** The share's 9p device plugged from the start: a cold boot that will never be captured. */
  shareAttached?: boolean
}): string[] {
  const { manifest, shape, paths, forwards, ram } = options
  const missing = missingPaths(manifest, paths)
  if (missing.length > 0) {
    throw new StackEmulatorError(`Image ${manifest.name} needs ${missing.join(', ')}, which the driver did not provide`, { code: 'BOOT_FAILED' })
  }
  const machine = [`${shape.machine}`, `accel=${shape.accel}`]
  if (ram) machine.push('memory-backend=mem')
  const argv = [
    '-nodefaults',
    '-no-user-config',
    '-display',
    'none',
    // A guest panic ends QEMU (the readiness wait then reports it) instead of a reboot loop.
    '-no-reboot',
    '-machine',
    machine.join(','),
    '-cpu',
    shape.cpu,
    '-smp',
    String(shape.cpus),
    '-m',
    `${shape.memoryMb}M`,
  ]
  if (ram) {
    argv.push('-object', `memory-backend-file,id=mem,size=${shape.memoryMb}M,mem-path=${optionValue(ram.path)},share=${ram.share ? 'on' : 'off'}`)
  }
  if (paths.firmware && platform(manifest).firmware === 'uefi') {
    argv.push('-drive', `if=pflash,format=raw,unit=0,readonly=on,file=${optionValue(paths.firmware.code)}`)
    argv.push('-drive', `if=pflash,format=raw,unit=1,file=${optionValue(paths.firmware.vars)}`)
  }
  if (manifest.boot.kind === 'kernel') {
    if (manifest.boot.bios === 'qboot') argv.push('-bios', 'qboot.rom')
    argv.push('-kernel', path.resolve(manifest.dir, manifest.boot.kernel))
    if (manifest.boot.initrd) argv.push('-initrd', path.resolve(manifest.dir, manifest.boot.initrd))
    argv.push('-append', manifest.boot.append)
  }
  // werror=enospc: a full host disk pauses the VM (the driver reports it and resumes it) instead of failing guest writes.
  argv.push('-drive', `file=${optionValue(paths.disk)},if=virtio,format=qcow2,cache=writeback,discard=unmap,werror=enospc`)
  if (paths.runtimeVolume && manifest.runtimeVolume) {
    // As Stack Auth's own script attaches it: a read-only raw virtio disk holding the ISO image
    // (docs/stack-auth-contract.md), the same on both arches.
    argv.push('-drive', `file=${optionValue(paths.runtimeVolume)},if=virtio,format=raw,readonly=on`)
  }
  const hostfwd = forwards.map((f) => `hostfwd=tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`)
  // restrict=on: the guest reaches nothing outside; forwards from the host still work.
  argv.push('-netdev', ['user', 'id=net0', 'restrict=on', ...hostfwd].join(','))
  argv.push('-device', 'virtio-net-pci,netdev=net0')
  if (paths.seed) {
    argv.push('-fw_cfg', `name=opt/stack-emulator/meta-data,file=${optionValue(paths.seed.metaData)}`)
    argv.push('-fw_cfg', `name=opt/stack-emulator/user-data,file=${optionValue(paths.seed.userData)}`)
  }
  if (paths.hostShare && manifest.hostShare) {
    // The host side and an empty root port; the device itself only when `shareAttached` (hostShareDevice).
    argv.push('-fsdev', `local,id=${HOST_SHARE.fsdev},path=${optionValue(paths.hostShare)},security_model=none`)
    argv.push('-device', `pcie-root-port,id=${HOST_SHARE.port},bus=pcie.0,chassis=1`)
    if (options.shareAttached) {
      const device = hostShareDevice(manifest)
      argv.push('-device', `${device.driver},id=${device.id},fsdev=${device.fsdev},mount_tag=${device.mount_tag},bus=${device.bus}`)
    }
  }
  if (paths.guestAgentSocket && manifest.guestAgent) {
    argv.push('-device', 'virtio-serial-pci,id=serial0')
    argv.push('-chardev', `socket,id=qga,path=${optionValue(paths.guestAgentSocket)},server=on,wait=off`)
    argv.push('-device', `virtserialport,bus=serial0.0,chardev=qga,name=${GUEST_AGENT_PORT}`)
  }
  argv.push('-chardev', `file,id=console,path=${optionValue(paths.consoleLog)}`, '-serial', 'chardev:console')
  argv.push('-chardev', `socket,id=qmp,path=${optionValue(paths.qmpSocket)},server=on,wait=off`, '-mon', 'chardev=qmp,mode=control')
  if (options.incoming) argv.push('-incoming', 'defer')
  return argv
}

/** A value inside a QEMU option string: a comma would start the next option unless doubled. */
export function optionValue(value: string): string {
  return value.replace(/,/g, ',,')
}
