/**
 * The secret behind an instance's lock names (issue 22). The abstract socket namespace has no
 * permissions: names anyone can compute (uid + the folder's path) let another local user bind
 * them first and block every start. So the names derive from 32 random bytes kept in the
 * instance folder (0700, ours) in a 0600 file, read without following links. The file is made
 * once: written whole under a private name, then link()ed into place, which fails when another
 * process got there first; every racer then reads the winner's key, so all agree on the names.
 */
import { constants } from 'node:fs'
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import path from 'node:path'
import { StackEmulatorError } from '../errors.js'

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants
const KEY = /^[0-9a-f]{64}$/

export function lockKeyFile(dir: string): string {
  return path.join(dir, 'lock.key')
}

/** The folder's key; undefined when it has none (or the folder is gone). */
export async function readLockKey(dir: string): Promise<string | undefined> {
  const file = lockKeyFile(dir)
  let handle: fs.FileHandle
  try {
    handle = await fs.open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined // ENOTDIR: the name is a file of the state root, no instance
    if (code === 'ELOOP') throw unsafeKey(file, 'is a symbolic link')
    throw error
  }
  try {
    const stat = await handle.stat()
    const uid = process.getuid?.()
    if (!stat.isFile()) throw unsafeKey(file, 'is not a file')
    if (uid !== undefined && stat.uid !== uid) throw unsafeKey(file, `belongs to user ${stat.uid}, not to you (${uid})`)
    if (stat.mode & 0o077) throw unsafeKey(file, 'can be read by other users')
    const key = (await handle.readFile('utf8')).trim()
    if (!KEY.test(key)) throw unsafeKey(file, 'is not a lock key (64 hex digits)')
    return key
  } finally {
    await handle.close()
  }
}

/** The folder's key, made now if it has none. */
export async function ensureLockKey(dir: string): Promise<string> {
  for (let attempt = 0; attempt < 5; attempt++) {
    const key = await readLockKey(dir)
    if (key) return key
    await writeLockKey(dir, crypto.randomBytes(32).toString('hex'))
  }
  throw unsafeKey(lockKeyFile(dir), 'keeps disappearing as it is written')
}

/** Puts `key` in place unless the folder already has one; false when it had. */
export async function writeLockKey(dir: string, key: string): Promise<boolean> {
  const file = lockKeyFile(dir)
  const staging = `${file}.${process.pid}.${crypto.randomBytes(6).toString('hex')}`
  const handle = await fs.open(staging, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW, 0o600)
  try {
    try {
      await handle.chmod(0o600) // whatever the umask
      await handle.writeFile(`${key}\n`)
      await handle.datasync() // never a linked but empty key after a crash
    } finally {
      await handle.close()
    }
    await fs.link(staging, file)
    return true
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false
    throw error
  } finally {
    await fs.rm(staging, { force: true })
  }
}

function unsafeKey(file: string, what: string): StackEmulatorError {
  return new StackEmulatorError(`The instance's lock key ${file} ${what}`, {
    code: 'STATE_UNSAFE',
    fix: `Remove it (rm ${file}): stack-emulator writes a new one, and a running instance writes its own back.`,
  })
}
