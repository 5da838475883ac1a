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
 * (the supervisor, the VM) never inherit a lock. Elsewhere, a proper-lockfile lock stands in for
 * the instance lock and the state file's pid for ownership (weaker: a dead holder is seen after
 * the stale timeout).
 */
import net from 'node:net'
import path from 'node:path'
import { sha256 } from '../digest.js'
import { StackEmulatorError } from '../errors.js'
import type { InstancePaths } from './paths.js'
import { isProcessAlive } from './process-alive.js'

const ABSTRACT = process.platform === 'linux'
const LOCK_WAIT_MS = 120_000

export type LockRole = 'instance' | 'owner'

/** The abstract name of an instance's lock: per user and per instance folder. */
function lockName(instanceDir: string, role: LockRole): string {
  const uid = process.getuid?.() ?? 0
  return `\0stack-emulator/${uid}/${sha256(path.resolve(instanceDir)).slice(0, 32)}/${role}`
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
export async function withInstanceLock<T>(paths: InstancePaths, fn: () => Promise<T>): Promise<T> {
  const held = ABSTRACT ? await waitForLock(lockName(paths.dir, 'instance')) : await fileLock(paths)
  try {
    return await fn()
  } finally {
    await held.release()
  }
}

async function waitForLock(name: string): Promise<HeldLock> {
  const deadline = Date.now() + LOCK_WAIT_MS
  for (let attempt = 0; ; attempt++) {
    const held = await tryBind(name)
    if (held) return held
    if (Date.now() > deadline) throw lockTimeout()
    // Short waits first: the usual holder is done within tens of milliseconds.
    await new Promise((r) => setTimeout(r, Math.min(5 + attempt * 5, 50)))
  }
}

/**
 * The supervisor's claim on its instance; undefined when another supervisor holds it. Elsewhere
 * than Linux this always succeeds (the caller's instance lock is the only guard).
 */
export async function claimOwnership(instanceDir: string): Promise<HeldLock | undefined> {
  if (!ABSTRACT) return { release: async () => {} }
  return tryBind(lockName(instanceDir, 'owner'))
}

/**
 * True while a supervisor owns the instance. The probe briefly binds the name when nobody does;
 * call it under the instance lock, where no supervisor can be starting on a client's behalf.
 */
export async function isOwned(paths: InstancePaths, statePid: number | undefined): Promise<boolean> {
  if (!ABSTRACT) return statePid !== undefined && isProcessAlive(statePid)
  const probe = await tryBind(lockName(paths.dir, 'owner'))
  if (!probe) return true
  await probe.release()
  return false
}

async function fileLock(paths: InstancePaths): Promise<HeldLock> {
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
