/** `stack-emulator image build | pull | list | rm | prune`. */
import { pullImage } from '../client/pull.js'
import { StackEmulatorError } from '../errors.js'
import { listImages, pruneCache, removeImages, type CachedImage, type SnapshotUsage } from '../image/cache.js'
import { describeDownload, formatBytes } from '../image/download.js'
import { ensureFixtureImage } from '../image/fixture.js'
import { IMAGE_NAME, assetName, hostArch, parseImageRef } from '../image/names.js'
import { log } from '../log.js'
import { snapshotStore } from '../drivers/registry.js'
import { readSettings } from '../settings.js'
import { usageError, type ParsedArgs } from './args.js'
import { print } from './output.js'
import { withProgress } from './progress.js'

const DEFAULT_PRUNE_DAYS = 30

export async function imageBuild(args: ParsedArgs): Promise<number> {
  const started = Date.now()
  const manifest = await withProgress((onProgress) => ensureFixtureImage({ cacheRoot: readSettings().cacheRoot, progress: onProgress, force: args.force }))
  const result = { manifest, durationMs: Date.now() - started }
  if (args.json) print(result)
  else process.stdout.write(`Fixture image ready: ${manifest} (${result.durationMs} ms)\n`)
  return 0
}

export async function imagePull(args: ParsedArgs): Promise<number> {
  const options = args.image.pull
  if (options.manifestTemplate !== undefined || options.baseEnv !== undefined) {
    // The user's files are checked as they will be installed before anything is downloaded.
    const { DEFAULT_TEMPLATE, checkImageFiles } = await import('../image/pull.js')
    await checkImageFiles(options.manifestTemplate ?? DEFAULT_TEMPLATE, options.baseEnv, options.arch ?? hostArch())
  }
  const result = await withProgress((phase, onLog) =>
    pullImage({ ...options, onProgress: (p) => phase(describeDownload(assetName(options.arch ?? hostArch()), p)), onPhase: phase, onLog }),
  )
  if (args.json) {
    print(result)
    return 0
  }
  const rate = result.durationMs > 0 ? `, ${formatBytes((result.transferredBytes / result.durationMs) * 1000)}/s` : ''
  const how = result.downloaded
    ? `downloaded ${formatBytes(result.transferredBytes)}${result.resumedFrom ? ` (resumed at ${formatBytes(result.resumedFrom)})` : ''} in ${(result.durationMs / 1000).toFixed(1)} s${rate}`
    : 'already up to date'
  process.stdout.write(`${result.image} (${result.arch}): ${how}${result.warmed ? '; ready snapshot captured' : ''}\n`)
  process.stdout.write(`  sha256    ${result.sha256}\n  manifest  ${result.manifest}\n`)
  process.stdout.write(`  commit    ${result.commit ?? 'unknown'} (stack-auth/stack-auth, from the release)\n`)
  const own = result.userFiles
  if (own)
    process.stdout.write(`  yours     ${[own.manifest && `manifest ${own.manifest}`, own.baseEnv && `base env ${own.baseEnv}`].filter(Boolean).join(', ')}\n`)
  process.stdout.write(`Use it with --image ${result.image} (or --image ${IMAGE_NAME}: the newest pulled).\n`)
  return 0
}

export async function imageList(args: ParsedArgs): Promise<number> {
  const settings = readSettings()
  const images = await listImages(settings.cacheRoot, snapshotStore)
  if (args.json) {
    print({ images, maxSeededSnapshots: snapshotStore.maxSeeded(settings.env) })
    return 0
  }
  if (images.length === 0) {
    process.stdout.write('No images in the cache. `stack-emulator image pull` downloads the real one.\n')
    return 0
  }
  const rows = images.map((i) => [
    ref(i),
    i.arch ?? '-',
    formatBytes(i.sizeBytes),
    usage(i.snapshots.ready),
    usage(i.snapshots.seeded),
    i.sha256?.slice(0, 12) ?? '-',
    day(i.pulledAt),
    day(i.lastUsedAt),
    commit(i),
  ])
  table([['IMAGE', 'ARCH', 'SIZE', 'SNAPSHOTS', 'SEEDED', 'SHA256', 'PULLED', 'LAST USED', 'COMMIT'], ...rows])
  return 0
}

