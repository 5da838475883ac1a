/**
 * The host side of a config file shared with the guest. Only what can be an app's Stack config
 * reaches the VM's share: a plain file (not a link), named like a JavaScript or TypeScript module,
 * at most 1 MiB. Anything else a client names (a private key, /etc/shadow) stays out of the
 * guest's reach. The guest's changes come back in place, never through a link.
 */
import { constants } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { StackEmulatorError } from '../errors.js'

const { O_RDONLY, O_WRONLY, O_NOFOLLOW, O_NONBLOCK } = constants

/** The names Stack Auth's route can read a config from (`export const config = ...`). */
export const CONFIG_EXTENSIONS: readonly string[] = ['.ts', '.mts', '.cts', '.js', '.mjs', '.cjs']
export const MAX_CONFIG_BYTES = 1024 * 1024

/** The content of `file`, if it may be shared with the guest; a clear error naming the fix if not. */
export async function readConfigFile(file: string): Promise<Buffer> {
  if (!CONFIG_EXTENSIONS.includes(path.extname(file))) {
    throw refused(
      `${file} is not a Stack config file (${CONFIG_EXTENSIONS.join(', ')}); no other file is shared with the VM`,
      "Pass your app's stack.config.ts as configFile, or configFile: false for no credentials.",
    )
  }
  const handle = await openConfig(file)
  try {
    const stat = await handle.stat()
    if (!stat.isFile()) throw refused(`Config file ${file} is not a plain file`, 'Pass a plain file as configFile.')
    if (stat.size > MAX_CONFIG_BYTES) throw refused(`Config file ${file} is larger than 1 MiB`, "Pass your app's stack.config.ts as configFile.")
    return await handle.readFile()
  } finally {
    await handle.close()
  }
}

/**
 * Writes what the guest made of `file` back into it, in place (its owner, mode and hard links
 * kept). false when the file is gone: what the user removed is not brought back.
 */
export async function writeConfigFileBack(file: string, content: Buffer): Promise<boolean> {
  let handle: fs.FileHandle
  try {
    handle = await fs.open(file, O_WRONLY | O_NOFOLLOW | O_NONBLOCK)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT') return false
    if (code === 'ELOOP') throw refused(`${file} is now a symbolic link; not written through it`, 'Put the plain file back and restart the instance.')
    throw error
  }
  try {
    if (!(await handle.stat()).isFile()) throw refused(`${file} is no longer a plain file; not written`, 'Put the plain file back and restart the instance.')
    await handle.truncate(0)
    await handle.writeFile(content)
    return true
  } finally {
    await handle.close()
  }
}

/** O_NOFOLLOW: a link at the config's own name is refused (its target is named in the fix). */
async function openConfig(file: string): Promise<fs.FileHandle> {
  try {
    // O_NONBLOCK: a FIFO under a config's name must not hang the supervisor.
    return await fs.open(file, O_RDONLY | O_NOFOLLOW | O_NONBLOCK)
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code
    if (code === 'ENOENT')
      throw refused(`Config file ${file} does not exist`, 'Create it (the backend writes a default config into an empty file), or pass configFile: false.')
    if (code === 'ELOOP') {
      const target = await fs.realpath(file).catch(() => undefined)
      throw refused(
        `Config file ${file} is a symbolic link; only a plain file is shared with the VM`,
        target ? `Pass the file it points to: configFile: '${target}'.` : 'Pass the path of a plain file as configFile.',
      )
    }
    throw refused(`Cannot read config file ${file} (${code ?? String(error)})`, 'Check that you can read it, or pass configFile: false.')
  }
}

function refused(summary: string, fix: string): StackEmulatorError {
  return new StackEmulatorError(summary, { code: 'CREDENTIALS', fix })
}
