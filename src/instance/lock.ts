/**
 * Two locks per instance, both released by the kernel when their holder dies, so a lock is
 * never "taken over" and no interleaving of deaths can hand it to two processes:
 *
 * - the instance lock, held by a client while it attaches to or spawns the supervisor (and by
 *   nothing else), serialises boot-or-reuse;
 * - the ownership lock, held by the one supervisor of the instance for its whole life: a second
 *   supervisor cannot start, and "is anyone serving this instance?" has an exact answer even
 *   when its files were deleted or garbled.
 *
 * On Linux each lock is a name in the abstract unix-socket namespace: bind() of a name is
 * atomic, fails with EADDRINUSE while another socket holds it, and the name vanishes when the
 * last descriptor closes (exit, crash, SIGKILL). Node opens sockets close-on-exec, so children
 * (the supervisor, the VM) never inherit a lock. That namespace has no permissions, so the names
 * derive from a secret in the instance folder (lock-key.ts) that no other user can read. Elsewhere,
 * a proper-lockfile lock stands in for the instance lock and the state file's pid for ownership
 * (weaker: a dead holder is seen after the stale timeout).
 */
import net from 'node:net'
import path from 'node:path'
import { sha256 } from '../digest.js'
import { StackEmulatorError } from '../errors.js'
import { pollUntil } from '../poll.js'
import { ensureLockKey, readLockKey, writeLockKey } from './lock-key.js'
import type { InstancePaths } from './paths.js'
import { isProcessAlive, ownProcessWithArgument } from './process-alive.js'

const ABSTRACT = process.platform === 'linux'
const LOCK_WAIT_MS = 120_000
/** How long a live supervisor gets to write back the key of its removed folder (it checks every 250 ms, its folder every 1 s). */
const KEY_BACK_MS = 10_000
const KEEP_KEY_MS = 250

export type LockRole = 'instance' | 'owner'

/** What the locks need of an instance's paths (tests pass only `dir`). */
type LockPaths = Pick<InstancePaths, 'dir'> & Partial<Pick<InstancePaths, 'supervisorConfig'>>

/** The abstract name of an instance's lock: per user, per folder and per the folder's secret key. */
function lockName(instanceDir: string, key: string, role: LockRole): string {
  const uid = process.getuid?.() ?? 0
  return `\0stack-emulator/${uid}/${sha256(`${key}\0${path.resolve(instanceDir)}`).slice(0, 32)}/${role}`
}

/**
 * The folder's key; with `create`, made when it has none. A folder removed under its running
 * supervisor loses its key: that supervisor writes its own back, and everyone must wait for it,
 * or a new key would let a second supervisor start beside it.
 */
async function lockKey(paths: LockPaths, create: boolean): Promise<string | undefined> {
  // Not a poll: each round re-reads after one pollUntil wait (a supervisor may have died meanwhile).
  for (;;) {
    const key = await readLockKey(paths.dir)
    if (key) return key
    const pid = paths.supervisorConfig && ownProcessWithArgument(paths.supervisorConfig)
    if (!pid) return create ? ensureLockKey(paths.dir) : undefined
    await pollUntil(async () => !isProcessAlive(pid) || (await readLockKey(paths.dir)) !== undefined, {
      timeoutMs: KEY_BACK_MS,
      intervalMs: 50,
      timeoutError: () =>
        new StackEmulatorError(`The supervisor of instance folder ${paths.dir} (pid ${pid}) did not write its lock key back`, {
          code: 'SUPERVISOR',
          fix: `Stop it (kill ${pid}), then try again.`,
        }),
    })
  }
}

/** Writes the key back whenever it is missing (a removed folder), for as long as its owner lives. */
function keepKey(instanceDir: string, key: string): () => void {
  const timer = setInterval(() => {
    readLockKey(instanceDir)
      .then((found) => (found ? undefined : writeLockKey(instanceDir, key)))
      .catch(() => {}) // the folder itself is still missing (the supervisor re-creates it), or unsafe: said to whoever reads it
  }, KEEP_KEY_MS)
  timer.unref()
  return () => clearInterval(timer)
}

