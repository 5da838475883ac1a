/**
 * Pulling a release of the real image into `<cache>/images/stack-auth-<arch>-<tag>/`: the asset
 * found through the release API, downloaded (resumable, hashed) under the image's lock after a
 * free-space check, checked (size, sha256), and installed with its generated manifest by
 * renaming a staging folder into place. A replaced image's snapshots are dropped. The upstream
 * commit the release was built from is recorded and compared with the one the shipped manifest
 * and base env describe; the user's own files (`--manifest`, `--base-env`) may replace them.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { StackEmulatorError } from '../errors.js'
import { localFailure } from '../local-failure.js'
import { packageRoot } from '../package-root.js'
import { githubToken, proxySettings, type Settings } from '../settings.js'
import { dropSnapshots, imagesRoot, readJson, removeFolder, type ImageSource, type SnapshotStore } from './cache.js'
import { discardPart, download, formatBytes, type PullProgress } from './download.js'
import { withImageLock } from './lock.js'
import { loadManifest } from './manifest.js'
import { IMAGE_NAME, RELEASE_REPO, pulledFolderName, type Arch } from './names.js'
import { findAsset, proxyDispatcher, type Api, type ReleaseCommit } from './release.js'

export const DEFAULT_TEMPLATE = path.join(packageRoot, 'manifests/stack-auth.json')
/** The base env the shipped template names (its runtimeVolume.files["base.env"]). */
export const SHIPPED_BASE_ENV = path.join(packageRoot, 'manifests/stack-auth.base.env')
/**
 * The stack-auth/stack-auth commit that the shipped manifest and base env describe (the base
 * env's header and docs/stack-auth-contract.md say so). Change it with those files: a pull warns
 * when a release was built from another commit.
 */
export const SHIPPED_COMMIT = '2f719903b181c20940159e9f3aaaa99bc3ec3b0f'
/** The runtime volume's file that the user's base env (`--base-env`, option `baseEnv`) replaces. */
export const BASE_ENV = 'base.env'

export type UserFiles = NonNullable<ImageSource['userFiles']>

/** Everything checked and filled in (see pullImage's options for what each means). */
export interface PullRequest {
  tag: string
  arch: Arch
  sha256: string | undefined
  manifestTemplate: string
  /** The user's base env instead of the file the template names for the runtime volume's base.env. */
  baseEnv?: string
  settings: Pick<Settings, 'cacheRoot' | 'releasesUrl' | 'pullIdleTimeoutMs'>
  /** Where the snapshots of an image it replaces are dropped from. */
  snapshots: SnapshotStore
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
  /** The stack-auth/stack-auth commit the release says it was built from; null when it does not say. */
  commit: string | null
  /** The user's own manifest and base env, when they replaced the shipped ones. */
  userFiles: UserFiles | null
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
  const api = { base: request.settings.releasesUrl, token: githubToken(), dispatcher: proxyDispatcher(proxySettings()) }
  try {
    return await pullWith(api, request)
  } finally {
    await api.dispatcher.destroy() // not close(): a body left unread on an error path must not hold the pull open
  }
}

