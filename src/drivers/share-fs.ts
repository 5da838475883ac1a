/**
 * File operations inside the guest's share that never follow a link and never leave it. Node has
 * no openat: each folder on the way down from the share's root is opened with
 * O_DIRECTORY|O_NOFOLLOW and the next name is looked up in that open folder through
 * `/proc/self/fd/<fd>/<name>`. A guest that swaps a folder for a link after it was opened changes
 * nothing: the name is looked up in the folder that was checked, wherever it now is. Each call
 * here acts on one name in an open folder, and none follows a link at that name.
 * Without /proc (macOS) the same walk uses plain paths: links at rest are refused, a swap that
 * races the walk is not.
 */
import crypto from 'node:crypto'
import { constants, existsSync } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { StackEmulatorError } from '../errors.js'

const { O_RDONLY, O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_DIRECTORY, O_NONBLOCK } = constants
const PROC_FD = process.platform === 'linux' && existsSync('/proc/self/fd')

/** A folder of the share, held open; `shown` is its path on the host, for messages only. */
export class ShareDir {
  private constructor(
    private readonly handle: fs.FileHandle,
    readonly shown: string,
  ) {}

  /** Opens a folder the guest cannot reach the parent of (the share's root, the instance folder). */
  static async open(trusted: string): Promise<ShareDir> {
    return new ShareDir(await openDir(trusted, trusted), trusted)
  }

  /** This folder itself, as a path. */
  get here(): string {
    return PROC_FD ? `/proc/self/fd/${this.handle.fd}` : this.shown
  }

  /** The path of `name` in this folder, for one call that does not follow a link at its last part. */
  at(name: string): string {
    if (!name || name === '.' || name === '..' || name.includes('/')) throw new Error(`not a single name: ${name}`)
    return PROC_FD ? `${this.here}/${name}` : path.join(this.shown, name)
  }

  /** The folder `name` in this one (made 0700 when `create`); a link or anything else is refused. */
  async child(name: string, create: boolean): Promise<ShareDir> {
    if (create) await fs.mkdir(this.at(name), { mode: 0o700 }).catch(unless('EEXIST'))
    const shown = path.join(this.shown, name)
    return new ShareDir(await openDir(this.at(name), shown), shown)
  }

  close(): Promise<void> {
    return this.handle.close()
  }
}

/** Runs `use` on the folder `parts` below `root`, each part opened in the one before it. */
export async function inFolder<T>(root: string, parts: string[], create: boolean, use: (dir: ShareDir) => Promise<T>): Promise<T> {
  let dir = await ShareDir.open(root)
  try {
    for (const part of parts) {
      const next = await dir.child(part, create)
      await dir.close()
      dir = next
    }
    return await use(dir)
  } finally {
    await dir.close()
  }
}

/** The plain file `name`, at most `maxBytes`; undefined when there is none. */
export async function readIn(dir: ShareDir, name: string, maxBytes: number): Promise<Buffer | undefined> {
  const shown = path.join(dir.shown, name)
  let handle: fs.FileHandle
  try {
    // O_NONBLOCK: a FIFO the guest made must not hang the host.
    handle = await fs.open(dir.at(name), O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
  } catch (error) {
    if (errno(error) === 'ENOENT') return undefined
    if (errno(error) === 'ELOOP') throw unsafe(`${shown} in the VM's share is a link`)
    throw error
  }
  try {
    if (!(await handle.stat()).isFile()) throw unsafe(`${shown} in the VM's share is not a plain file`)
    return await readBounded(handle, maxBytes, shown)
  } finally {
    await handle.close()
  }
}

/** Replaces `name` with a new file (never written through a link: a fresh name, then a rename). */
export async function writeIn(dir: ShareDir, name: string, content: string | Buffer, mode: number): Promise<void> {
  const tmp = `.${name}.${crypto.randomBytes(6).toString('hex')}.tmp`
  try {
    await fs.writeFile(dir.at(tmp), content, { mode, flag: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW })
    await fs.rename(dir.at(tmp), dir.at(name))
  } catch (error) {
    await fs.unlink(dir.at(tmp)).catch(() => {})
    if (errno(error) === 'EISDIR' || errno(error) === 'ENOTEMPTY') throw unsafe(`${path.join(dir.shown, name)} in the VM's share is a folder`)
    throw error
  }
}

/** rm -rf of `name` in `dir`: links are removed, never followed. */
export async function removeIn(dir: ShareDir, name: string): Promise<void> {
  try {
    await fs.unlink(dir.at(name))
    return
  } catch (error) {
    if (errno(error) === 'ENOENT') return
    if (errno(error) !== 'EISDIR' && errno(error) !== 'EPERM') throw error // a folder: EISDIR on Linux, EPERM on macOS
  }
  const sub = await dir.child(name, false)
  try {
    for (const entry of await fs.readdir(sub.here)) await removeIn(sub, entry)
  } finally {
    await sub.close()
  }
  await fs.rmdir(dir.at(name))
}

/** A path's folders below the root, in order (`/a/b` -> ['a', 'b']). */
export function partsOf(absolute: string): string[] {
  return absolute.split('/').filter(Boolean)
}

async function openDir(at: string, shown: string): Promise<fs.FileHandle> {
  try {
    return await fs.open(at, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
  } catch (error) {
    if (errno(error) === 'ELOOP' || errno(error) === 'ENOTDIR') throw unsafe(`${shown} in the VM's share is not a folder`)
    throw error
  }
}

/** Reads at most `maxBytes` (the guest may still be growing the file). */
async function readBounded(handle: fs.FileHandle, maxBytes: number, shown: string): Promise<Buffer> {
  if (maxBytes === Infinity) return handle.readFile()
  const buffer = Buffer.alloc(maxBytes + 1)
  let length = 0
  for (let n = -1; n !== 0 && length <= maxBytes; length += n) {
    n = (await handle.read(buffer, length, buffer.length - length, null)).bytesRead
  }
  if (length > maxBytes) throw unsafe(`${shown} in the VM's share is larger than ${maxBytes} bytes`)
  return buffer.subarray(0, length)
}

function unsafe(summary: string): StackEmulatorError {
  return new StackEmulatorError(summary, {
    code: 'STATE_UNSAFE',
    fix: 'Stop the instance (stack-emulator stop); the share is made anew at each start.',
  })
}

function unless(code: string): (error: unknown) => void {
  return (error) => {
    if (errno(error) !== code) throw error
  }
}

export function errno(error: unknown): string | undefined {
  return (error as NodeJS.ErrnoException | undefined)?.code
}
