/** Finds the QEMU binary and reads its version, with an error that says how to install it. */
import { execa } from 'execa'
import { StackEmulatorError } from '../../errors.js'

export interface QemuBinary {
  path: string
  version: string
}

const cache = new Map<string, Promise<QemuBinary>>()

export function findQemu(binary: string): Promise<QemuBinary> {
  let found = cache.get(binary)
  if (!found) {
    found = probeVersion(binary)
    found.catch(() => cache.delete(binary))
    cache.set(binary, found)
  }
  return found
}

async function probeVersion(binary: string): Promise<QemuBinary> {
  try {
    const { stdout } = await execa(binary, ['--version'], { timeout: 10_000 })
    const version = /version (\S+)/.exec(stdout)?.[1] ?? stdout.split('\n')[0] ?? 'unknown'
    return { path: binary, version }
  } catch (cause) {
    throw new StackEmulatorError(`Did not find QEMU binary "${binary}"`, {
      code: 'QEMU_NOT_FOUND',
      fix: 'Install QEMU (Debian/Ubuntu: apt-get install qemu-system-x86 qemu-utils; macOS: brew install qemu) or point STACK_EMULATOR_QEMU at the binary.',
      cause,
    })
  }
}

async function qemuImg(args: string[]): Promise<string> {
  try {
    const { stdout } = await execa('qemu-img', args, { timeout: 60_000 })
    return stdout
  } catch (cause) {
    const missing = (cause as { code?: string }).code === 'ENOENT'
    throw new StackEmulatorError(missing ? 'Did not find qemu-img' : `qemu-img ${args[0]} failed`, {
      code: missing ? 'QEMU_NOT_FOUND' : 'BOOT_FAILED',
      fix: missing ? 'Install it (Debian/Ubuntu: apt-get install qemu-utils).' : '',
      details: missing ? undefined : (cause as { stderr?: string }).stderr,
      cause,
    })
  }
}

/** A copy-on-write overlay over a read-only base, so the base image is never written. */
export async function createOverlay(overlay: string, backing: string): Promise<void> {
  await qemuImg(['create', '-q', '-f', 'qcow2', '-b', backing, '-F', 'qcow2', overlay])
}