/** A held lock; release() is safe to call twice. */
export interface HeldLock {
  release(): Promise<void>
}

/** Binds the name, or returns undefined when someone holds it. */
async function tryBind(name: string): Promise<HeldLock | undefined> {
  const server = net.createServer()
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen({ path: name, backlog: 1 }, resolve)
    })
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EADDRINUSE') return undefined
    throw error
  }
  server.unref() // a held lock must not keep the process alive
  server.on('connection', (socket) => socket.destroy())
  let released: Promise<void> | undefined
  return { release: () => (released ??= new Promise<void>((resolve) => server.close(() => resolve()))) }
}

/** Holds the instance lock around `fn`. */
export async function withInstanceLock<T>(paths: LockPaths, fn: () => Promise<T>): Promise<T> {
  const held = ABSTRACT ? await waitForLock(lockName(paths.dir, (await lockKey(paths, true))!, 'instance')) : await fileLock(paths)
  try {
    return await fn()
  } finally {
    await held.release()
  }
}

async function waitForLock(name: string): Promise<HeldLock> {
  // Short waits first: the usual holder is done within tens of milliseconds.
  return pollUntil(() => tryBind(name), { timeoutMs: LOCK_WAIT_MS, intervalMs: (tries) => Math.min(5 * tries, 50), timeoutError: lockTimeout })
}

/**
 * The supervisor's claim on its instance; undefined when another supervisor holds it. Elsewhere
 * than Linux this always succeeds (the caller's instance lock is the only guard).
 */
export async function claimOwnership(instanceDir: string): Promise<HeldLock | undefined> {
  if (!ABSTRACT) return { release: async () => {} }
  // Spawned under its client's instance lock: the key is there (and no one waits on this process yet).
  const key = await ensureLockKey(instanceDir)
  const held = await tryBind(lockName(instanceDir, key, 'owner'))
  if (!held) return undefined
  const stopKeeping = keepKey(instanceDir, key)
  return {
    release: () => {
      stopKeeping()
      return held.release()
    },
  }
}

/**
 * True while a supervisor owns the instance. The probe briefly binds the name when nobody does;
 * call it under the instance lock, where no supervisor can be starting on a client's behalf.
 */
export async function isOwned(paths: LockPaths, statePid: number | undefined): Promise<boolean> {
  if (!ABSTRACT) return statePid !== undefined && isProcessAlive(statePid)
  const key = await lockKey(paths, false)
  if (!key) return false // no key, no supervisor waiting to write one back: nobody ever owned it
  const probe = await tryBind(lockName(paths.dir, key, 'owner'))
  if (!probe) return true
  await probe.release()
  return false
}

async function fileLock(paths: LockPaths): Promise<HeldLock> {
  try {
    const { default: lockfile } = await import('proper-lockfile') // Linux uses kernel locks instead
    const release = await lockfile.lock(paths.dir, {
      lockfilePath: path.join(paths.dir, 'instance.lock'),
      realpath: false,
      stale: 10_000,
      update: 2_000,
      retries: { retries: LOCK_WAIT_MS / 100, minTimeout: 20, maxTimeout: 100 },
      onCompromised: () => {}, // the lease fails later, through the supervisor; never crash from a timer
    })
    let released: Promise<void> | undefined
    return { release: () => (released ??= release().catch(() => {})) }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ELOCKED') throw lockTimeout()
    throw error
  }
}

function lockTimeout(): StackEmulatorError {
  return new StackEmulatorError(`Another stack-emulator process held the instance lock for ${LOCK_WAIT_MS / 1000} s`, {
    code: 'TIMEOUT',
    fix: 'Look for a stuck process (stack-emulator status), or stop the instance (stack-emulator stop).',
  })
}
