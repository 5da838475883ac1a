/**
 * One lock per image folder (`<folder>.lock`, proper-lockfile), shared by the fixture build, the
 * pull, `image rm` and `image prune`: concurrent processes build or download an image once.
 */
import fs from 'node:fs/promises'
import path from 'node:path'

export interface ImageLockOptions {
  /** Said once when another process holds the lock. */
  waiting: string
  onLog: (line: string) => void
  /** Longest wait for the other holder. */
  maxWaitMs: number
}

/** Runs `fn` holding the lock of image folder `dir`. With `maxWaitMs` 0 a held lock throws (code ELOCKED). */
export async function withImageLock<T>(dir: string, options: ImageLockOptions, fn: () => Promise<T>): Promise<T> {
  await fs.mkdir(path.dirname(dir), { recursive: true })
  const { default: lockfile } = await import('proper-lockfile') // only when an image is built, pulled or removed
  const lockOptions = {
    lockfilePath: `${dir}.lock`,
    realpath: false,
    // A dead holder is noticed after `stale`; its mtime is refreshed every `update`.
    stale: 30_000,
    update: 10_000,
    onCompromised: () => options.onLog(`warning: the lock of ${path.basename(dir)} was compromised`),
  }
  const release = await lockfile.lock(path.dirname(dir), lockOptions).catch(async (error: NodeJS.ErrnoException) => {
    if (error.code !== 'ELOCKED' || options.maxWaitMs <= 0) throw error
    options.onLog(options.waiting)
    return lockfile.lock(path.dirname(dir), { ...lockOptions, retries: { retries: Math.ceil(options.maxWaitMs / 500), minTimeout: 500, maxTimeout: 500 } })
  })
  try {
    return await fn()
  } finally {
    await release().catch(() => {})
  }
}

/** True when the lock of `dir` is taken now (by this process or another). */
export async function isImageLocked(dir: string): Promise<boolean> {
  const { default: lockfile } = await import('proper-lockfile')
  return lockfile.check(path.dirname(dir), { lockfilePath: `${dir}.lock`, realpath: false, stale: 30_000 }).catch(() => false)
}
