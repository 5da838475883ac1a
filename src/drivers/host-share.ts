/**
 * The folder shared with the guest: over 9p under QEMU (manifest `hostShare`), bind-mounted
 * under Docker (`container.hostMount`). Stack Auth's own script shares the host's whole `/`;
 * this shares `<instance>/share`, a folder that mirrors at their absolute
 * paths only what the guest needs: the instance's VM folder (where the guest publishes its
 * internal key) and the config files credentials were minted for. Config files are copied in
 * before each mint and copied back when the guest changed them (after each mint and when the VM
 * stops): nothing else on the host is reachable from the guest.
 *
 * The guest can create links in the share, so every host-side step refuses to follow one.
 */
import { constants } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { StackEmulatorError } from '../errors.js'
import type { SharedFiles } from './types.js'

export class HostShare implements SharedFiles {
  /** The share's root on the host (the 9p export). */
  readonly root: string
  /** The VM folder as the guest names it (`STACK_EMULATOR_VM_DIR_HOST`): `/host<vmDir>` in the guest. */
  readonly vmDir: string
  /** The files copied in, with the content last seen on each side. */
  private readonly exposed = new Map<string, Buffer>()

  constructor(instanceDir: string, private readonly internalKeyName?: string) {
    this.root = path.join(instanceDir, 'share')
    this.vmDir = path.join(instanceDir, 'vm')
  }

  /** Where the guest's internal key appears on the host (the mirror of `<vmDir>/<file>`). */
  get internalKeyFile(): string | undefined {
    return this.internalKeyName ? this.hostPath(path.join(this.vmDir, this.internalKeyName)) : undefined
  }

  /** Creates the share with an empty VM folder (an old key must never be read as a new one). */
  async prepare(): Promise<void> {
    await fs.rm(this.root, { recursive: true, force: true })
    await this.mkdirs(this.vmDir)
  }

  /** Where a file the guest writes into its VM folder appears on the host. */
  vmFilePath(name: string): string {
    return this.hostPath(path.join(this.vmDir, name))
  }

  /** Puts the VM folder's file `name` (the internal key, written by the host after a restore). */
  async writeVmFile(name: string, content: string): Promise<void> {
    const file = this.vmFilePath(name)
    await this.mkdirs(this.vmDir)
    await fs.writeFile(`${file}.tmp`, content, { mode: 0o600, flag: constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW })
    await fs.rename(`${file}.tmp`, file)
  }

  async expose(file: string): Promise<void> {
    if (!path.isAbsolute(file) || path.normalize(file) !== file) throw new Error(`not an absolute, normal path: ${file}`)
    const content = await fs.readFile(file)
    await this.mkdirs(path.dirname(file))
    const mirror = this.hostPath(file)
    await fs.rm(mirror, { force: true })
    await fs.writeFile(mirror, content, { flag: constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW })
    this.exposed.set(file, content)
  }

  /** Copies back each exposed file the guest changed; a file that is no longer a plain file is left alone. */
  async syncBack(): Promise<void> {
    for (const [file, last] of this.exposed) {
      let handle: fs.FileHandle
      try {
        handle = await fs.open(this.hostPath(file), constants.O_RDONLY | constants.O_NOFOLLOW)
      } catch {
        continue
      }
      try {
        if (!(await handle.stat()).isFile()) continue
        const now = await handle.readFile()
        if (now.equals(last)) continue
        await fs.writeFile(file, now)
        this.exposed.set(file, now)
      } finally {
        await handle.close()
      }
    }
  }

  private hostPath(guestPath: string): string {
    return path.join(this.root, guestPath)
  }

  /** mkdir -p inside the share, refusing any part that is a link (the guest may have made one). */
  private async mkdirs(guestDir: string): Promise<void> {
    let current = this.root
    for (const part of ['', ...guestDir.split('/').filter(Boolean)]) {
      current = path.join(current, part)
      await fs.mkdir(current, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error
      })
      const stat = await fs.lstat(current)
      if (!stat.isDirectory()) {
        throw new StackEmulatorError(`${current} in the VM's share is not a folder`, {
          code: 'STATE_UNSAFE', fix: 'Stop the instance (stack-emulator stop); the share is made anew at each start.',
        })
      }
    }
  }
}
