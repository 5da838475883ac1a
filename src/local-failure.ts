/**
 * Failures of this machine rather than of a snapshot or an image: a full disk, a read-only or
 * unwritable folder, a file locked by another QEMU. They are reported as what they are, with
 * the fix, and never cost a snapshot its place in the store.
 */
import { StackEmulatorError } from './errors.js'

const FULL = /No space left on device|ENOSPC|EDQUOT|Disk quota exceeded/
const READ_ONLY = /Read-only file system|EROFS|Permission denied|EACCES|EPERM/
const LOCKED = /Failed to get "(?:write|consistent read)" lock/

/** The local failure behind `error` (an errno error or QEMU's stderr), or undefined. `folder` is where it happened. */
export function localFailure(error: unknown, folder: string): StackEmulatorError | undefined {
  if (error instanceof StackEmulatorError && ['DISK_FULL', 'READ_ONLY'].includes(error.code)) return error
  const text = describe(error)
  if (FULL.test(text)) {
    return new StackEmulatorError(`No space left in ${folder}`, {
      code: 'DISK_FULL', fix: `Free some space there (df -h ${folder}), or point STACK_EMULATOR_HOME / STACK_EMULATOR_CACHE_DIR at a roomier disk.`, cause: error,
    })
  }
  if (READ_ONLY.test(text)) {
    return new StackEmulatorError(`${folder} is read-only or not writable for this user`, {
      code: 'READ_ONLY', fix: 'Make it writable, or point STACK_EMULATOR_HOME (state) or STACK_EMULATOR_CACHE_DIR (images, snapshots) at a writable folder.', cause: error,
    })
  }
  if (LOCKED.test(text)) {
    return new StackEmulatorError('Another QEMU process holds a lock on a disk file of this instance', {
      code: 'SNAPSHOT', fix: 'Stop the other VM (stack-emulator status shows what runs).', cause: error,
    })
  }
  return undefined
}

function describe(error: unknown): string {
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
