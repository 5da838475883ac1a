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
      code: 'BAD_OPTION', fix: 'Set STACK_EMULATOR_HOME to a shorter path.',
    })
  }
  await fs.mkdir(path.dirname(paths.dir), { recursive: true, mode: 0o700 })
  await fs.mkdir(paths.dir, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
    if (error.code !== 'EEXIST') throw error
  })
  const stat = await fs.lstat(paths.dir)
  const uid = process.getuid?.()
  if (!stat.isDirectory()) {
    throw new StackEmulatorError(`The instance folder ${paths.dir} is ${stat.isSymbolicLink() ? 'a symbolic link' : 'not a folder'}`, {
      code: 'STATE_UNSAFE', fix: `Remove it (rm ${paths.dir}); stack-emulator never follows links in its state folder.`,
    })
  }
  if (uid !== undefined && stat.uid !== uid) {
    throw new StackEmulatorError(`The instance folder ${paths.dir} belongs to user ${stat.uid}, not to you (${uid})`, {
      code: 'STATE_UNSAFE', fix: 'Use a STACK_EMULATOR_HOME of your own, or another instance name.',
    })
  }
  if ((stat.mode & 0o777) !== 0o700) await fs.chmod(paths.dir, 0o700)
  for (const file of [paths.socket, paths.state]) {
    const entry = await fs.lstat(file).catch(() => undefined)
    if (entry && (entry.isDirectory() || entry.isSymbolicLink())) {
      throw new StackEmulatorError(`${file} is ${entry.isDirectory() ? 'a folder' : 'a symbolic link'}, where stack-emulator keeps a file`, {
        code: 'STATE_UNSAFE', fix: `Remove it (rm -r ${file}).`,
      })
    }
  }
}
