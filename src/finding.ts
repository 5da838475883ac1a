/** What one doctor check reports, and the helpers every check builds its finding with. */
import path from 'node:path'
import { which } from './which.js'

export type Status = 'ok' | 'warn' | 'fail'

export interface Finding {
  id: string
  status: Status
  message: string
  /** The command that fixes it. */
  fix?: string
  /** The Debian packages that fix it (`doctor --fix` installs them). */
  packages?: string[]
}

/** A finding for something missing, with the apt-get line that installs `pkg` (sudo unless root). */
export function missing(root: boolean, id: string, message: string, pkg: string, status: Status): Finding {
  return { id, status, message, fix: `${root ? '' : 'sudo '}apt-get install ${pkg}`, packages: [pkg] }
}

/** A program on PATH (and in `extraDirs`), or the package that provides it. */
export async function tool(root: boolean, command: string, pkg: string, purpose: string, extraDirs: string[] = []): Promise<Finding> {
  const PATH = [process.env.PATH, ...extraDirs].filter(Boolean).join(path.delimiter)
  const found = await which(command, { PATH })
  if ('path' in found) return { id: command, status: 'ok', message: found.path }
  return missing(root, command, `not found; it ${purpose}`, pkg, 'fail')
}
