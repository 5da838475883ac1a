/**
 * Finds the UEFI (edk2) firmware a `firmware: uefi` image boots with: a read-only code file and
 * a variable store template, which the driver copies per instance (the guest writes to it).
 * Only pflash-sized pairs are listed: QEMU_EFI.fd alone (qemu-efi-aarch64's unpadded build)
 * cannot be a pflash drive.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { StackEmulatorError } from '../../errors.js'
import type { Arch } from '../../image/names.js'

export interface UefiFirmware {
  /** Read-only pflash unit 0. */
  code: string
  /** The variable store template; each instance boots with its own copy (pflash unit 1). */
  varsTemplate: string
}

interface Candidate {
  dir: string
  code: string
  vars: string
}

/** QEMU's own share folder (Homebrew, source builds), beside its binary, then the usual prefixes. */
function shareDirs(qemuBinary: string | undefined): string[] {
  const dirs = ['/opt/homebrew/share/qemu', '/usr/local/share/qemu', '/usr/share/qemu']
  if (qemuBinary?.includes('/')) dirs.unshift(path.resolve(path.dirname(qemuBinary), '../share/qemu'))
  return [...new Set(dirs)]
}

export function firmwareCandidates(arch: Arch, qemuBinary?: string): Candidate[] {
  if (arch === 'arm64') {
    return [
      { dir: '/usr/share/AAVMF', code: 'AAVMF_CODE.fd', vars: 'AAVMF_VARS.fd' }, // Debian, Ubuntu: qemu-efi-aarch64
      { dir: '/usr/share/edk2/aarch64', code: 'QEMU_EFI-pflash.raw', vars: 'vars-template-pflash.raw' }, // Fedora: edk2-aarch64
      ...shareDirs(qemuBinary).map((dir) => ({ dir, code: 'edk2-aarch64-code.fd', vars: 'edk2-arm-vars.fd' })), // QEMU's own (Homebrew)
    ]
  }
  return [
    { dir: '/usr/share/OVMF', code: 'OVMF_CODE_4M.fd', vars: 'OVMF_VARS_4M.fd' }, // Debian 12, Ubuntu: ovmf
    { dir: '/usr/share/OVMF', code: 'OVMF_CODE.fd', vars: 'OVMF_VARS.fd' },
    { dir: '/usr/share/edk2/ovmf', code: 'OVMF_CODE.fd', vars: 'OVMF_VARS.fd' }, // Fedora: edk2-ovmf
    ...shareDirs(qemuBinary).map((dir) => ({ dir, code: 'edk2-x86_64-code.fd', vars: 'edk2-i386-vars.fd' })),
  ]
}

/** A folder's file names, or none when it cannot be read. */
export type ListDir = (dir: string) => Promise<string[]>
const listDir: ListDir = (dir) => fs.readdir(dir).catch(() => [])

/** The first known location holding both files; otherwise an error that names the package to install. */
export async function findUefiFirmware(arch: Arch, options: { qemuBinary?: string; listDir?: ListDir } = {}): Promise<UefiFirmware> {
  const list = options.listDir ?? listDir
  const candidates = firmwareCandidates(arch, options.qemuBinary)
  const listings = new Map<string, Promise<string[]>>()
  for (const candidate of candidates) {
    if (!listings.has(candidate.dir)) listings.set(candidate.dir, list(candidate.dir))
    const names = await listings.get(candidate.dir)!
    if (names.includes(candidate.code) && names.includes(candidate.vars)) {
      return { code: path.join(candidate.dir, candidate.code), varsTemplate: path.join(candidate.dir, candidate.vars) }
    }
  }
  const looked = [...new Set(candidates.map((c) => path.join(c.dir, c.code)))].join(', ')
  throw new StackEmulatorError(`No UEFI firmware for ${arch} guests was found (looked for ${looked})`, {
    code: 'QEMU_NOT_FOUND',
    fix:
      arch === 'arm64'
        ? 'On Debian or Ubuntu: sudo apt-get install qemu-efi-aarch64 (AAVMF_CODE.fd, AAVMF_VARS.fd); on macOS: brew install qemu (edk2-aarch64-code.fd in its share folder).'
        : 'On Debian or Ubuntu: sudo apt-get install ovmf; on macOS: brew install qemu (edk2-x86_64-code.fd in its share folder).',
  })
}
