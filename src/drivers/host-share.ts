/**
 * The folder shared with the guest: over 9p under QEMU (manifest `hostShare`), bind-mounted
 * under Docker (`container.hostMount`). Stack Auth's own script shares the host's whole `/`;
 * this shares `<instance>/share`, a folder that mirrors at their absolute
 * paths only what the guest needs: the instance's VM folder (where the guest publishes its
 * internal key) and the config files credentials were minted for. Config files are copied in
 * before each mint and copied back when the guest changed them (after each mint, before a copy
 * is replaced, and when the VM stops): nothing else on the host is reachable from the guest.
 *
 * The guest can make links in the share, and swap a folder for one at any moment: every step
 * here walks from the share's root without following one (share-fs.ts).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { StackEmulatorError } from '../errors.js'
import { MAX_CONFIG_BYTES, readConfigFile, writeConfigFileBack } from '../stack/config-file.js'
import { errno, inFolder, partsOf, readIn, removeIn, writeIn, type ShareDir } from './share-fs.js'
import type { SharedFiles } from './types.js'

/** Far above a key's length; a guest cannot make the host read more. */
const MAX_KEY_BYTES = 4096

export class HostShare implements SharedFiles {
  /** The share's root on the host (the 9p export). */
  readonly root: string
  /** The VM folder as the guest names it (`STACK_EMULATOR_VM_DIR_HOST`): `/host<vmDir>` in the guest. */
  readonly vmDir: string
  /** The files copied in, with the content last seen on each side. */
  private readonly exposed = new Map<string, Buffer>()

  constructor(
    private readonly instanceDir: string,
    private readonly internalKeyName?: string,
  ) {
    this.root = path.join(instanceDir, 'share')
    this.vmDir = path.join(instanceDir, 'vm')
  }

  /** Where the guest's internal key appears on the host, for messages: read it with readInternalKey(). */
  get internalKeyFile(): string | undefined {
    return this.internalKeyName ? this.vmFilePath(this.internalKeyName) : undefined
  }

  /** Creates the share with an empty VM folder (an old key must never be read as a new one). */
  async prepare(): Promise<void> {
    await inFolder(this.instanceDir, [], false, (dir) => removeIn(dir, 'share'))
    await fs.mkdir(this.root, { mode: 0o700 })
    await this.inShare(this.vmDir, true, async () => {})
  }

  /**
   * The share's root, made again (with its VM folder) when the instance folder was removed under
   * the running VM: a new QEMU needs it to exist. What was mirrored is mirrored again as needed.
   */
  async ensure(): Promise<string> {
    await fs.mkdir(this.root, { mode: 0o700 }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'EEXIST') throw error
    })
    await this.inShare(this.vmDir, true, async () => {})
    return this.root
  }

  /** Where a file the guest writes into its VM folder appears on the host, for messages: read it with readVmFile(). */
  vmFilePath(name: string): string {
    return path.join(this.root, this.vmDir, name)
  }

  /** The VM folder's plain file `name`, or undefined while there is none. */
  async readVmFile(name: string, maxBytes = Infinity): Promise<Buffer | undefined> {
    return this.inShare(this.vmDir, false, (dir) => readIn(dir, name, maxBytes)).catch(absent)
  }

  async readInternalKey(): Promise<string | undefined> {
    if (!this.internalKeyName) return undefined
    return (await this.readVmFile(this.internalKeyName, MAX_KEY_BYTES))?.toString('utf8').trim() || undefined
  }

  /** Puts the VM folder's file `name` (the internal key, written by the host after a restore). */
  async writeVmFile(name: string, content: string): Promise<void> {
    await this.inShare(this.vmDir, true, (dir) => writeIn(dir, name, content, 0o600))
  }

  /** Mirrors a config file in (readConfigFile says which files may be); the guest's last change to the old copy goes back first. */
  async expose(file: string, options: { track?: boolean } = {}): Promise<void> {
    if (!path.isAbsolute(file) || path.normalize(file) !== file) throw new Error(`not an absolute, normal path: ${file}`)
    const track = options.track ?? true
    if (track && this.exposed.has(file)) await this.copyBack(file)
    const content = await readConfigFile(file)
    await this.inShare(path.dirname(file), true, (dir) => writeIn(dir, path.basename(file), content, 0o600))
    if (track) this.exposed.set(file, content)
  }

  /** Removes the share's mirror of the host folder `folder` (absolute): the per-test copies of a VM state that is gone. */
  async forget(folder: string): Promise<void> {
    if (!path.isAbsolute(folder) || path.normalize(folder) !== folder || folder === '/') throw new Error(`not an absolute, normal folder: ${folder}`)
    await this.inShare(path.dirname(folder), false, (dir) => removeIn(dir, path.basename(folder))).catch(absent)
  }

  /**
   * Copies back each exposed file the guest changed. One the share no longer holds is skipped;
   * one behind a link (or not a plain file) is not copied, and said in one error after the others.
   */
  async syncBack(): Promise<void> {
    const refused: string[] = []
    for (const file of this.exposed.keys()) {
      await this.copyBack(file).catch((error: Error) => refused.push(error.message.split('\n')[0]!))
    }
    if (refused.length > 0) {
      throw new StackEmulatorError(`Not copied back from the VM's share: ${refused.join('; ')}`, {
        code: 'STATE_UNSAFE',
        fix: 'Stop the instance (stack-emulator stop); the share is made anew at each start.',
      })
    }
  }

  private async copyBack(file: string): Promise<void> {
    const mirrored = await this.inShare(path.dirname(file), false, (dir) => readIn(dir, path.basename(file), MAX_CONFIG_BYTES)).catch(absent)
    if (!mirrored || mirrored.equals(this.exposed.get(file)!)) return
    if (await writeConfigFileBack(file, mirrored)) this.exposed.set(file, mirrored)
  }

  /** Runs `use` on the share's folder for `guestDir`, walked from the root (made when `create`). */
  private inShare<T>(guestDir: string, create: boolean, use: (dir: ShareDir) => Promise<T>): Promise<T> {
    return inFolder(this.root, partsOf(guestDir), create, use)
  }
}

/** A folder on the way that is missing means the file is too. */
function absent(error: unknown): undefined {
  if (errno(error) === 'ENOENT') return undefined
  throw error
}
