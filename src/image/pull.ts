/**
 * Pulling a release of the real image into `<cache>/images/stack-auth-<arch>-<tag>/`: the asset
 * found through the release API, downloaded (resumable, hashed) under the image's lock after a
 * free-space check, checked (size, sha256), and installed with its generated manifest by
 * renaming a staging folder into place. A replaced image's snapshots are dropped.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { StackEmulatorError } from '../errors.js'
import { localFailure } from '../local-failure.js'
import { packageRoot } from '../package-root.js'
import { githubToken, type Settings } from '../settings.js'
import { dropSnapshots, imagesRoot, readJson, removeFolder, type ImageSource } from './cache.js'
import { discardPart, download, formatBytes, type PullProgress } from './download.js'
import { withImageLock } from './lock.js'
import { loadManifest, type ImageManifest } from './manifest.js'
import { IMAGE_NAME, RELEASE_REPO, pulledFolderName, type Arch } from './names.js'
import { findAsset } from './release.js'

export const DEFAULT_TEMPLATE = path.join(packageRoot, 'manifests/stack-auth.json')

/** Everything checked and filled in (see pullImage's options for what each means). */
export interface PullRequest {
  tag: string
  arch: Arch
  sha256: string | undefined
  manifestTemplate: string
  settings: Pick<Settings, 'cacheRoot' | 'releasesUrl'>
  onProgress: (progress: PullProgress) => void
  onLog: (line: string) => void
}

export interface PulledImage {
  /** What the `image` option takes: `stack-auth@<tag>`. */
  image: string
  tag: string
  arch: Arch
  manifest: string
  sha256: string
  sizeBytes: number
  pulledAt: string
  /** False when the installed image already was the release's asset. */
  downloaded: boolean
  /** Bytes kept from an interrupted pull, and bytes transferred by this one. */
  resumedFrom: number
  transferredBytes: number
  durationMs: number
}

interface InstalledManifest {
  fingerprint: string
  source?: ImageSource
}

/** The pull lock is held for the whole download: a slow network may take this long. */
const MAX_WAIT_MS = 2 * 3600_000

export async function pullRelease(request: PullRequest): Promise<PulledImage> {
  const started = performance.now()
  const { tag, arch, onLog } = request
  const api = { base: request.settings.releasesUrl, token: githubToken() }
  const template = await readTemplate(request.manifestTemplate)
  const asset = await findAsset(api, tag, arch)
  const root = imagesRoot(request.settings.cacheRoot)
  const folder = pulledFolderName(arch, tag)
  const dir = path.join(root, folder)
  const image = `${IMAGE_NAME}@${tag}`
  const done = (m: InstalledManifest & { source: ImageSource }, transfer: { resumedFrom: number; transferredBytes: number } | undefined): PulledImage => ({
    image, tag, arch, manifest: path.join(dir, 'manifest.json'), sha256: m.fingerprint, sizeBytes: m.source.sizeBytes, pulledAt: m.source.pulledAt,
    downloaded: transfer !== undefined, resumedFrom: transfer?.resumedFrom ?? 0, transferredBytes: transfer?.transferredBytes ?? 0,
    durationMs: Math.round(performance.now() - started),
  })

  const waiting = { waiting: `waiting for another pull of ${image} (${arch})`, onLog, maxWaitMs: MAX_WAIT_MS }
  // A full or read-only cache is named as such; the pull's own errors pass as they are.
  const named = (error: unknown) => { throw error instanceof StackEmulatorError ? error : (localFailure(error, root) ?? error) }
  return withImageLock(dir, waiting, async () => {
    const installed = await readJson<InstalledManifest>(path.join(dir, 'manifest.json'))
    if (installed?.source?.assetUrl === asset.url && installed.source.sizeBytes === asset.size) {
      if (request.sha256 && installed.fingerprint !== request.sha256) throw mismatch(`The installed ${image} (${arch})`, installed.fingerprint, request.sha256, 'nothing was changed')
      onLog(`${image} (${arch}) is up to date`)
      return done({ ...installed, source: installed.source }, undefined)
    }

    const part = `${dir}.part`
    await checkFreeSpace(root, asset.size - (await fs.stat(part).then((s) => s.size, () => 0)))
    const transfer = await download({ asset, part, api, onProgress: request.onProgress, onLog })
    if (request.sha256 && transfer.sha256 !== request.sha256) {
      await discardPart(part)
      throw mismatch(`The download of ${asset.name} (${image})`, transfer.sha256, request.sha256, 'nothing was installed')
    }

    const source: ImageSource = { repo: RELEASE_REPO, tag, arch, assetUrl: asset.url, pulledAt: new Date().toISOString(), sizeBytes: asset.size }
    const manifest = { ...forArch(template, arch), name: folder, disk: asset.name, fingerprint: transfer.sha256, source }
    await install(dir, part, asset.name, manifest, request.manifestTemplate)
    if (installed && installed.fingerprint !== transfer.sha256) {
      const freed = await dropSnapshots(request.settings.cacheRoot, folder, installed.fingerprint)
      if (freed > 0) onLog(`dropped the snapshots of the replaced ${image} (${formatBytes(freed)})`)
    }
    return done(manifest, transfer)
  }).catch(named)
}

