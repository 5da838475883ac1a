/** Every file of an instance lives under one folder (mode 0700). */
import fs from 'node:fs/promises'
import path from 'node:path'
import { badOption } from '../errors.js'

export interface InstancePaths {
  name: string
  dir: string
  lock: string
  lockOwner: string
  state: string
  socket: string
  supervisorConfig: string
  supervisorLog: string
}

const NAME = /^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,62}$/

export function instancePaths(stateRoot: string, name: string): InstancePaths {
  if (!NAME.test(name)) throw badOption('name', name, 'letters, digits, ".", "_" or "-" (at most 63, not starting with a symbol)')
  const dir = path.join(stateRoot, name)
  return {
    name,
    dir,
    lock: path.join(dir, 'instance.lock'),
    lockOwner: path.join(dir, 'instance.lock.owner'),
    state: path.join(dir, 'state.json'),
    socket: path.join(dir, 'supervisor.sock'),
    supervisorConfig: path.join(dir, 'supervisor.json'),
    supervisorLog: path.join(dir, 'supervisor.log'),
  }
}

export async function ensureInstanceDir(paths: InstancePaths): Promise<void> {
  await fs.mkdir(paths.dir, { recursive: true, mode: 0o700 })
  await fs.chmod(paths.dir, 0o700)
  // Unix socket paths are limited to 107 bytes on Linux (103 on macOS).
  if (Buffer.byteLength(paths.socket) > 103) {
    throw new TypeError(`The instance folder ${paths.dir} is too deep for a unix socket; set STACK_EMULATOR_HOME to a shorter path.`)
  }
}
