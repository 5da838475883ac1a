/**
 * The supervisor's credentials: the app's project minted once per config file and VM state (or
 * read from the seeded snapshot the VM runs), the projects minted per test (issue 25), and the
 * VM state they live in (`generation`), which each change ends, with its projects.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { sha256 } from '../digest.js'
import type { EmulatorManifest } from '../drivers/manifest.js'
import type { RunningInstance } from '../drivers/types.js'
import { StackEmulatorError } from '../errors.js'
import { mintCredentials } from '../stack/credentials.js'
import type { StackCredentials } from '../stack/environment.js'
import { dropProjectCopies, PROJECT_COPIES, writeProjectCopy } from '../stack/project-copy.js'
import type { MintedProjectResult } from './protocol.js'
import type { SeededSnapshotMeta } from './seeded-snapshot-policy.js'

export interface CredentialContext {
  manifest: Pick<EmulatorManifest, 'name' | 'credentials'>
  /** The instance's folder, where the projects' config file copies live. */
  instanceDir: string
  /** The running instance, once started. */
  instance: Promise<RunningInstance>
  log: (line: string) => void
  /** Every client hears of a new VM state: their minted-ahead projects belong to the old one. */
  announce: (generation: number) => void
}

export class Credentials {
  private readonly minted = new Map<string, Promise<StackCredentials>>()
  /** The digest of each config file right after its mint (the guest may write it). */
  private readonly mintedDigests = new Map<string, string>()
  /** The VM's state, bumped at each change (start, reset, seeded snapshot): projects minted per test live in one. */
  private generation = 0

  constructor(private readonly ctx: CredentialContext) {}

  /**
   * After the VM changed state: credentials are those its seeded snapshot holds (the guest reads the
   * config file at run time too, so it is shared again), or none yet.
   */
  newState(instance: RunningInstance | undefined): void {
    this.minted.clear()
    this.mintedDigests.clear()
    this.newGeneration(instance)
    const meta = instance?.seededSnapshots?.current?.meta as SeededSnapshotMeta | undefined
    if (!instance || !meta?.credentials) return
    const shared = (async () => {
      await instance.shared?.expose(meta.configFile)
      return meta.credentials
    })()
    shared.catch(() => this.minted.delete(meta.configFile)) // the next ask mints
    this.minted.set(meta.configFile, shared)
  }

  /**
   * Mints credentials through the image's route once per config file and VM state: suites that
   * share the VM share its project, and 16 of them at once cost the guest one mint, not 16.
   */
  async forConfig(configFile: string): Promise<StackCredentials> {
    const instance = await this.ctx.instance
    const route = this.route(`Image ${this.ctx.manifest.name} has no credential route`, 'Pass configFile: false.')
    let minted = this.minted.get(configFile)
    if (!minted) {
      minted = this.mint(instance, instance.urls[route.service] + route.path, configFile)
      minted.catch(() => this.minted.delete(configFile))
      this.minted.set(configFile, minted)
    }
    return minted
  }

  /** What a seeded snapshot stores: the credentials minted in this state, and the config file's digest right after. */
  async mintedFor(configFile: string): Promise<{ credentials: StackCredentials; digest: string } | undefined> {
    const credentials = await this.minted.get(configFile)
    const digest = this.mintedDigests.get(configFile)
    return credentials && digest ? { credentials, digest } : undefined
  }

  /**
   * A fresh project per test: a copy of the app's config file of its own, exposed to the guest
   * untracked (never copied back), minted through the same route, never cached. One minted across
   * a VM state change belongs to a state that is gone: it is minted again.
   */
  async project(configFile: string): Promise<MintedProjectResult> {
    const instance = await this.ctx.instance
    const route = this.route(
      `Image ${this.ctx.manifest.name} has no credential route, so it cannot mint a project per test`,
      "Use isolation 'worker' or reset: 'test' instead, or an image with the route (the fixture, stack-auth).",
    )
    for (let attempt = 1; ; attempt++) {
      const generation = this.generation
      try {
        const copy = await writeProjectCopy(this.ctx.instanceDir, generation, configFile)
        await instance.shared?.expose(copy.file, { track: false })
        const credentials = await mintCredentials(instance.urls[route.service] + route.path, copy.file, instance.shared, instance.internalKey).catch(
          (error: unknown) => {
            throw instance.shared ? error : unseenCopy(error, copy.file)
          },
        )
        if (generation === this.generation) return { ...credentials, configFile: copy.file, displayName: copy.displayName, generation }
      } catch (error) {
        if (generation === this.generation || attempt >= 3) throw error
      }
      // The VM changed state meanwhile (a reset): that project is gone, mint in the new one.
    }
  }

  private route(message: string, fix: string): NonNullable<EmulatorManifest['credentials']> {
    const route = this.ctx.manifest.credentials
    if (!route) throw new StackEmulatorError(message, { code: 'CREDENTIALS', fix })
    return route
  }

  /** Through the share where the image has one: the guest reads the file there, and may write it. */
  private async mint(instance: RunningInstance, url: string, configFile: string): Promise<StackCredentials> {
    await instance.shared?.expose(configFile)
    const credentials = await mintCredentials(url, configFile, instance.shared, instance.internalKey)
    await instance.shared?.syncBack()
    this.mintedDigests.set(configFile, sha256(await fs.readFile(configFile).catch(() => Buffer.alloc(0))))
    return credentials
  }

  /**
   * A new VM state: the projects minted per test in the last one are gone with it, so their copies
   * go too (on the host and in the share), and every client hears it (its pool drains).
   */
  private newGeneration(instance: RunningInstance | undefined): void {
    const generation = ++this.generation
    const dir = this.ctx.instanceDir
    void dropProjectCopies(dir, generation).catch((error: Error) => this.ctx.log(`could not remove old project copies: ${error.message}`))
    // The share is made anew at each VM start; within one, each change forgets the state before.
    if (generation > 1) void instance?.shared?.forget?.(path.join(dir, PROJECT_COPIES, String(generation - 1))).catch(() => {})
    this.ctx.announce(generation)
  }
}

/**
 * An emulator that shares no files with this machine (one running elsewhere) reads the copy by
 * its path on this machine: where it cannot, say why and what works instead.
 */
function unseenCopy(error: unknown, copy: string): unknown {
  if (!(error instanceof StackEmulatorError) || error.code !== 'CREDENTIALS') return error
  const summary = error.fix ? error.message.slice(0, error.message.indexOf(` ${error.fix}`)) : error.message
  return new StackEmulatorError(
    `${summary} isolation 'project' mints each project from its own copy of the config file, ${copy}, and this emulator shares no files with this machine`,
    {
      code: 'CREDENTIALS',
      fix: "Run the emulator where it reads this machine's files at the same paths (Stack Auth's CLI shares /), or use isolation 'worker' or reset: 'test'.",
      cause: error,
    },
  )
}