async function pullWith(api: Api, request: PullRequest): Promise<PulledImage> {
  const started = performance.now()
  const { tag, arch, onLog } = request
  const files = await imageFiles(request.manifestTemplate, request.baseEnv) // the user's files fail here, before any download
  const asset = await findAsset(api, tag, arch)
  const root = imagesRoot(request.settings.cacheRoot)
  const folder = pulledFolderName(arch, tag)
  const dir = path.join(root, folder)
  const image = `${IMAGE_NAME}@${tag}`
  const done = (m: InstalledManifest & { source: ImageSource }, transfer: { resumedFrom: number; transferredBytes: number } | undefined): PulledImage => ({
    image,
    tag,
    arch,
    manifest: path.join(dir, 'manifest.json'),
    sha256: m.fingerprint,
    sizeBytes: m.source.sizeBytes,
    pulledAt: m.source.pulledAt,
    commit: m.source.commit ?? null,
    userFiles: m.source.userFiles ?? null,
    downloaded: transfer !== undefined,
    resumedFrom: transfer?.resumedFrom ?? 0,
    transferredBytes: transfer?.transferredBytes ?? 0,
    durationMs: Math.round(performance.now() - started),
  })
  const sourceOf = (pulledAt: string): ImageSource => ({
    repo: RELEASE_REPO,
    tag,
    arch,
    assetUrl: asset.url,
    pulledAt,
    sizeBytes: asset.size,
    ...(asset.commit ? { commit: asset.commit.sha, commitFrom: asset.commit.from } : {}),
    ...(files.userFiles ? { userFiles: files.userFiles } : {}),
  })

  const waiting = { waiting: `waiting for another pull of ${image} (${arch})`, onLog, maxWaitMs: MAX_WAIT_MS }
  // A full or read-only cache is named as such; the pull's own errors pass as they are.
  const named = (error: unknown) => {
    throw error instanceof StackEmulatorError ? error : (localFailure(error, root) ?? error)
  }
  const pulled = await withImageLock(dir, waiting, async () => {
    const installed = await readJson<InstalledManifest & Record<string, unknown>>(path.join(dir, 'manifest.json'))
    if (installed?.source?.assetUrl === asset.url && installed.source.sizeBytes === asset.size) {
      if (request.sha256 && installed.fingerprint !== request.sha256)
        throw mismatch(`The installed ${image} (${arch})`, installed.fingerprint, request.sha256, 'nothing was changed')
      // The disk is the release's: only the manifest, the runtime volume's files or the record may differ.
      const wanted = manifestFor(files, arch, folder, asset.name, installed.fingerprint, sourceOf(installed.source.pulledAt))
      const sameRuntime = sameExceptSource(installed, wanted) && (await sameCopies(dir, files.copies))
      if (sameRuntime && JSON.stringify(installed.source) === JSON.stringify(wanted.source)) {
        onLog(`${image} (${arch}) is up to date`)
        return done({ ...installed, source: installed.source }, undefined)
      }
      await install(dir, { kind: 'installed', file: path.join(dir, asset.name) }, asset.name, wanted, files)
      if (sameRuntime) onLog(`${image} (${arch}) is up to date`)
      else {
        onLog(`${image} (${arch}) is up to date; its manifest and base env are now ${describeFiles(files.userFiles)} (no download)`)
        const freed = await dropSnapshots(request.settings.cacheRoot, request.snapshots, folder, installed.fingerprint)
        if (freed > 0) onLog(`dropped the snapshots of ${image} taken with the files it had (${formatBytes(freed)})`)
      }
      return done(wanted, undefined)
    }

    const part = `${dir}.part`
    await checkFreeSpace(
      root,
      asset.size -
        (await fs.stat(part).then(
          (s) => s.size,
          () => 0,
        )),
    )
    const transfer = await download({ asset, part, api, idleTimeoutMs: request.settings.pullIdleTimeoutMs, onProgress: request.onProgress, onLog })
    if (request.sha256 && transfer.sha256 !== request.sha256) {
      await discardPart(part)
      throw mismatch(`The download of ${asset.name} (${image})`, transfer.sha256, request.sha256, 'nothing was installed')
    }

    const manifest = manifestFor(files, arch, folder, asset.name, transfer.sha256, sourceOf(new Date().toISOString()))
    await install(dir, { kind: 'download', part }, asset.name, manifest, files)
    if (installed && installed.fingerprint !== transfer.sha256) {
      const freed = await dropSnapshots(request.settings.cacheRoot, request.snapshots, folder, installed.fingerprint)
      if (freed > 0) onLog(`dropped the snapshots of the replaced ${image} (${formatBytes(freed)})`)
    }
    return done(manifest, transfer)
  }).catch(named)
  const line = provenanceLine(`${image} (${arch})`, asset.commit, files.userFiles)
  if (line) onLog(line)
  return pulled
}

/**
 * The one line a pull says about where the image came from, or nothing when the shipped files
 * describe the commit it was built from: the user's own files are used (no check), the release
 * does not name its commit (no check possible), or it names another one than the shipped files.
 */
