/**
 * Local failures are named by what failed, from QEMU's line or the errno error's path, and
 * QEMU's own line is kept under the message (issue 24).
 */
import { describe, expect, it } from 'vitest'
import { StackEmulatorError } from '../../src/errors.js'
import { localFailure } from '../../src/local-failure.js'

const folder = '/home/ada/.local/state/stack-emulator/default'
/** A QEMU launch failure as QemuProcess reports it: its stderr's tail in the details. */
const qemuFailed = (...stderr: string[]) =>
  new StackEmulatorError('QEMU exited with code 1 before it was ready', {
    code: 'BOOT_FAILED',
    fix: 'See its error below.',
    details: stderr.join('\n'),
  })
const errno = (code: string, syscall: string, file: string) =>
  Object.assign(new Error(`${code}: ${code === 'EROFS' ? 'read-only file system' : 'permission denied'}, ${syscall} '${file}'`), { code, syscall, path: file })

describe('localFailure', () => {
  it('a file QEMU may not open outside the folder: named, not "the folder is read-only", with QEMU\'s line', () => {
    const line =
      "qemu-system-x86_64: -drive file=/srv/cache/images/fixture/disk.qcow2,if=none: Could not open '/srv/cache/images/fixture/disk.qcow2': Permission denied"
    const failure = localFailure(qemuFailed("qemu-system-x86_64: warning: host doesn't support requested feature", line), folder)!
    expect(failure).toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringMatching(/^Permission denied on \/srv\/cache\/images\/fixture\/disk\.qcow2\. Give this user access to it/),
    })
    expect(failure.details).toContain(line)
    expect(failure.message).toContain(line) // the details print under the message
    expect(failure.message).not.toContain('read-only')
  })

  it('/dev/kvm: says so, with the group and the way around it', () => {
    const failure = localFailure(
      qemuFailed(
        '/usr/bin/qemu-system-x86_64: Could not access KVM kernel module: Permission denied',
        'qemu-system-x86_64: failed to initialize kvm: Permission denied',
      ),
      folder,
    )!
    expect(failure).toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringMatching(/^This user may not use \/dev\/kvm\. .*usermod -aG kvm.*STACK_EMULATOR_ACCEL=tcg/),
    })
    expect(failure.details).toContain('Could not access KVM kernel module: Permission denied')
  })

  it("a file inside the folder that is not writable: READ_ONLY naming the file, with QEMU's line", () => {
    const line = `qemu-system-x86_64: -chardev socket,id=qmp,path=${folder}/qmp.sock,server=on,wait=off: Failed to bind socket to ${folder}/qmp.sock: Permission denied`
    const failure = localFailure(qemuFailed(line), folder)!
    expect(failure).toMatchObject({ code: 'READ_ONLY', message: expect.stringMatching(new RegExp(`^${folder}/qmp\\.sock is not writable for this user`)) })
    expect(failure.details).toBe(line)
  })

  it('errno errors: the path they carry, EROFS as a read-only file system', () => {
    expect(localFailure(errno('EACCES', 'mkdir', '/home/ada/.local/state'), folder)).toMatchObject({
      code: 'ACCESS_DENIED',
      message: expect.stringMatching(/^Permission denied on \/home\/ada\/\.local\/state\. .*STACK_EMULATOR_HOME/),
      details: "EACCES: permission denied, mkdir '/home/ada/.local/state'",
    })
    expect(localFailure(errno('EROFS', 'open', `${folder}/overlay.qcow2`), folder)).toMatchObject({
      code: 'READ_ONLY',
      message: expect.stringMatching(new RegExp(`^${folder}/overlay\\.qcow2 is on a read-only file system`)),
    })
  })

  it("a full disk keeps its message and QEMU's line; what is not local is left alone", () => {
    const full = localFailure(qemuFailed("qemu-system-x86_64: Could not write '/x/ram': No space left on device"), folder)!
    expect(full).toMatchObject({
      code: 'DISK_FULL',
      message: expect.stringMatching(new RegExp(`^No space left in ${folder}\\.`)),
      details: expect.stringContaining('No space left on device'),
    })
    expect(localFailure(qemuFailed('qemu-system-x86_64: unsupported machine type'), folder)).toBeUndefined()
    expect(localFailure(full, '/elsewhere')).toBe(full)
  })

  it('a device state QEMU cannot load ("Operation not permitted") is a bad snapshot, not a local failure', () => {
    // As QEMU 7.2 said of a ready snapshot whose RAM file was wiped.
    const failed = qemuFailed(
      "qemu-system-x86_64: error while loading state for instance 0x0 of device 'kvm-tpr-opt'",
      'qemu-system-x86_64: load of migration failed: Operation not permitted',
    )
    expect(localFailure(failed, folder)).toBeUndefined()
  })
})
