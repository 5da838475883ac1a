/**
 * The instance lock (proper-lockfile), plus the holder's pid beside it so a lock left by a dead
 * process is taken over at once instead of after the stale timeout.
 */
import fs from 'node:fs/promises'
import lockfile from 'proper-lockfile'
import type { InstancePaths } from './paths.js'
import { isProcessAlive } from './process-alive.js'

export async function withInstanceLock<T>(
  paths: InstancePaths,
  fn: () => Promise<T>,
  log: (line: string) => void = () => {},
): Promise<T> {
  const release = await acquire(paths, log)
  try {
    return await fn()
  } finally {
    await fs.rm(paths.lockOwner, { force: true })
    await release().catch(() => {})
  }
}

async function acquire(paths: InstancePaths, log: (line: string) => void): Promise<() => Promise<void>> {
  const deadline = Date.now() + 120_000
  for (let attempt = 0; ; attempt++) {
    try {
      const release = await lockfile.lock(paths.dir, {
        lockfilePath: paths.lock,
        realpath: false,
        stale: 10_000,
        update: 2_000,
        // Failing the lease beats crashing the process from a timer.
        onCompromised: (error) => log(`warning: the instance lock was compromised (${error.message})`),
      })
      await fs.writeFile(paths.lockOwner, String(process.pid))
      return release
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ELOCKED') throw error
      const owner = Number(await fs.readFile(paths.lockOwner, 'utf8').catch(() => ''))
      if (owner > 0 && !isProcessAlive(owner)) {
        log(`Found a stale instance lock held by dead process ${owner}; removing it.`)
        await fs.rm(paths.lock, { recursive: true, force: true })
        await fs.rm(paths.lockOwner, { force: true })
        continue
      }
      if (Date.now() > deadline) throw error
      await new Promise((r) => setTimeout(r, Math.min(10 + attempt * 5, 100)))
    }
  }
}
