/**
 * Finds the QEMU binary and its version, with an error that says how to install it. The version
 * is cached per binary (path, size, mtime) in the cache folder: running `qemu --version` costs
 * tens of milliseconds on every start otherwise.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { StackEmulatorError } from '../../errors.js'
import { which } from '../../which.js'

export interface QemuBinary {
  path: string
  version: string
}

const found = new Map<string, Promise<QemuBinary>>()

export function findQemu(binary: string, cacheRoot?: string): Promise<QemuBinary> {
  let qemu = found.get(binary)
  if (!qemu) {
    qemu = locate(binary, cacheRoot)
    qemu.catch(() => found.delete(binary))
    found.set(binary, qemu)
  }
  return qemu
}

/**
 * True when the binary is not one of the default names looked up on PATH: STACK_EMULATOR_QEMU
 * chose it (or the arm64 binary beside the one it chose). Its errors then name the variable, and
 * installing a package would not fix them.
 */
export function isChosenBinary(binary: string): boolean {
  return !/^qemu-system-(?:x86_64|aarch64)$/.test(binary)
}

async function locate(binary: string, cacheRoot: string | undefined): Promise<QemuBinary> {
  const where = await which(binary)
  if ('error' in where) throw notFound(binary, where.error)
  const stat = await fs.stat(where.path)
  const key = `${where.path} ${stat.size} ${stat.mtimeMs}`
  const cacheFile = cacheRoot ? path.join(cacheRoot, 'qemu-versions.json') : undefined
  const cached = cacheFile ? await readJson(cacheFile) : {}
  if (typeof cached[key] === 'string') return { path: where.path, version: cached[key] }
  const version = await probeVersion(where.path)
  if (cacheFile) {
    // Best effort: a read-only cache asks QEMU again next time.
    const tmp = `${cacheFile}.${process.pid}.tmp`
    await fs
      .mkdir(cacheRoot!, { recursive: true })
      .then(() => fs.writeFile(tmp, JSON.stringify({ ...cached, [key]: version })))
      .then(() => fs.rename(tmp, cacheFile))
      .catch(() => {})
  }
  return { path: where.path, version }
}

async function probeVersion(binary: string): Promise<string> {
  const { execa } = await import('execa') // off the start-up path once the version is cached
  const result = await execa(binary, ['--version'], { timeout: 10_000, reject: false })
  const version = /QEMU emulator version (\S+)/i.exec(String(result.stdout))?.[1] // not GNU false's "GPL version 3"
  if (!result.failed && version) return version
  // It is there, but is no QEMU that runs: said as such, with what it answered.
  const answer = result.timedOut
    ? 'did not answer within 10 s'
    : result.failed
      ? `${result.signal ? `was killed by ${result.signal}` : `exited with code ${result.exitCode}`}`
      : 'printed no QEMU version'
  const output = [result.stderr, result.stdout]
    .map((t) => String(t ?? '').trim())
    .filter(Boolean)
    .join('\n')
  const what = isChosenBinary(binary) ? `STACK_EMULATOR_QEMU=${binary}` : `QEMU binary ${binary}`
  throw new StackEmulatorError(`${what} is not a QEMU that runs: \`${binary} --version\` ${answer}${output ? '' : ' (no output)'}`, {
    code: 'QEMU_UNUSABLE',
    fix: isChosenBinary(binary)
      ? 'Point STACK_EMULATOR_QEMU at a QEMU system emulator (e.g. /usr/bin/qemu-system-x86_64), or unset it to use the one on PATH.'
      : `Reinstall QEMU (Debian/Ubuntu: apt-get install --reinstall ${/aarch64/.test(binary) ? 'qemu-system-arm' : 'qemu-system-x86'}).`,
    details: output ? output.split('\n').slice(0, 3).join('\n') : undefined,
    cause: result,
  })
}

function notFound(binary: string, cause: unknown): StackEmulatorError {
  if (isChosenBinary(binary)) {
    const beside = /aarch64/.test(binary) ? ' (arm64 guests: qemu-system-aarch64, looked for beside the binary it names)' : ''
    return new StackEmulatorError(`Did not find QEMU binary "${binary}", which STACK_EMULATOR_QEMU names${beside}`, {
      code: 'QEMU_NOT_FOUND',
      fix:
        cause === 'EACCES'
          ? `Make it executable (chmod +x ${binary}), or point STACK_EMULATOR_QEMU at another QEMU.`
          : 'Correct the path in STACK_EMULATOR_QEMU, or unset it to use the QEMU on PATH.',
      cause,
    })
  }
  return new StackEmulatorError(`Did not find QEMU binary "${binary}"`, {
    code: 'QEMU_NOT_FOUND',
    fix: /aarch64/.test(binary)
      ? 'Install QEMU for arm64 guests (Debian/Ubuntu: apt-get install qemu-system-arm qemu-efi-aarch64 qemu-utils; macOS: brew install qemu); with STACK_EMULATOR_QEMU set to a path, qemu-system-aarch64 is looked for beside it.'
      : 'Install QEMU (Debian/Ubuntu: apt-get install qemu-system-x86 qemu-utils; macOS: brew install qemu) or point STACK_EMULATOR_QEMU at the binary.',
    cause,
  })
}

async function readJson(file: string): Promise<Record<string, unknown>> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>
  } catch {
    return {}
  }
}

async function qemuImg(args: string[]): Promise<string> {
  const { execa } = await import('execa')
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
