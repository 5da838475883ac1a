/**
 * The config file of a project minted per test (isolation 'project', issue 25): a copy of the
 * app's, under the instance folder, one folder per VM state (generation), so that every copy of
 * a state the VM left can be dropped at once. The route names the project after the file
 * ("Local Emulator: <file name>"), so the name carries a random token: each project's mail is
 * told apart by that name (mail.ts MailFilter).
 */
import crypto from 'node:crypto'
import { constants } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { readConfigFile } from './config-file.js'

const { O_WRONLY, O_CREAT, O_EXCL, O_NOFOLLOW } = constants

/** The folder of the instance's per-test config files. */
export const PROJECT_COPIES = 'projects'

export interface ProjectCopy {
  file: string
  /** The project's display name, as the credential route gives it. */
  displayName: string
}

/** The display name Stack Auth's route gives the project of `file` (route.tsx, getOrCreateLocalEmulatorProjectId). */
export function projectDisplayName(file: string): string {
  return `Local Emulator: ${path.basename(file) || 'Project'}`
}

/**
 * Copies `configFile` (checked as the share checks it: a plain config file, at most 1 MiB) to
 * `<instanceDir>/projects/<generation>/stack.config.<token>.<ext>`, a new file (O_EXCL, 0600).
 */
export async function writeProjectCopy(instanceDir: string, generation: number, configFile: string): Promise<ProjectCopy> {
  const content = await readConfigFile(configFile)
  const dir = path.join(instanceDir, PROJECT_COPIES, String(generation))
  await fs.mkdir(dir, { recursive: true, mode: 0o700 })
  const file = path.join(dir, `stack.config.${crypto.randomBytes(6).toString('hex')}${path.extname(configFile)}`)
  await fs.writeFile(file, content, { mode: 0o600, flag: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW })
  return { file, displayName: projectDisplayName(file) }
}

/** Removes the copies of every generation but `keep` (all of them without). Links are removed, never followed. */
export async function dropProjectCopies(instanceDir: string, keep?: number): Promise<void> {
  const root = path.join(instanceDir, PROJECT_COPIES)
  const entries = await fs.readdir(root).catch(() => [] as string[])
  await Promise.all(entries.filter((e) => e !== String(keep)).map((e) => fs.rm(path.join(root, e), { recursive: true, force: true })))
}
