/**
 * The fixture image's full QEMU argument array and snapshot fingerprint, pinned literally: both
 * must stay byte-for-byte what they were before the manifest learned arch, machine, firmware and
 * devices (a changed fingerprint would invalidate every captured snapshot).
 */
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { buildArgv, machineShape } from '../../src/drivers/qemu/argv.js'
import { expectedFingerprint } from '../../src/drivers/qemu/snapshot.js'
import type { ImageManifest } from '../../src/image/manifest.js'

const template = JSON.parse(fs.readFileSync(path.join(import.meta.dirname, '../../fixtures/image/manifest.template.json'), 'utf8')) as object
const fixtureManifest = { ...template, fingerprint: 'f'.repeat(64), file: '/img/manifest.json', dir: '/img' } as ImageManifest
const seed = { metaData: '/p/cloud-init/meta-data', userData: '/p/cloud-init/user-data' }
const forwards = [{ hostPort: 0, guestPort: 8101 }, { hostPort: 26701, guestPort: 8102 }]

describe('the fixture manifest', () => {
  it('gets the same argv as before (restore)', () => {
    const shape = machineShape(fixtureManifest, 'tcg', 512)
    const argv = buildArgv({
      manifest: fixtureManifest, shape, forwards, ram: { path: '/s/ram', share: false }, incoming: true,
      paths: { disk: '/i/run.qcow2', qmpSocket: '/i/qmp.sock', consoleLog: '/i/console.log', seed },
    })
    expect(argv).toEqual([
      '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
      '-machine', 'pc,accel=tcg,memory-backend=mem', '-cpu', 'qemu64,+rdrand', '-smp', '2', '-m', '512M',
      '-object', 'memory-backend-file,id=mem,size=512M,mem-path=/s/ram,share=off',
      '-bios', 'qboot.rom', '-kernel', '/img/vmlinux', '-initrd', '/img/initrd.img',
      '-append', 'console=ttyS0 root=/dev/vda rw quiet panic=-1 cryptomgr.notests mitigations=off',
      '-drive', 'file=/i/run.qcow2,if=virtio,format=qcow2,cache=writeback,discard=unmap,werror=enospc',
      '-netdev', 'user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:0-:8101,hostfwd=tcp:127.0.0.1:26701-:8102',
      '-device', 'virtio-net-pci,netdev=net0',
      '-fw_cfg', 'name=opt/stack-emulator/meta-data,file=/p/cloud-init/meta-data',
      '-fw_cfg', 'name=opt/stack-emulator/user-data,file=/p/cloud-init/user-data',
      '-chardev', 'file,id=console,path=/i/console.log', '-serial', 'chardev:console',
      '-chardev', 'socket,id=qmp,path=/i/qmp.sock,server=on,wait=off', '-mon', 'chardev=qmp,mode=control',
      '-incoming', 'defer',
    ])
  })

  it('gets the same argv as before (cold boot under KVM)', () => {
    const argv = buildArgv({
      manifest: fixtureManifest, shape: machineShape(fixtureManifest, 'kvm', 768), forwards,
      paths: { disk: '/i/disk.qcow2', qmpSocket: '/i/qmp.sock', consoleLog: '/i/console.log', seed },
    })
    expect(argv.slice(0, 13)).toEqual([
      '-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot',
      '-machine', 'pc,accel=kvm', '-cpu', 'host', '-smp', '2', '-m', '768M',
    ])
    expect(argv[13]).toBe('-bios')
    expect(argv).not.toContain('-incoming')
    expect(argv).not.toContain('-object')
  })

  it('keeps its snapshot fingerprint', () => {
    const fingerprint = expectedFingerprint(fixtureManifest, machineShape(fixtureManifest, 'tcg', 512), '7.2.22', 'abcdef0123456789')
    expect(fingerprint).toEqual({
      image: 'f'.repeat(64),
      qemuVersion: '7.2.22',
      accel: 'tcg',
      cpu: 'qemu64,+rdrand',
      machine: 'pc',
      memoryMb: 512,
      cpus: 2,
      devices: 'virtio-blk virtio-net-pci fw_cfg-seed vmlinux initrd.img console=ttyS0 root=/dev/vda rw quiet panic=-1 cryptomgr.notests mitigations=off qboot guest-ports=8101,8102',
      seed: 'abcdef0123456789',
    })
    expect(expectedFingerprint(fixtureManifest, machineShape(fixtureManifest, 'kvm', 512), '7.2.22', 'x')).toMatchObject({ accel: 'kvm', cpu: 'host', machine: 'pc' })
  })
})