export function provenanceLine(image: string, commit: ReleaseCommit | undefined, userFiles: UserFiles | undefined): string | undefined {
  const built = commit ? `stack-auth/stack-auth ${short(commit.sha)}` : 'an unknown stack-auth/stack-auth commit'
  if (userFiles) {
    return `${image} uses ${describeFiles(userFiles)}: the commit check is skipped (the image was built from ${built}, the shipped files describe ${short(SHIPPED_COMMIT)})`
  }
  if (!commit) {
    return `${image}: the release does not say which stack-auth/stack-auth commit it was built from, so whether the shipped manifest and base env (written for ${short(SHIPPED_COMMIT)}) match it cannot be checked`
  }
  if (SHIPPED_COMMIT.startsWith(commit.sha) || commit.sha.startsWith(SHIPPED_COMMIT)) return undefined
  return (
    `${image} was built from ${built}, but the manifest and base env shipped with stack-emulator describe ${short(SHIPPED_COMMIT)}: ` +
    'pull it again with files that match that image (--base-env FILE, --manifest FILE), or update stack-emulator'
  )
}

const short = (sha: string) => sha.slice(0, 12)

/** "your base env X and the shipped manifest", "the shipped manifest and base env", ... */
function describeFiles(userFiles: UserFiles | undefined): string {
  if (!userFiles) return 'the shipped manifest and base env'
  const { manifest, baseEnv } = userFiles
  if (manifest && baseEnv) return `your manifest ${manifest} and base env ${baseEnv}`
  return manifest ? `your manifest ${manifest} (and the files it names)` : `your base env ${baseEnv} and the shipped manifest`
}

/**
 * The manifest template and the runtime volume's files an image gets: read and checked before
 * the download (a missing or unreadable file, a base env that is not NAME=value lines, a base env
 * for a manifest without one), the installed folder's names for them, and which are the user's.
 */
interface ImageFiles {
  template: Record<string, unknown>
  templateFile: string
  /** The installed manifest's runtimeVolume.files, when the template has a runtime volume. */
  volumeFiles: Record<string, string> | undefined
  /** Path in the image folder -> the file copied there. */
  copies: Record<string, string>
  userFiles: UserFiles | undefined
}

async function imageFiles(templateFile: string, baseEnv: string | undefined): Promise<ImageFiles> {
  const ownTemplate = path.resolve(templateFile) !== DEFAULT_TEMPLATE
  const template = await readTemplate(templateFile, ownTemplate)
  const volume = template.runtimeVolume
  const named = isObject(volume) && isObject(volume.files) ? (volume.files as Record<string, unknown>) : undefined
  if (baseEnv !== undefined && !(named && BASE_ENV in named)) {
    throw new StackEmulatorError(
      `Option "baseEnv" replaces the runtime volume's ${BASE_ENV}, but the manifest ${templateFile} has none (runtimeVolume.files)`,
      {
        code: 'BAD_OPTION',
        fix: `Use a manifest whose runtimeVolume.files names "${BASE_ENV}" (as manifests/stack-auth.json), or leave the base env out.`,
      },
    )
  }
  const volumeFiles: Record<string, string> = {}
  const copies: Record<string, string> = {}
  let ownBaseEnv: string | undefined
  for (const [name, source] of Object.entries(named ?? {})) {
    if (typeof source !== 'string') continue // the manifest check names it
    if (name === BASE_ENV && baseEnv !== undefined) {
      ownBaseEnv = path.resolve(baseEnv)
      await checkEnvFile(ownBaseEnv, baseEnv)
      volumeFiles[name] = BASE_ENV
      copies[BASE_ENV] = ownBaseEnv
      continue
    }
    volumeFiles[name] = source
    const file = path.resolve(path.dirname(templateFile), source)
    if (name === BASE_ENV && file !== SHIPPED_BASE_ENV) ownBaseEnv = file
    if (!path.isAbsolute(source)) copies[source] = file // absolute: the manifest keeps naming it where it is
    if (
      !(await fs.stat(file).then(
        (st) => st.isFile(),
        () => false,
      ))
    ) {
      throw new StackEmulatorError(`Option "manifestTemplate" names ${templateFile}, whose runtime volume file ${name} (${file}) is missing`, {
        code: 'BAD_OPTION',
        fix: 'Put the file beside the manifest (runtimeVolume.files are relative to it), or fix the path.',
      })
    }
  }
  const userFiles = { ...(ownTemplate ? { manifest: path.resolve(templateFile) } : {}), ...(ownBaseEnv ? { baseEnv: ownBaseEnv } : {}) }
  return { template, templateFile, volumeFiles: named ? volumeFiles : undefined, copies, userFiles: Object.keys(userFiles).length ? userFiles : undefined }
}