/**
 * The template's machine fields describe its own arch (amd64 unless it says): for another arch
 * they are dropped, so that arch's defaults apply (virt, max, uefi on arm64).
 */
export function forArch(template: Record<string, unknown>, arch: Arch): Record<string, unknown> {
  if ((template.arch ?? 'amd64') === arch) return template
  const { machine: _machine, cpu: _cpu, firmware: _firmware, ...rest } = template
  return { ...rest, arch }
}

/** The downloaded disk and its manifest into a staging folder, checked, then renamed into place. */
async function install(dir: string, part: string, diskName: string, manifest: object, templateFile: string): Promise<void> {
  const staging = `${dir}.staging-${process.pid}`
  await fs.rm(staging, { recursive: true, force: true })
  await fs.mkdir(staging)
  await fs.rename(part, path.join(staging, diskName))
  try {
    // The runtime volume's files beside the template (base.env) travel with the image.
    const volumeFiles = (manifest as Partial<ImageManifest>).runtimeVolume?.files ?? {}
    for (const source of Object.values(volumeFiles)) {
      if (path.isAbsolute(source)) continue
      await fs.mkdir(path.dirname(path.join(staging, source)), { recursive: true })
      await fs.copyFile(path.resolve(path.dirname(templateFile), source), path.join(staging, source))
    }
    await fs.writeFile(path.join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2))
    await loadManifest(path.join(staging, 'manifest.json')) // a bad template fails here, not at the first boot
  } catch (cause) {
    await fs.rename(path.join(staging, diskName), part) // kept: the next pull installs it without a download
    await fs.rm(staging, { recursive: true, force: true })
    const said = cause instanceof StackEmulatorError && cause.fix ? cause.message.slice(0, -cause.fix.length - 1) : String((cause as Error).message)
    throw new StackEmulatorError(`The manifest made from ${templateFile} does not load: ${said}`, {
      code: 'IMAGE_NOT_FOUND', fix: 'Fix the template (manifestTemplate); the download is kept, so the next pull installs it at once.', cause,
    })
  }
  const old = await fs.access(dir).then(() => `${dir}.trash-${process.pid}`, () => undefined)
  if (old) await fs.rename(dir, old)
  await fs.rename(staging, dir)
  if (old) await removeFolder(old)
  await discardPart(part)
}

async function readTemplate(file: string): Promise<Record<string, unknown>> {
  const template = await readJson<unknown>(file)
  if (template !== null && typeof template === 'object' && !Array.isArray(template)) return template as Record<string, unknown>
  throw new StackEmulatorError(`The manifest template ${file} is missing or not a JSON object`, {
    code: 'IMAGE_NOT_FOUND', fix: 'Point manifestTemplate at a manifest.json, or leave it unset.',
  })
}

function mismatch(what: string, actual: string, expected: string, outcome: string): StackEmulatorError {
  return new StackEmulatorError(`${what} has sha256 ${actual}, not the expected ${expected}; ${outcome}`, {
    code: 'CHECKSUM_MISMATCH',
    fix: 'Check the digest you pinned (--sha256) against the tag: a moving tag such as emulator-dev-latest changes with each release, so pin an immutable emulator-<branch>-<YYYYMMDD>-<sha8> tag with its digest.',
  })
}

/** Before a download: enough free space in `folder` for `neededBytes`, or an error naming the shortfall. */
export async function checkFreeSpace(folder: string, neededBytes: number, statfs: typeof fs.statfs = fs.statfs): Promise<void> {
  const stats = await statfs(folder)
  const free = stats.bavail * stats.bsize
  if (free >= neededBytes) return
  throw new StackEmulatorError(
    `Not enough space in ${folder} for the image: it needs ${formatBytes(neededBytes)}, ${formatBytes(free)} are free (short by ${formatBytes(neededBytes - free)})`,
    { code: 'DISK_FULL', fix: `Free some space there (stack-emulator image prune, df -h ${folder}), or point STACK_EMULATOR_CACHE_DIR at a roomier disk.` },
  )
}
