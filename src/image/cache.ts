/**
 * The image cache: `<cache>/images/<folder>/manifest.json` (pulled images `stack-auth-<arch>-<tag>`,
 * fixture builds `fixture-<16 hex>`) and the snapshots captured from them, kept by a driver's
 * snapshot store, which owns its layout and is handed in (drivers/registry.ts `snapshotStore`): this
 * layer sits under the drivers and imports none. Listing, removal, pruning, and the time of last
 * use: a manifest's and a snapshot record's mtime, touched when they are used.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { diskUsage, readJson } from '../files.js'
import { isProcessAlive } from '../instance/process-alive.js'
import { isImageLocked, withImageLock } from './lock.js'
import type { ImageSource } from './manifest.js'
import { IMAGE_NAME, machineArch, parsePulledFolder } from './names.js'

export { readJson, touch } from '../files.js'
export type { ImageSource } from './manifest.js'

export const imagesRoot = (cacheRoot: string) => path.join(cacheRoot, 'images')

export interface CachedImage {
  /** `stack-auth` (pulled) or `fixture` (built here). */
  name: string
  tag: string | null
  arch: string | null
  /** Space used on disk. */
  sizeBytes: number
  /** The disk's sha256 (pulled images; a fixture's fingerprint digests its inputs instead). */
  sha256: string | null
  pulledAt: string | null
  /** The stack-auth/stack-auth commit a pulled image was built from; null when unknown (and for fixtures). */
  commit: string | null
  /** The user's own manifest or base env, when the pull used them instead of the shipped ones. */
  userFiles: { manifest?: string; baseEnv?: string } | null
  lastUsedAt: string
  /** The manifest's `name` and `fingerprint`, which its snapshots are keyed by. */
  imageName: string
  fingerprint: string
  manifest: string
  /** Its snapshots in the store: ready ones (one per machine shape) and seeded ones over them; bytes on disk. */
  snapshots: { ready: SnapshotUsage; seeded: SnapshotUsage }
}

/** An image as its folder says, without asking the snapshot store. */
export type ImageEntry = Omit<CachedImage, 'snapshots'>

/** A slot of the snapshot store, as the cache needs to know it. */
export interface CachedSnapshot {
  dir: string
  kind: 'ready' | 'seeded'
  imageName: string
  /** The image fingerprint it was captured from; undefined while a capture is being published. */
  fingerprint: string | undefined
  lastUsedMs: number
  bytes: number
}

/** What the cache asks of the snapshot store: its slots, the leftovers it can drop at once, and its bound on seeded ones. */
export interface SnapshotStore {
  list(cacheRoot: string): Promise<CachedSnapshot[]>
  leftovers(cacheRoot: string): Promise<string[]>
  /** How many seeded snapshots it keeps (the driver reads its own setting from Settings.env). */
  maxSeeded(env: Record<string, string>): number
}

export interface SnapshotUsage {
  count: number
  /** Space on disk (blocks: RAM files are sparse). */
  bytes: number
}

const FIXTURE_FOLDER = /^fixture-[0-9a-f]{16}$/

/** The cached images with the space their snapshots take in `store`. */
export async function listImages(cacheRoot: string, store: SnapshotStore): Promise<CachedImage[]> {
  const snapshots = await store.list(cacheRoot)
  return (await imageEntries(cacheRoot)).map((image) => ({
    ...image,
    snapshots: snapshotUsage(snapshots.filter((s) => s.imageName === image.imageName && s.fingerprint === image.fingerprint)),
  }))
}

/** The cached images, sorted by name, tag and arch. */
export async function imageEntries(cacheRoot: string): Promise<ImageEntry[]> {
  const root = imagesRoot(cacheRoot)
  const images: ImageEntry[] = []
  for (const entry of await fs.readdir(root, { withFileTypes: true }).catch(() => [])) {
    const pulled = parsePulledFolder(entry.name)
    if (!entry.isDirectory() || (!pulled && !FIXTURE_FOLDER.test(entry.name))) continue
    const manifest = path.join(root, entry.name, 'manifest.json')
    const [m, stat] = await Promise.all([
      readJson<{ name?: string; fingerprint?: string; source?: ImageSource }>(manifest),
      fs.stat(manifest).catch(() => undefined),
    ])
    if (!m || !stat || typeof m.name !== 'string' || typeof m.fingerprint !== 'string') continue
    images.push({
      name: pulled ? IMAGE_NAME : 'fixture',
      tag: pulled?.tag ?? null,
      arch: pulled?.arch ?? machineArch(),
      sizeBytes: await diskUsage(path.join(root, entry.name)),
      sha256: pulled ? m.fingerprint : null,
      pulledAt: m.source?.pulledAt ?? null,
      commit: typeof m.source?.commit === 'string' ? m.source.commit : null,
      userFiles: m.source?.userFiles ?? null,
      lastUsedAt: stat.mtime.toISOString(),
      imageName: m.name,
      fingerprint: m.fingerprint,
      manifest,
    })
  }
  return images.sort((a, b) => a.name.localeCompare(b.name) || String(a.tag).localeCompare(String(b.tag)) || String(a.arch).localeCompare(String(b.arch)))
}

