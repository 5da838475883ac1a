/**
 * Who listens on a local TCP port, for PORT_BUSY messages: the listening socket's inode from
 * /proc/net/tcp (and tcp6), then the process holding a descriptor to it. Linux only; undefined
 * where it cannot tell (another user's process when not root, another OS).
 */
import fs from 'node:fs/promises'

const LISTEN = '0A'

/** "pid 1234 (node)", or undefined. */
export async function portHolder(port: number): Promise<string | undefined> {
  const inodes = new Set<string>()
  for (const table of ['/proc/net/tcp', '/proc/net/tcp6']) {
    const text = await fs.readFile(table, 'utf8').catch(() => '')
    for (const line of text.split('\n').slice(1)) {
      // sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode
      const fields = line.trim().split(/\s+/)
      if (fields.length < 10 || fields[3] !== LISTEN) continue
      if (Number.parseInt(fields[1]!.split(':')[1]!, 16) === port) inodes.add(`socket:[${fields[9]}]`)
    }
  }
  if (inodes.size === 0) return undefined
  for (const pid of await fs.readdir('/proc').catch(() => [] as string[])) {
    if (!/^\d+$/.test(pid)) continue
    const fds = await fs.readdir(`/proc/${pid}/fd`).catch(() => [] as string[]) // another user's: EACCES
    for (const fd of fds) {
      if (!inodes.has(await fs.readlink(`/proc/${pid}/fd/${fd}`).catch(() => ''))) continue
      const name = (await fs.readFile(`/proc/${pid}/comm`, 'utf8').catch(() => '')).trim()
      return `pid ${pid}${name ? ` (${name})` : ''}`
    }
  }
  return undefined
}
