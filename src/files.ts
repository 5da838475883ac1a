/** Small file helpers shared by the image cache and the snapshot store. */
import fs from 'node:fs/promises'
import path from 'node:path'

/** A JSON file's value; undefined when it is missing or does not parse. */
export async function readJson<T>(file: string): Promise<T | undefined> {
  try {
    return JSON.parse(await fs.readFile(file, 'utf8')) as T
  } catch {
    return undefined
  }
}

/** Records a use (best effort: a read-only cache still works). */
export async function touch(file: string): Promise<void> {
  const now = new Date()
  await fs.utimes(file, now, now).catch(() => {})
}

/** Space used by a file or a folder's files: blocks, not apparent size (RAM files are sparse); links not followed. */
export async function diskUsage(target: string): Promise<number> {
  const stat = await fs.lstat(target).catch(() => undefined)
  if (!stat) return 0
  if (!stat.isDirectory()) return stat.blocks * 512
  const sizes = await Promise.all((await fs.readdir(target)).map((entry) => diskUsage(path.join(target, entry))))
  return stat.blocks * 512 + sizes.reduce((a, b) => a + b, 0)
}

/** `41.2 MB`, decimal units as download tools show them. */
export function formatBytes(bytes: number): string {
  for (const [unit, size] of [
    ['GB', 1e9],
    ['MB', 1e6],
    ['kB', 1e3],
  ] as const) {
    if (bytes >= size) return `${(bytes / size).toFixed(1)} ${unit}`
  }
  return `${bytes} B`
}
