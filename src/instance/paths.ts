/** Every file of an instance lives under one folder (mode 0700, the user's own, no links). */
import fs from 'node:fs/promises'
import path from 'node:path'
import { StackEmulatorError, badOption } from '../errors.js'

export interface InstancePaths {
  name: string
  dir: string
  state: string
  socket: string
  supervisorConfig: string
  supervisorLog: string
}

const PATH_PART = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/

/**
 * A name that becomes one path component: letters, digits, ".", "_" and "-", at most 63, not
 * starting with a symbol (so never "..", never a separator). `what` names it in the error.
 */
export function checkPathPart(what: string, value: unknown): string {
  if (typeof value !== 'string' || !PATH_PART.test(value)) {
    throw badOption(what, value, 'letters, digits, ".", "_" or "-" (at most 63, not starting with a symbol)')
  }
  return value
}

export function instancePaths(stateRoot: string, name: string): InstancePaths {
  const dir = path.join(stateRoot, checkPathPart('name', name))
  return {
    name,
    dir,
    state: path.join(dir, 'state.json'),
    socket: path.join(dir, 'supervisor.sock'),
    supervisorConfig: path.join(dir, 'supervisor.json'),
    supervisorLog: path.join(dir, 'supervisor.log'),
  }
}

/**
 * Creates the instance folder, or checks the existing one: a real folder (not a link), owned by
 * this user, mode 0700. With a shared STACK_EMULATOR_HOME another user could otherwise plant a
 * link and have us write through it.
 */
export async function ensureInstanceDir(paths: InstancePaths): Promise<void> {
  // Unix socket paths are limited to 107 bytes on Linux (103 on macOS).
  if (Buffer.byteLength(paths.socket) > 103) {
    throw new StackEmulatorError(`The instance folder ${paths.dir} is too deep for a unix socket`, {
      code: 'BAD_OPTION',
      fix: 'Set STACK_EMULATOR_HOME to a shorter path.',
    })
  }
  await fs.mkdir(path.dirname(paths.dir), { recursive: true, mode: 0o700 })
  await fs.mkdir(paths.dir, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST' && error.code !== 'EACCES') throw error // EACCES: lstat says whose folder it is
  })
  const stat = await lstatInstanceDir(paths)
  const uid = process.getuid?.()
  if (!stat.isDirectory()) {
    throw new StackEmulatorError(`The instance folder ${paths.dir} is ${stat.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}`, {
      code: 'STATE_UNSAFE',
      fix: `Remove it (rm ${paths.dir}); stack-emulator never follows links in its state folder.`,
    })
  }
  if (uid !== undefined && stat.uid !== uid) throw notYours(paths, paths.dir, stat.uid, uid)
  if ((stat.mode & 0o777) !== 0o700) await fs.chmod(paths.dir, 0o700)
  for (const file of [paths.socket, paths.state]) {
    const entry = await fs.lstat(file).catch(() => undefined)
    if (entry && (entry.isDirectory() || entry.isSymbolicLink())) {
      throw new StackEmulatorError(`${file} is ${entry.isDirectory() ? 'a folder' : 'a symbolic link'}, where stack-emulator keeps a file`, {
        code: 'STATE_UNSAFE',
        fix: `Remove it (rm -r ${file}).`,
      })
    }
  }
}

/**
 * For status, stop, reset and logs: another user's instance is said to be so, with the fix,
 * rather than left to surface as a raw EACCES from the socket or the state file.
 */
export async function checkInstanceOwner(paths: InstancePaths): Promise<void> {
  const stat = await lstatInstanceDir(paths).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT' || error.code === 'ENOTDIR') return undefined // no instance there
    throw error
  })
  const uid = process.getuid?.()
  if (stat?.isDirectory() && uid !== undefined && stat.uid !== uid) throw notYours(paths, paths.dir, stat.uid, uid)
}

/** lstat of the instance folder; EACCES (a folder above it closed to us) names that folder and its owner. */
async function lstatInstanceDir(paths: InstancePaths) {
  try {
    return await fs.lstat(paths.dir)
  } catch (error) {
    const uid = process.getuid?.()
    if ((error as NodeJS.ErrnoException).code !== 'EACCES' || uid === undefined) throw error
    for (let folder = path.dirname(paths.dir); ; folder = path.dirname(folder)) {
      const stat = await fs.lstat(folder).catch(() => undefined)
      if (stat) throw stat.uid === uid ? error : notYours(paths, folder, stat.uid, uid, error)
      if (folder === path.dirname(folder)) throw error
    }
  }
}

function notYours(paths: InstancePaths, folder: string, owner: number, uid: number, cause?: unknown): StackEmulatorError {
  const whose =
    folder === paths.dir
      ? `its folder ${folder} is user ${owner}'s, not yours (user ${uid})`
      : `its folder ${paths.dir} is inside ${folder}, which is user ${owner}'s and closed to you (user ${uid})`
  return new StackEmulatorError(`Instance "${paths.name}" belongs to another user: ${whose}`, {
    code: 'STATE_UNSAFE',
    cause,
    fix: `To act on that instance, run the command as user ${owner} (e.g. sudo -u '#${owner}' stack-emulator ...). For one of your own, set STACK_EMULATOR_HOME to a folder you own, or use another instance name (--name).`,
  })
}
