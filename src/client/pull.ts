/**
 * pullImage(): pulls a release of the real Stack Auth emulator image into the cache (see
 * src/image/pull.ts) and, with `warm`, boots it once to capture its ready snapshot.
 */
import { snapshotStore } from '../drivers/registry.js'
import { StackEmulatorError, badOption } from '../errors.js'
import { log } from '../log.js'
import { readSettings } from '../settings.js'
import type { PullProgress } from '../image/download.js'
import { DEFAULT_BRANCH, checkArch, checkBranch, checkSha256, checkTag, hostArch, latestTag, type Arch } from '../image/names.js'
import type { PulledImage } from '../image/pull.js'
import { acquire } from './acquire.js'
import { stopInstance } from './control.js'

export type { PullProgress }

export interface PullOptions {
  /** Pull the branch's moving release, `emulator-<branch>-latest`. @default 'dev' */
  branch?: string
  /** A release tag instead: `emulator-<branch>-latest` or the immutable `emulator-<branch>-<YYYYMMDD>-<sha8>`. */
  tag?: string
  /** @default this machine's: 'amd64' or 'arm64' */
  arch?: Arch
  /** The disk's expected sha256 (64 hex digits); on a mismatch nothing is installed. */
  sha256?: string
  /** Then boot the image once to capture its ready snapshot, so the first start restores. @default false */
  warm?: boolean
  /** The manifest whose services, boot and resources the image gets (its runtime volume's files beside it). @default manifests/stack-auth.json */
  manifestTemplate?: string
  /** An env file for the runtime volume's base.env instead of the one the manifest names. @default manifests/stack-auth.base.env */
  baseEnv?: string
  /** Called during the download, at most every 250 ms, and once at its end. */
  onProgress?: (progress: PullProgress) => void
  /** Called with each phase of the warm-up boot. */
  onPhase?: (phase: string) => void
  /** Called with each one-line message (resuming, starting over, waiting for another pull). @default a line on stderr */
  onLog?: (line: string) => void
}

export interface PullResult extends PulledImage {
  /** True when `warm` captured (or found) the ready snapshot. */
  warmed: boolean
}

export async function pullImage(options: PullOptions = {}): Promise<PullResult> {
  if (options === null || typeof options !== 'object') throw badOption('options', options, 'an object')
  const { branch, tag, arch, sha256, warm, manifestTemplate, baseEnv, onProgress, onPhase, onLog = log } = options
  if (branch !== undefined && tag !== undefined) {
    throw new StackEmulatorError('Pass a branch or a tag, not both: a tag names its branch (emulator-<branch>-latest)', { code: 'BAD_OPTION' })
  }
  if (warm !== undefined && typeof warm !== 'boolean') throw badOption('warm', warm, 'true or false')
  if (manifestTemplate !== undefined && typeof manifestTemplate !== 'string') throw badOption('manifestTemplate', manifestTemplate, 'a path to a manifest.json')
  if (baseEnv !== undefined && typeof baseEnv !== 'string') throw badOption('baseEnv', baseEnv, 'a path to an env file')
  for (const [key, value] of Object.entries({ onProgress, onPhase, onLog })) {
    if (value !== undefined && typeof value !== 'function') throw badOption(key, value, 'a function')
  }
  const { DEFAULT_TEMPLATE, pullRelease } = await import('../image/pull.js') // undici: loaded by pulls only
  const pulled = await pullRelease({
    tag: tag !== undefined ? checkTag(tag) : latestTag(checkBranch(branch ?? DEFAULT_BRANCH)),
    arch: arch !== undefined ? checkArch(arch) : hostArch(),
    sha256: sha256 !== undefined ? checkSha256(sha256) : undefined,
    manifestTemplate: manifestTemplate ?? DEFAULT_TEMPLATE,
    baseEnv,
    settings: readSettings(),
    snapshots: snapshotStore,
    onProgress: onProgress ?? (() => {}),
    onLog,
  })
  const warmed = warm ? await warmUp(pulled, onPhase ?? (() => {}), onLog) : false
  return { ...pulled, warmed }
}

/**
 * A lease on an instance of its own, released at once: its first boot captures the snapshot and
 * restores from it. True when it did (a capture that failed leaves a cold-booted VM, and a line).
 */
async function warmUp(pulled: PulledImage, onProgress: (phase: string) => void, onLog: (line: string) => void): Promise<boolean> {
  const name = `warm-${pulled.sha256.slice(0, 12)}`
  try {
    const emulator = await acquire({ name, image: pulled.manifest, configFile: false, onProgress, onLog })
    await emulator.release()
    return emulator.origin === 'snapshot'
  } catch (error) {
    onLog(`${pulled.image} is installed (${pulled.manifest}), but booting it to capture its ready snapshot failed`)
    throw error
  } finally {
    await stopInstance(name)
  }
}
