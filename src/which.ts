/** Finds a command as spawn() would: a path with a slash as is, else the first match on PATH. */
import fs from 'node:fs/promises'
import path from 'node:path'

export type Found = { path: string } | { error: 'ENOENT' | 'EACCES' }

export async function which(command: string, env: NodeJS.ProcessEnv = process.env): Promise<Found> {
  const candidates = command.includes('/')
    ? [path.resolve(command)]
    : (env.PATH ?? '')
        .split(path.delimiter)
        .filter(Boolean)
        .map((dir) => path.join(dir, command))
  let error: 'ENOENT' | 'EACCES' = 'ENOENT'
  for (const candidate of candidates) {
    const stat = await fs.stat(candidate).catch(() => undefined)
    if (!stat?.isFile()) continue
    if (
      await fs.access(candidate, fs.constants.X_OK).then(
        () => true,
        () => false,
      )
    )
      return { path: candidate }
    error = 'EACCES'
  }
  return { error }
}
