/**
 * Failures of this machine rather than of a snapshot or an image: a full disk, a read-only or
 * unwritable folder, a file this user may not open, a file locked by another QEMU. Each is named
 * by what failed (the file in QEMU's or the OS's line, not the folder at hand), with QEMU's own
 * line kept under the message, and never costs a snapshot its place in the store.
 */
import path from 'node:path'
import { StackEmulatorError, type ErrorCode } from './errors.js'

const FULL = /No space left on device|ENOSPC|EDQUOT|Disk quota exceeded/
const READ_ONLY = /Read-only file system|EROFS/
const DENIED = /Permission denied|EACCES|EPERM|Operation not permitted/i
const MIGRATION_LOAD = /load of migration failed|error while loading state/
const LOCKED = /Failed to get "(?:write|consistent read)" lock/
const LOCAL_CODES: ErrorCode[] = ['DISK_FULL', 'READ_ONLY', 'ACCESS_DENIED']
const ELSEWHERE = 'STACK_EMULATOR_HOME (state) or STACK_EMULATOR_CACHE_DIR (images, snapshots)'

/** The local failure behind `error` (an errno error or QEMU's stderr), or undefined. `folder` is where it happened. */
export function localFailure(error: unknown, folder: string): StackEmulatorError | undefined {
  if (error instanceof StackEmulatorError && LOCAL_CODES.includes(error.code)) return error
  const lines = errorText(error)
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)
  const line = (pattern: RegExp) => lines.find((l) => pattern.test(l))
  // QEMU's tail (a StackEmulatorError's details) is kept whole: the lines above the error say what QEMU was doing.
  const details = (matched: string) => (error instanceof StackEmulatorError && error.details?.includes(matched) ? error.details : matched)
  const full = line(FULL)
  if (full) return diskFull(folder, details(full), error)
  const readOnly = line(READ_ONLY)
  if (readOnly) {
    const file = failedFile(error, readOnly) ?? folder
    return new StackEmulatorError(`${file} is on a read-only file system`, {
      code: 'READ_ONLY',
      fix: `Remount it writable, or point ${ELSEWHERE} at a writable folder.`,
      details: details(readOnly),
      cause: error,
    })
  }
  // QEMU words a device state it cannot load as "load of migration failed: Operation not permitted":
  // a bad snapshot, not a file this user may not open.
  const denied = lines.find((l) => DENIED.test(l) && !MIGRATION_LOAD.test(l))
  if (denied) return accessDenied(error, failedFile(error, denied), folder, details(denied))
  const locked = line(LOCKED)
  if (locked) {
    return new StackEmulatorError('Another QEMU process holds a lock on a disk file of this instance', {
      code: 'SNAPSHOT',
      fix: 'Stop the other VM (stack-emulator ps shows what runs).',
      details: details(locked),
      cause: error,
    })
  }
  return undefined
}

/** No space left in `folder`: `details` is the line that says so. */
export function diskFull(folder: string, details: string, cause?: unknown): StackEmulatorError {
  return new StackEmulatorError(`No space left in ${folder}`, {
    code: 'DISK_FULL',
    fix: `Free some space there (df -h ${folder}), or point ${ELSEWHERE} at a roomier disk.`,
    details,
    cause,
  })
}

function accessDenied(error: unknown, file: string | undefined, folder: string, details: string): StackEmulatorError {
  if (file === '/dev/kvm') {
    return new StackEmulatorError('This user may not use /dev/kvm', {
      code: 'ACCESS_DENIED',
      fix: 'Add the user to the kvm group (sudo usermod -aG kvm $USER, then log in again), or set STACK_EMULATOR_ACCEL=tcg.',
      details,
      cause: error,
    })
  }
  if (file && isInside(file, folder)) {
    return new StackEmulatorError(`${file} is not writable for this user (permission denied)`, {
      code: 'READ_ONLY',
      fix: `Make ${folder} and what is in it this user's (ls -la ${folder}), or point ${ELSEWHERE} at a folder of your own.`,
      details,
      cause: error,
    })
  }
  if (file) {
    return new StackEmulatorError(`Permission denied on ${file}`, {
      code: 'ACCESS_DENIED',
      fix: `Give this user access to it (ls -ld ${file}); if it lies in another user's state or cache, point ${ELSEWHERE} at folders of your own.`,
      details,
      cause: error,
    })
  }
  return new StackEmulatorError('Permission denied (the line below says on what)', {
    code: 'ACCESS_DENIED',
    fix: `Give this user access to what it names; this instance's folder is ${folder}.`,
    details,
    cause: error,
  })
}

/**
 * The file a failure names: an errno error's path, else the line's quoted absolute path
 * (`Could not open '/x/disk.qcow2'`), else its last absolute path; KVM's own lines name none.
 */
function failedFile(error: unknown, line: string): string | undefined {
  const errnoPath = (error as NodeJS.ErrnoException | undefined)?.path
  if (typeof errnoPath === 'string') return path.resolve(errnoPath)
  const text = line.replace(/^[^\s:]*qemu[^\s:]*: /, '') // QEMU starts its lines with its own name, a path at times
  const quoted = /'(\/[^']+)'/.exec(text)?.[1]
  if (quoted) return quoted
  const bare = [...text.matchAll(/(?:^|[\s=,])(\/[^\s,:'"]+)/g)].at(-1)?.[1]
  return bare ?? (/\bkvm\b/i.test(text) ? '/dev/kvm' : undefined)
}

const isInside = (file: string, folder: string) => {
  const relative = path.relative(path.resolve(folder), path.resolve(file))
  return relative === '' || (!relative.startsWith('..') && !path.isAbsolute(relative))
}

function errorText(error: unknown): string {
  if (!(error instanceof Error)) return String(error)
  const parts = [error.message, (error as NodeJS.ErrnoException).code ?? '']
  if (error instanceof StackEmulatorError && error.details) parts.push(error.details)
  return parts.join('\n')
}

/** Runs a step that writes to `folder`, naming a full disk or a read-only folder as such. */
export async function local<T>(folder: string, step: () => Promise<T>): Promise<T> {
  try {
    return await step()
  } catch (error) {
    throw localFailure(error, folder) ?? error
  }
}
