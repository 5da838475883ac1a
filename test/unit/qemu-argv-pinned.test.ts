/**
 * The fixture image's full QEMU argument arrays and snapshot fingerprint, pinned literally: the
 * fixture follows the real image's boot contract (q35, SeaBIOS disk boot, runtime volume, 9p
 * share on its root port, guest agent), and a changed fingerprint would invalidate every
 * captured snapshot, so any change here must be deliberate.
 */
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildArgv, machineShape, type LaunchPaths } from '../../src/drivers/qemu/argv.js'
import { expectedFingerprint } from '../../src/drivers/qemu/snapshot.js'
import type { ImageManifest } from '../../src/image/manifest.js'

const template = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../fixtures/image/manifest.template.json'), 'utf8')) as object
const fixtureManifest = { ...template, fingerprint: 'f'.repeat(64), file: '/img/manifest.json', dir: '/img' } as ImageManifest
const seed = { metaData: '/p/cloud-init/meta-data', userData: '/p/cloud-init/user-data' }
const forwards = [
  { hostPort: 0, guestPort: 8101 },
  { hostPort: 26701, guestPort: 8102 },
]
const paths = (disk: string): LaunchPaths => ({
  disk,
  qmpSocket: '/i/qmp.sock',
  consoleLog: '/i/console.log',
  seed,
  runtimeVolume: '/i/runtime.iso',
  hostShare: '/i/share',
  guestAgentSocket: '/i/qga.sock',
})
const devices = [
  '-drive',
  'file=/i/runtime.iso,if=virtio,format=raw,readonly=on',
  '-netdev',
  'user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:0-:8101,hostfwd=tcp:127.0.0.1:26701-:8102',
  '-device',
  'virtio-net-pci,netdev=net0',
  '-fw_cfg',
  'name=opt/stack-emulator/meta-data,file=/p/cloud-init/meta-data',
  '-fw_cfg',
  'name=opt/stack-emulator/user-data,file=/p/cloud-init/user-data',
  '-fsdev',
  'local,id=hostfs,path=/i/share,security_model=none',
  '-device',
  'pcie-root-port,id=hostfs-port,bus=pcie.0,chassis=1',
]
const agentAndMonitors = [
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

describe('the fixture manifest', () => {
  it('restores without the 9p device (it is hot-plugged after the restore)', () => {
    const argv = buildArgv({
      manifest: fixtureManifest,
      shape: machineShape(fixtureManifest, 'tcg', 512),
      forwards,
      ram: { path: '/s/ram', share: false },
      incoming: true,
      paths: paths('/i/run.qcow2'),
    })
    expect(argv).toEqual([
      '-nodefaults',
      '-no-user-config',
      '-display',
      'none',
      '-no-reboot',
      '-machine',
      'q35,accel=tcg,memory-backend=mem',
      '-cpu',
      'max',
      '-smp',
      '2',
      '-m',
      '512M',
      '-object',
      'memory-backend-file,id=mem,size=512M,mem-path=/s/ram,share=off',
      '-drive',
      'file=/i/run.qcow2,if=virtio,format=qcow2,cache=writeback,discard=unmap,werror=enospc',
      ...devices,
      ...agentAndMonitors,
      '-incoming',
      'defer',
    ])
  })

  it('cold boots from its disk with the 9p device plugged from the start', () => {
    const argv = buildArgv({
      manifest: fixtureManifest,
      shape: machineShape(fixtureManifest, 'kvm', 768),
      forwards,
      paths: paths('/i/disk.qcow2'),
      shareAttached: true,
    })
    expect(argv).toEqual([
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
      '2',
      '-m',
      '768M',
      '-drive',
      'file=/i/disk.qcow2,if=virtio,format=qcow2,cache=writeback,discard=unmap,werror=enospc',
      ...devices,
      '-device',
      'virtio-9p-pci,id=hostfs-dev,fsdev=hostfs,mount_tag=hostfs,bus=hostfs-port',
      ...agentAndMonitors,
    ])
  })

  it('keeps its snapshot fingerprint', () => {
    const fingerprint = expectedFingerprint(fixtureManifest, machineShape(fixtureManifest, 'tcg', 512), '7.2.22', 'abcdef0123456789', '0123456789abcdef')
    expect(fingerprint).toEqual({
      image: 'f'.repeat(64),
      qemuVersion: '7.2.22',
      accel: 'tcg',
      cpu: 'max',
      machine: 'q35',
      memoryMb: 512,
      cpus: 2,
      devices:
        'virtio-blk virtio-net-pci fw_cfg-seed disk guest-ports=8101,8102,9090,9001,8114 arch=amd64 firmware=default runtime-volume=STACKCFG ' +
        'fsdev=hostfs pcie-root-port=hostfs-port mount=/usr/local/bin/mount-host-fs --post-resume virtserialport=org.qemu.guest_agent.0',
      seed: 'abcdef0123456789',
      runtimeVolume: '0123456789abcdef',
    })
  })
})
