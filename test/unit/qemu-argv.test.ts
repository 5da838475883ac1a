import { describe, expect, it } from 'vitest'
import { buildArgv, machineShape } from '../../src/drivers/qemu/argv.js'
import { parseUsernet } from '../../src/drivers/qemu/usernet.js'
import type { ImageManifest } from '../../src/image/manifest.js'

const manifest: ImageManifest = {
  name: 'test', fingerprint: 'f'.repeat(64), file: '/img/manifest.json', dir: '/img', disk: 'disk.qcow2', memoryMb: 512, cpus: 2,
  boot: { kind: 'kernel', kernel: 'vmlinux', initrd: 'initrd.img', append: 'console=ttyS0', bios: 'qboot' },
  services: [{ name: 'backend', guestPort: 8102 }, { name: 'dashboard', guestPort: 8101 }],
}

describe('buildArgv', () => {
  const shape = machineShape(manifest, 'tcg', 512)
  const args = (ports: number[], paths: string, ram: { share: boolean }, incoming: boolean) =>
    buildArgv({
      manifest, shape, incoming,
      paths: { disk: `${paths}/overlay.qcow2`, qmpSocket: `${paths}/qmp.sock`, consoleLog: `${paths}/console.log` },
      forwards: [{ hostPort: ports[0]!, guestPort: 8102 }, { hostPort: ports[1]!, guestPort: 8101 }],
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
      argv.filter((a) => a !== '-incoming' && a !== 'defer').map((a) =>
        a.replace(/\/(staging|instance)\//g, '/X/').replace(/127\.0\.0\.1:\d+-/g, '127.0.0.1:P-').replace(/share=(on|off)/, 'share=S'))
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
    expect(parseUsernet(text)).toEqual([{ hostPort: 38211, guestPort: 8101 }, { hostPort: 40123, guestPort: 8102 }])
  })
})
