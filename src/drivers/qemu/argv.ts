/**
 * Builds QEMU's argument array. Everything that a snapshot depends on comes from `MachineShape`
 * and is identical between capture and restore; only paths, ports and the incoming switch vary.
 */
import path from 'node:path'
import type { ImageManifest } from '../../image/manifest.js'
import type { Accel } from './accel.js'

/** What a snapshot is bound to (besides the QEMU version and the image). */
export interface MachineShape {
  accel: Accel
  cpu: string
  machine: string
  memoryMb: number
  cpus: number
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
}

/** Guest RAM backed by a file: `share: true` while capturing, false (private, lazy) on restore. */
export interface RamFile {
  path: string
  share: boolean
}

export function machineShape(manifest: ImageManifest, accel: Accel, memoryMb: number): MachineShape {
  return {
    accel,
    // A fixed, portable model under TCG keeps snapshots valid; hardware accelerators pass the host's.
    // RDRAND seeds the guest's RNG at once: without it PostgreSQL waits about 3 s for entropy.
    cpu: accel === 'tcg' ? 'qemu64,+rdrand' : 'host',
    machine: 'pc',
    memoryMb,
    cpus: manifest.cpus,
  }
}

export function buildArgv(options: {
  manifest: ImageManifest
  shape: MachineShape
  paths: LaunchPaths
  forwards: Forward[]
  ram?: RamFile
  /** Wait for an incoming migration (snapshot restore) instead of booting. */
  incoming?: boolean
}): string[] {
  const { manifest, shape, paths, forwards, ram } = options
  const machine = [`${shape.machine}`, `accel=${shape.accel}`]
  if (ram) machine.push('memory-backend=mem')
  const argv = [
    '-nodefaults',
    '-no-user-config',
    '-display', 'none',
    // A guest panic ends QEMU (the readiness wait then reports it) instead of a reboot loop.
    '-no-reboot',
    '-machine', machine.join(','),
    '-cpu', shape.cpu,
    '-smp', String(shape.cpus),
    '-m', `${shape.memoryMb}M`,
  ]
  if (ram) {
    argv.push('-object', `memory-backend-file,id=mem,size=${shape.memoryMb}M,mem-path=${optionValue(ram.path)},share=${ram.share ? 'on' : 'off'}`)
  }
  if (manifest.boot.kind === 'kernel') {
    if (manifest.boot.bios === 'qboot') argv.push('-bios', 'qboot.rom')
    argv.push('-kernel', path.resolve(manifest.dir, manifest.boot.kernel))
    if (manifest.boot.initrd) argv.push('-initrd', path.resolve(manifest.dir, manifest.boot.initrd))
    argv.push('-append', manifest.boot.append)
  }
  // werror=enospc: a full host disk pauses the VM (the driver reports it and resumes it) instead of failing guest writes.
  argv.push('-drive', `file=${optionValue(paths.disk)},if=virtio,format=qcow2,cache=writeback,discard=unmap,werror=enospc`)
  const hostfwd = forwards.map((f) => `hostfwd=tcp:127.0.0.1:${f.hostPort}-:${f.guestPort}`)
  // restrict=on: the guest reaches nothing outside; forwards from the host still work.
  argv.push('-netdev', ['user', 'id=net0', 'restrict=on', ...hostfwd].join(','))
  argv.push('-device', 'virtio-net-pci,netdev=net0')
  if (paths.seed) {
    argv.push('-fw_cfg', `name=opt/stack-emulator/meta-data,file=${optionValue(paths.seed.metaData)}`)
    argv.push('-fw_cfg', `name=opt/stack-emulator/user-data,file=${optionValue(paths.seed.userData)}`)
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