export async function imageRm(args: ParsedArgs): Promise<number> {
  const wanted = args.operand!
  let target: ReturnType<typeof parseImageRef>
  try {
    target = parseImageRef(wanted)
  } catch {
    target = { kind: 'path', path: wanted }
  }
  if (target.kind === 'path') throw usageError(`"${wanted}" is not an image name: use ${IMAGE_NAME}, ${IMAGE_NAME}@<tag> or fixture`, 'image rm')
  const cacheRoot = readSettings().cacheRoot
  const cached = await listImages(cacheRoot, snapshotStore)
  const matching = cached.filter((i) => (target.kind === 'fixture' ? i.name === 'fixture' : i.name === IMAGE_NAME && (!target.tag || i.tag === target.tag)))
  if (matching.length === 0) {
    throw new StackEmulatorError(`No cached image is ${wanted} (cached: ${cached.map(ref).join(', ') || 'none'})`, {
      code: 'IMAGE_NOT_FOUND',
      fix: '`stack-emulator image list` shows what is cached.',
    })
  }
  const freedBytes = await removeImages(cacheRoot, snapshotStore, matching, log)
  if (args.json) print({ removed: matching, freedBytes })
  else process.stdout.write(`Removed ${matching.map((i) => `${ref(i)} (${i.arch})`).join(', ')} and their snapshots; freed ${formatBytes(freedBytes)}.\n`)
  return 0
}

export async function imagePrune(args: ParsedArgs): Promise<number> {
  const days = args.image.olderThanDays ?? DEFAULT_PRUNE_DAYS
  const result = await pruneCache(readSettings().cacheRoot, snapshotStore, days, log)
  if (args.json) {
    print({ olderThanDays: days, ...result })
    return 0
  }
  const parts = [
    [result.images.length, 'image'],
    [result.snapshots.length, 'snapshot'],
    [result.leftovers.length, 'leftover'],
  ] as const
  const said = parts.filter(([n]) => n > 0).map(([n, what]) => `${n} ${what}${n === 1 ? '' : 's'}`)
  process.stdout.write(
    said.length
      ? `Removed ${said.join(', ')} not used for ${days} days; freed ${formatBytes(result.freedBytes)}.\n`
      : `Nothing unused for ${days} days; freed 0 B.\n`,
  )
  for (const image of result.images) process.stdout.write(`  ${ref(image)} (${image.arch})\n`)
  return 0
}

const ref = (image: CachedImage) => (image.name === IMAGE_NAME ? `${IMAGE_NAME}@${image.tag}` : image.name)
/** The stack-auth/stack-auth commit a pulled image was built from, and whether it runs with the user's files. */
const commit = (image: CachedImage) => (image.name !== IMAGE_NAME ? '-' : `${image.commit?.slice(0, 12) ?? 'unknown'}${image.userFiles ? ' (your files)' : ''}`)
/** How many snapshots, and their space on disk: `2 (412.3 MB)`, `-` for none. */
const usage = (u: SnapshotUsage) => (u.count === 0 ? '-' : `${u.count} (${formatBytes(u.bytes)})`)
const day = (iso: string | null) => (iso ? iso.slice(0, 16).replace('T', ' ') : '-')

function table(rows: string[][]): void {
  const widths = rows[0]!.map((_, column) => Math.max(...rows.map((row) => row[column]!.length)))
  for (const row of rows)
    process.stdout.write(
      `${row
        .map((cell, i) => cell.padEnd(widths[i]!))
        .join('  ')
        .trimEnd()}\n`,
    )
}
