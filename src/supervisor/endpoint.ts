/**
 * Where clients find the supervisor: the instance's state file and its unix socket. Published in
 * that order (a client that got an answer on the socket leaves state.json behind for the next
 * one), checked every second and put back if they went or changed (a removed folder, a garbled
 * file: clients must find the VM that runs, not start a second one), and removed at the end only
 * while they are still ours, recognised by identity: never a successor's.
 */
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import net from 'node:net'
import { ensureInstanceDir, type InstancePaths } from '../instance/paths.js'
import type { InstanceState } from './config.js'

/** How often the state file and socket are checked to be still ours. */
const REPAIR_INTERVAL_MS = 1000

export class Endpoint {
  private server: net.Server | undefined
  /** The inode of the socket we bound: a file at that path with another inode is not ours. */
  private socketInode: number | undefined
  private readonly nonce = crypto.randomBytes(8).toString('hex')
  private readonly startedAt = new Date().toISOString()
  private repairTimer: NodeJS.Timeout | undefined
  private repairing: Promise<void> | undefined
  private closed = false

  constructor(
    private readonly paths: InstancePaths,
    private readonly image: { fingerprint: string; name: string },
    private readonly onConnection: (socket: net.Socket) => void,
    private readonly log: (line: string) => void,
  ) {}

  /** Writes the state file, then listens; from then on, repairs them. */
  async open(): Promise<void> {
    await this.publish()
    // One repair at a time: a slow disk must not have two of them rebind the socket at once.
    this.repairTimer = setInterval(() => void this.repairNow(), REPAIR_INTERVAL_MS)
    this.repairTimer.unref()
  }

  /** Puts back the instance folder and our files in it if they went (a relaunch writes there, issue 22). */
  repairNow(): Promise<void> {
    this.repairing ??= this.repair().finally(() => {
      this.repairing = undefined
    })
    return this.repairing
  }

  /** From a shutdown's start: nothing is put back any more. */
  stopRepairs(): void {
    this.closed = true
    clearInterval(this.repairTimer)
  }

  /** Removes our state file and socket (only ours). */
  async close(): Promise<void> {
    this.stopRepairs()
    if ((await fs.readFile(this.paths.state, 'utf8').catch(() => '')).includes(this.nonce)) await fs.rm(this.paths.state, { force: true })
    // Closing the server unlinks the socket path, so it closes only while the socket there is still ours.
    if (await isSameFile(this.paths.socket, this.socketInode)) this.server?.close()
  }

  private async publish(): Promise<void> {
    const paths = this.paths
    await ensureInstanceDir(paths)
    const state: InstanceState = {
      pid: process.pid,
      nonce: this.nonce,
      socket: paths.socket,
      imageFingerprint: this.image.fingerprint,
      imageName: this.image.name,
      startedAt: this.startedAt,
    }
    const tmp = `${paths.state}.${process.pid}.tmp`
    await fs.writeFile(tmp, JSON.stringify(state, null, 2), { mode: 0o600 })
    await fs.rename(tmp, paths.state)
    // Closing a unix-socket server unlinks its path (libuv): close the old one before binding anew.
    this.server?.close()
    this.server = undefined
    // We own the instance (the ownership lock): any socket file there is a dead one's.
    await fs.rm(paths.socket, { force: true })
    const server = net.createServer(this.onConnection)
    const umask = process.umask(0o177) // socket created 0600
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(paths.socket, resolve)
      })
    } finally {
      process.umask(umask)
    }
    this.server = server
    this.socketInode = (await fs.lstat(paths.socket)).ino
  }

  private async repair(): Promise<void> {
    if (this.closed) return
    const paths = this.paths
    const [socket, state] = await Promise.all([fs.lstat(paths.socket).catch(() => undefined), fs.readFile(paths.state, 'utf8').catch(() => '')])
    if (socket?.ino === this.socketInode && state.includes(this.nonce)) return
    this.log(`the state file or socket in ${paths.dir} was removed or changed; writing them again`)
    await this.publish().catch((error: Error) => this.log(`could not write them again: ${error.message}`))
  }
}

async function isSameFile(file: string, inode: number | undefined): Promise<boolean> {
  if (inode === undefined) return false
  const stat = await fs.lstat(file).catch(() => undefined)
  return stat?.ino === inode
}