/** A base env is an env file: each line blank, a comment, or NAME=value (`export` allowed). */
async function checkEnvFile(file: string, given: string): Promise<void> {
  const fix = "Pass an env file of NAME=value lines (as stack-emulator's manifests/stack-auth.base.env), or leave the base env out for the shipped one."
  const refused = (why: string, cause?: unknown) => new StackEmulatorError(`Option "baseEnv" names ${given}, which ${why}`, { code: 'BAD_OPTION', fix, cause })
  const stat = await fs.stat(file).catch((cause: NodeJS.ErrnoException) => {
    throw refused(`cannot be read (${cause.code ?? cause.message})`, cause)
  })
  if (!stat.isFile()) throw refused('is not a file')
  const text = await fs.readFile(file, 'utf8').catch((cause: NodeJS.ErrnoException) => {
    throw refused(`cannot be read (${cause.code ?? cause.message})`, cause)
  })
  const lines = text.split(/\r?\n/)
  const bad = lines.findIndex((line) => !/^\s*(?:#.*)?$/.test(line) && !/^\s*(?:export\s+)?[A-Za-z_][A-Za-z0-9_]*=/.test(line))
  if (text.includes('\0')) throw refused('is not an env file (it is binary)')
  if (bad >= 0) throw refused(`is not an env file (line ${bad + 1} is not NAME=value: ${JSON.stringify(lines[bad]!.slice(0, 60))})`)
}

/**
 * The user's files checked as the pull would install them, before anything is downloaded: the
 * manifest through the manifest loader (staged in a temporary folder with an empty disk), the base
 * env as an env file. `image pull --manifest/--base-env` runs it first; pullRelease() itself checks
 * the manifest once the disk is there (keeping the download when it fails).
 */
export async function checkImageFiles(templateFile: string, baseEnv: string | undefined, arch: Arch): Promise<void> {
  const files = await imageFiles(templateFile, baseEnv)
  const staging = await fs.mkdtemp(path.join(os.tmpdir(), 'stack-emulator-manifest-'))
  try {
    const manifest = manifestFor(files, arch, 'stack-auth-check', 'disk.qcow2', 'unchecked', undefined)
    await fs.writeFile(path.join(staging, 'disk.qcow2'), '')
    await stage(staging, manifest, files.copies)
    await loadManifest(path.join(staging, 'manifest.json'))
  } catch (cause) {
    if (!(cause instanceof StackEmulatorError) || cause.code === 'BAD_OPTION') throw cause
    throw new StackEmulatorError(`Option "manifestTemplate" names ${templateFile}, which does not make a manifest that loads: ${said(cause)}`, {
      code: 'BAD_OPTION',
      fix: 'Fix the manifest (see manifests/stack-auth.json for a complete one; disk, fingerprint and name are set by the pull), or leave it out for the shipped one.',
      cause,
    })
  } finally {
    await fs.rm(staging, { recursive: true, force: true })
  }
}

function manifestFor(
  files: ImageFiles,
  arch: Arch,
  name: string,
  disk: string,
  fingerprint: string,
  source: ImageSource | undefined,
): Record<string, unknown> & InstalledManifest & { source: ImageSource } {
  const base = forArch(files.template, arch)
  const volume = files.volumeFiles && isObject(base.runtimeVolume) ? { runtimeVolume: { ...base.runtimeVolume, files: files.volumeFiles } } : {}
  return { ...base, ...volume, name, disk, fingerprint, ...(source ? { source } : {}) } as Record<string, unknown> & InstalledManifest & { source: ImageSource }
}

const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)

function sameExceptSource(installed: Record<string, unknown>, wanted: Record<string, unknown>): boolean {
  const { source: _a, ...a } = installed
  const { source: _b, ...b } = wanted
  return JSON.stringify(a) === JSON.stringify(b)
}

async function sameCopies(dir: string, copies: Record<string, string>): Promise<boolean> {
  for (const [dest, source] of Object.entries(copies)) {
    const [a, b] = await Promise.all([fs.readFile(path.join(dir, dest)).catch(() => undefined), fs.readFile(source).catch(() => undefined)])
    if (!a || !b || !a.equals(b)) return false
  }
  return true
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

/** The disk: a finished download, or the installed one (when only the files change). */
type DiskSource = { kind: 'download'; part: string } | { kind: 'installed'; file: string }

/** The disk, its manifest and the runtime volume's files into a staging folder, checked, then renamed into place. */
async function install(dir: string, disk: DiskSource, diskName: string, manifest: object, files: ImageFiles): Promise<void> {
  const staging = `${dir}.staging-${process.pid}`
  await fs.rm(staging, { recursive: true, force: true })
  await fs.mkdir(staging)
  const staged = path.join(staging, diskName)
  let moved = disk.kind === 'download'
  if (disk.kind === 'download') await fs.rename(disk.part, staged)
  // The installed disk stays where it is for a running VM until the swap: a second link to it.
  else
    await fs.link(disk.file, staged).catch(async () => {
      await fs.rename(disk.file, staged)
      moved = true
    })
  try {
    await stage(staging, manifest, files.copies)
    await loadManifest(path.join(staging, 'manifest.json')) // a bad template fails here, not at the first boot
  } catch (cause) {
    if (moved) await fs.rename(staged, disk.kind === 'download' ? disk.part : disk.file) // a download is kept: the next pull installs it without another
    await fs.rm(staging, { recursive: true, force: true })
    throw new StackEmulatorError(`The manifest made from ${files.templateFile} does not load: ${said(cause)}`, {
      code: 'IMAGE_NOT_FOUND',
      fix: `Fix the template (manifestTemplate, image pull --manifest); ${disk.kind === 'download' ? 'the download is kept, so the next pull installs it at once' : 'the installed image is unchanged'}.`,
      cause,
    })
  }
  const old = await fs.access(dir).then(
    () => `${dir}.trash-${process.pid}`,
    () => undefined,
  )
  if (old) await fs.rename(dir, old)
  await fs.rename(staging, dir)
  if (old) await removeFolder(old)
  if (disk.kind === 'download') await discardPart(disk.part)
}

/** The runtime volume's files (base.env beside the template, or the user's) and the manifest into `folder`. */
async function stage(folder: string, manifest: object, copies: Record<string, string>): Promise<void> {
  for (const [dest, source] of Object.entries(copies)) {
    await fs.mkdir(path.dirname(path.join(folder, dest)), { recursive: true })
    await fs.copyFile(source, path.join(folder, dest))
  }
  await fs.writeFile(path.join(folder, 'manifest.json'), JSON.stringify(manifest, null, 2))
}

/** An error's message without its fix. */
function said(cause: unknown): string {
  return cause instanceof StackEmulatorError && cause.fix ? cause.message.slice(0, -cause.fix.length - 1) : String((cause as Error).message)
}

async function readTemplate(file: string, own: boolean): Promise<Record<string, unknown>> {
  const template = await readJson<unknown>(file)
  if (isObject(template)) return template
  const fix = 'Point it at a manifest.json (as manifests/stack-auth.json), or leave it out for the shipped one.'
  if (own) throw new StackEmulatorError(`Option "manifestTemplate" names ${file}, which is missing or not a JSON object`, { code: 'BAD_OPTION', fix })
  throw new StackEmulatorError(`The manifest template ${file} is missing or not a JSON object`, {
    code: 'IMAGE_NOT_FOUND',
    fix: 'Reinstall stack-emulator: its shipped manifest is damaged.',
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