/** Removes images (under their lock) and their snapshots; returns the space freed. */
export async function removeImages(cacheRoot: string, store: SnapshotStore, images: ImageEntry[], onLog: (line: string) => void): Promise<number> {
  let freed = 0
  for (const image of images) {
    const dir = path.dirname(image.manifest)
    const waiting = { waiting: `waiting for another pull of ${path.basename(dir)} to finish`, onLog, maxWaitMs: 10 * 60_000 }
    freed += await withImageLock(dir, waiting, () => removeFolder(dir))
    freed += await dropSnapshots(cacheRoot, store, image.imageName, image.fingerprint)
  }
  return freed
}

/** Drops the snapshots captured from image `imageName` at `fingerprint`; returns the space freed. */
export async function dropSnapshots(cacheRoot: string, store: SnapshotStore, imageName: string, fingerprint: string): Promise<number> {
  let freed = 0
  for (const snapshot of await store.list(cacheRoot)) {
    if (snapshot.imageName === imageName && snapshot.fingerprint === fingerprint) freed += await removeFolder(snapshot.dir)
  }
  return freed
}

function snapshotUsage(snapshots: CachedSnapshot[]): CachedImage['snapshots'] {
  const usage = (kind: CachedSnapshot['kind']) => {
    const of = snapshots.filter((s) => s.kind === kind)
    return { count: of.length, bytes: of.reduce((sum, s) => sum + s.bytes, 0) }
  }
  return { ready: usage('ready'), seeded: usage('seeded') }
}

export interface PruneResult {
  images: CachedImage[]
  /** Snapshot folders removed. */
  snapshots: string[]
  /** Interrupted downloads and leftovers of killed processes removed. */
  leftovers: string[]
  freedBytes: number
}

/**
 * Drops what was not used in the last `olderThanDays` days: images (not while a pull holds
 * them), snapshots, interrupted downloads; and at once, snapshots of a cached image that is gone
 * or was replaced, the staging and trash folders of processes that died, and refused captures' records.
 */
export async function pruneCache(
  cacheRoot: string,
  store: SnapshotStore,
  olderThanDays: number,
  onLog: (line: string) => void,
  now = Date.now(),
): Promise<PruneResult> {
  const cutoff = now - olderThanDays * 86_400_000
  const result: PruneResult = { images: [], snapshots: [], leftovers: [], freedBytes: 0 }
  const all = await listImages(cacheRoot, store)
  for (const image of all) {
    if (Date.parse(image.lastUsedAt) >= cutoff || (await isImageLocked(path.dirname(image.manifest)))) continue
    result.freedBytes += await removeImages(cacheRoot, store, [image], onLog)
    result.images.push(image)
  }
  const kept = all.filter((image) => !result.images.includes(image))
  // A snapshot of one of our own images whose (name, fingerprint) no cached image has any more.
  const ours = (name: string) => name === 'stack-auth-fixture' || parsePulledFolder(name) !== undefined
  const orphan = (s: CachedSnapshot) =>
    s.fingerprint !== undefined && ours(s.imageName) && !kept.some((i) => i.imageName === s.imageName && i.fingerprint === s.fingerprint)
  for (const snapshot of await store.list(cacheRoot)) {
    if (snapshot.lastUsedMs >= cutoff && !orphan(snapshot)) continue
    result.freedBytes += await removeFolder(snapshot.dir)
    result.snapshots.push(snapshot.dir)
  }
  const root = imagesRoot(cacheRoot)
  const leftovers: string[] = []
  for (const entry of await fs.readdir(root).catch(() => [] as string[])) {
    const file = path.join(root, entry)
    const owner = /\.(?:staging|trash)-(\d+)(?:-\d+)?$/.exec(entry)
    const part = /^(.+)\.part(?:\.json)?$/.exec(entry)
    const stalePart =
      part &&
      (await fs.stat(file).then(
        (st) => st.mtimeMs,
        () => now,
      )) < cutoff &&
      !(await isImageLocked(path.join(root, part[1]!)))
    if ((owner && !isProcessAlive(Number(owner[1]))) || stalePart) leftovers.push(file)
  }
  for (const file of [...leftovers, ...(await store.leftovers(cacheRoot))]) {
    result.freedBytes += await removeFolder(file)
    result.leftovers.push(file)
  }
  return result
}

/** Removes a file or folder (renamed away first, so it disappears at once); returns the space freed. */
export async function removeFolder(target: string): Promise<number> {
  const bytes = await diskUsage(target)
  const trash = `${target}.trash-${process.pid}-${Date.now()}`
  try {
    await fs.rename(target, trash)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0 // removed by another process meanwhile
    throw error
  }
  await fs.rm(trash, { recursive: true, force: true })
  return bytes
}
