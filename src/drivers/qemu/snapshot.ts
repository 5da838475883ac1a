/**
 * The snapshot store. A `ready` snapshot is guest RAM in a file plus the device state and the
 * disk layer that match it, frozen together as one unit (docs/how-it-works.md).
 * Restores map the RAM file privately, so pages load on demand and every VM sees only its own
 * writes; nothing in the store is ever written after capture, so a read-only cache restores.
 *
 * One slot per fingerprint (memory size and everything else a restore depends on), so two
 * configurations keep two snapshots. A slot is published by renaming its staging folder into
 * place and writing its record last; it is dropped only when proven bad (its files no longer
 * match the record), never because a restore failed for a local reason. Seeded snapshots
 * (seeded-snapshot.ts) beside a ready one are also dropped when no restore can use them again, and
 * beyond a bound, least recently used first (boundSeededSnapshots); never one a running VM holds.
 */
import { constants, createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import crypto from 'node:crypto'
import { sha256 } from '../../digest.js'
import { diskUsage, readJson, touch } from '../../files.js'
import { checkPathPart } from '../../instance/paths.js'
import { isProcessAlive } from '../../instance/process-alive.js'
import { platform, type ImageManifest } from '../../image/manifest.js'
import type { MachineShape } from './argv.js'
import type { SnapshotStore } from '../../image/cache.js'
import { readQemuSettings } from './settings.js'

export interface SnapshotFingerprint {
  image: string
  qemuVersion: string
  accel: string
  cpu: string
  machine: string
  memoryMb: number
  cpus: number
  /** Devices and boot arguments that are not in the shape (the restore must repeat them). */
  devices: string
  seed: string
  /** The runtime volume as captured (runtime-volume.ts): its files, and the host ports when the guest bakes them in. */
  runtimeVolume: string
}

export interface SnapshotRecord {
  fingerprint: SnapshotFingerprint
  ramBytes: number
  ramSha256: string
  stateBytes: number
  stateSha256: string
  capturedAt: string
  guestPorts: number[]
  /** The guest's internal key (manifest `credentials.internalKey`), which the host publishes after each restore. */
  internalKey?: string
  /** A seeded snapshot's (seeded-snapshot.ts): the state digest of the ready snapshot its disk layer sits on. */
  base?: string
  /** A seeded snapshot's: what its taker stored with it (the supervisor: credentials and what they were minted for). */
  meta?: unknown
}

export interface SnapshotFiles {
  dir: string
  ram: string
  state: string
  disk: string
  /** An empty overlay over `disk`, copied for each restore. */
  emptyOverlay: string
  seed: { metaData: string; userData: string }
  record: string
}

export type SnapshotLookup = { kind: 'usable'; files: SnapshotFiles; record: SnapshotRecord } | { kind: 'missing' } | { kind: 'unusable'; reason: string }

export const snapshotsRoot = (cacheRoot: string) => path.join(cacheRoot, 'snapshots')

/** The slot of one fingerprint: `<cache>/snapshots/<image name>-<digest of the fingerprint>`. */
export function snapshotDir(cacheRoot: string, manifest: ImageManifest, fingerprint: SnapshotFingerprint): string {
  const key = sha256(JSON.stringify(fingerprint)).slice(0, 16)
  return path.join(snapshotsRoot(cacheRoot), `${checkPathPart('image name', manifest.name)}-${key}`)
}

/** A seeded snapshot's slot (seeded-snapshot.ts): beside its ready snapshot's, `<ready slot>-checkpoint-<slot>`. */
export function seededSnapshotDir(readyDir: string, slot: string): string {
  return `${readyDir}-checkpoint-${checkPathPart('seeded snapshot slot', slot)}`
}

/** A slot in the store, as listed: a ready snapshot, or a seeded one beside it. */
export interface StoredSnapshot {
  dir: string
  kind: 'ready' | 'seeded'
  /** The image name its slot is named after. */
  imageName: string
  /** A seeded one's: the slot of the ready snapshot it sits on. */
  readyDir: string | undefined
  /** Undefined while it is being published, or when a capture was killed halfway. */
  record: SnapshotRecord | undefined
  /** Its last use: its record's mtime (each lookup touches it), else its folder's. */
  lastUsedMs: number
  /** Space its files take (blocks: its RAM file is sparse). */
  bytes: number
}

// Slots are folders named so; beside them sit folders that are not (locks, staging, trash) and files (holds, refusals).
const SEEDED_SLOT = /^((.+)-[0-9a-f]{16})-checkpoint-(.+)$/
const READY_SLOT = /^(.+)-[0-9a-f]{16}$/
const NOT_A_SLOT = /\.(?:lock|staging-\d+|trash-\d+(?:-\d+)?)$/

/** Every slot in the cache's store. */
export function listStoredSnapshots(cacheRoot: string): Promise<StoredSnapshot[]> {
  return listSlots(snapshotsRoot(cacheRoot))
}

/** The seeded slots over the ready snapshot in `readyDir`. */
export async function seededSnapshotsOf(readyDir: string): Promise<StoredSnapshot[]> {
  return (await listSlots(path.dirname(readyDir))).filter((s) => s.readyDir === readyDir)
}

async function listSlots(root: string): Promise<StoredSnapshot[]> {
  const found: StoredSnapshot[] = []
  for (const entry of await fs.readdir(root, { withFileTypes: true }).catch(() => [])) {
    const seeded = SEEDED_SLOT.exec(entry.name)
    const ready = seeded ? undefined : READY_SLOT.exec(entry.name)
    if (!entry.isDirectory() || NOT_A_SLOT.test(entry.name) || (!seeded && !ready)) continue
    const dir = path.join(root, entry.name)
    const files = snapshotFiles(dir)
    const [record, stat, bytes] = await Promise.all([readJson<SnapshotRecord>(files.record), fs.stat(files.record).catch(() => fs.stat(dir)), diskUsage(dir)])
    found.push({
      dir,
      kind: seeded ? 'seeded' : 'ready',
      imageName: seeded ? seeded[2]! : ready![1]!,
      readyDir: seeded ? path.join(root, seeded[1]!) : undefined,
      record: record && typeof record === 'object' ? record : undefined,
      lastUsedMs: stat.mtimeMs,
      bytes,
    })
  }
  return found
}

export function snapshotFiles(dir: string): SnapshotFiles {
  return {
    dir,
    ram: path.join(dir, 'ram'),
    state: path.join(dir, 'state'),
    disk: path.join(dir, 'disk.qcow2'),
    emptyOverlay: path.join(dir, 'empty-overlay.qcow2'),
    seed: { metaData: path.join(dir, 'seed', 'meta-data'), userData: path.join(dir, 'seed', 'user-data') },
    record: path.join(dir, 'snapshot.json'),
  }
}

export function expectedFingerprint(
  manifest: ImageManifest,
  shape: MachineShape,
  qemuVersion: string,
  seed: string,
  runtimeVolume: string,
): SnapshotFingerprint {
  const boot =
    manifest.boot.kind === 'kernel' ? `${manifest.boot.kernel} ${manifest.boot.initrd ?? ''} ${manifest.boot.append} ${manifest.boot.bios ?? ''}` : 'disk'
  return {
    image: manifest.fingerprint,
    qemuVersion,
    accel: shape.accel,
    cpu: shape.cpu,
    machine: shape.machine,
    memoryMb: shape.memoryMb,
    cpus: shape.cpus,
    devices: `virtio-blk virtio-net-pci fw_cfg-seed ${boot} guest-ports=${manifest.services.map((s) => s.guestPort).join(',')}${platformDevices(manifest)}`,
    seed,
    runtimeVolume,
  }
}

/**
 * The machine fields a manifest sets, appended only when set: a manifest without them (the
 * fixture's) keeps the fingerprint its snapshots were captured under. The machine type and CPU
 * model have their own fields. The 9p device is never there at capture: only its empty root port.
 */
function platformDevices(manifest: ImageManifest): string {
  const { arch, firmware } = platform(manifest)
  const parts: string[] = []
  if (manifest.arch !== undefined || manifest.firmware !== undefined) parts.push(`arch=${arch} firmware=${firmware}`)
  if (manifest.runtimeVolume) parts.push(`runtime-volume=${manifest.runtimeVolume.label}`)
  if (manifest.hostShare) parts.push(`fsdev=hostfs pcie-root-port=hostfs-port mount=${manifest.hostShare.mountCommand.join(' ')}`)
  if (manifest.guestAgent) parts.push('virtserialport=org.qemu.guest_agent.0')
  return parts.map((p) => ` ${p}`).join('')
}

/** Finds the snapshot and says precisely why it cannot be used, when it cannot. Cheap: no RAM digest. */
export async function lookupSnapshot(dir: string, expected: SnapshotFingerprint): Promise<SnapshotLookup> {
  const files = snapshotFiles(dir)
  let record: SnapshotRecord
  try {
    record = JSON.parse(await fs.readFile(files.record, 'utf8')) as SnapshotRecord
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' }
    return { kind: 'unusable', reason: `${files.record} does not parse` }
  }
  const changed = Object.keys(expected)
    .filter((key) => String(record.fingerprint?.[key as keyof SnapshotFingerprint]) !== String(expected[key as keyof SnapshotFingerprint]))
    .map((key) => `${key} ${String(record.fingerprint?.[key as keyof SnapshotFingerprint])} -> ${String(expected[key as keyof SnapshotFingerprint])}`)
  if (changed.length > 0) return { kind: 'unusable', reason: `it was captured for another configuration (${changed.join('; ')})` }
  const problems = await checkFiles(files, record, false)
  if (problems) return { kind: 'unusable', reason: problems }
  await touch(files.record) // its last use, for `image prune`
  return { kind: 'usable', files, record }
}

/**
 * After a restore failed: are the files still the ones captured? With `full`, the RAM file's
 * digest is checked too (about a second per GiB), which is what proves a snapshot bad.
 */
export async function checkFiles(files: SnapshotFiles, record: SnapshotRecord, full: boolean): Promise<string | undefined> {
  try {
    const [ram, state] = await Promise.all([fs.stat(files.ram), fs.stat(files.state), fs.access(files.disk), fs.access(files.emptyOverlay)])
    if (ram.size !== record.ramBytes) return `its RAM file is ${ram.size} bytes, expected ${record.ramBytes} (truncated?)`
    if (state.size !== record.stateBytes) return `its device state file is ${state.size} bytes, expected ${record.stateBytes} (truncated?)`
    // The state file is small (hundreds of KB): checking its digest is cheap and catches corruption.
    if (sha256(await fs.readFile(files.state)) !== record.stateSha256) return 'its device state file is corrupt (digest mismatch)'
    if (full && (await fileSha256(files.ram)) !== record.ramSha256) return 'its RAM file is corrupt (digest mismatch)'
    return undefined
  } catch (error) {
    return `a snapshot file is missing (${(error as Error).message})`
  }
}

export async function writeRecord(
  files: SnapshotFiles,
  fingerprint: SnapshotFingerprint,
  guestPorts: number[],
  internalKey?: string,
  seededSnapshot?: Pick<SnapshotRecord, 'base' | 'meta'>,
): Promise<SnapshotRecord> {
  const [ram, stateBytes, ramSha256] = await Promise.all([fs.stat(files.ram), fs.readFile(files.state), fileSha256(files.ram)])
  const record: SnapshotRecord = {
    fingerprint,
    ramBytes: ram.size,
    ramSha256,
    stateBytes: stateBytes.length,
    stateSha256: sha256(stateBytes),
    capturedAt: new Date().toISOString(),
    guestPorts,
    internalKey,
    ...seededSnapshot,
  }
  const tmp = `${files.record}.tmp`
  await fs.writeFile(tmp, JSON.stringify(record, null, 2), { mode: 0o600 })
  await fs.rename(tmp, files.record)
  return record
}

/**
 * Only the owner reads a published slot's files: its record holds the internal key (a seeded
 * one's, the project's admin key) and its RAM and disk the guest's data.
 */
export async function ownerOnly(dir: string): Promise<void> {
  for (const entry of await fs.readdir(dir, { withFileTypes: true, recursive: true })) {
    await fs.chmod(path.join(entry.parentPath, entry.name), entry.isDirectory() ? 0o700 : 0o600)
  }
}

async function fileSha256(file: string): Promise<string> {
  const hash = crypto.createHash('sha256')
  for await (const chunk of createReadStream(file, { highWaterMark: 4 * 2 ** 20 })) hash.update(chunk as Buffer)
  return hash.digest('hex')
}

/** Copies the cloud-init seed a slot restores with into the slot (`to`: the slot's files' seed). */
export async function copySeed(from: SnapshotFiles['seed'], to: SnapshotFiles['seed']): Promise<void> {
  await fs.mkdir(path.dirname(to.metaData), { recursive: true, mode: 0o700 })
  await fs.copyFile(from.metaData, to.metaData)
  await fs.copyFile(from.userData, to.userData)
}

/** Removes a snapshot proven bad; running VMs keep their open files (Linux unlink semantics). */
export async function discardSnapshot(dir: string): Promise<void> {
  const trash = `${dir}.trash-${process.pid}-${Date.now()}`
  await fs.rename(dir, trash).catch(() => {})
  await fs.rm(trash, { recursive: true, force: true })
}

/** A staging or trash folder, and the pid of the process it belongs to. */
const OWNED = /\.(?:staging|trash)-(\d+)(?:-\d+)?$/

/** Staging and trash folders left by a capture whose process was killed, and the holds of dead VMs. */
export async function removeAbandoned(snapshotsRoot: string): Promise<void> {
  const entries = await fs.readdir(snapshotsRoot).catch(() => [] as string[])
  for (const entry of entries) {
    const owner = OWNED.exec(entry) ?? HOLD.exec(entry)
    if (owner && !isProcessAlive(Number(owner[1]))) await fs.rm(path.join(snapshotsRoot, entry), { recursive: true, force: true })
  }
}

/**
 * What `image prune` removes from the store at once, whatever its age: the staging and trash
 * folders of processes that died, and every refused capture's record (a prune is how a user asks
 * for another try). The store owns its layout: the image cache asks it, never parses its names.
 */
export async function storeLeftovers(cacheRoot: string): Promise<string[]> {
  const root = snapshotsRoot(cacheRoot)
  const entries = await fs.readdir(root).catch(() => [] as string[])
  return entries
    .filter((entry) => {
      const owner = OWNED.exec(entry)
      return (owner && !isProcessAlive(Number(owner[1]))) || entry.endsWith(REFUSAL_SUFFIX)
    })
    .map((entry) => path.join(root, entry))
}

/** The store as the image cache asks it (image list, remove, prune; a pull that replaces an image). */
export const snapshotStore: SnapshotStore = {
  list: async (cacheRoot) =>
    (await listStoredSnapshots(cacheRoot)).map(({ dir, kind, imageName, record, lastUsedMs, bytes }) => {
      const image: unknown = record?.fingerprint?.image
      return { dir, kind, imageName, fingerprint: typeof image === 'string' ? image : undefined, lastUsedMs, bytes }
    }),
  leftovers: storeLeftovers,
  maxSeeded: (env) => readQemuSettings(env).maxSeededSnapshots,
}

/** Serializes captures of one snapshot across processes. */
export async function withSnapshotLock<T>(dir: string, fn: () => Promise<T>): Promise<T> {
  return (await lockSlot(dir, true, fn))!
}

/** Runs `fn` under the slot's lock when no other process holds it; undefined (and `fn` not run) when one does. */
export function ifSnapshotUnlocked<T>(dir: string, fn: () => Promise<T>): Promise<T | undefined> {
  return lockSlot(dir, false, fn)
}

async function lockSlot<T>(dir: string, wait: boolean, fn: () => Promise<T>): Promise<T | undefined> {
  await fs.mkdir(path.dirname(dir), { recursive: true })
  const { default: lockfile } = await import('proper-lockfile') // not on the restore path
  let release: () => Promise<void>
  try {
    release = await lockfile.lock(path.dirname(dir), {
      lockfilePath: `${dir}.lock`,
      stale: 15_000,
      update: 5_000,
      retries: wait ? { retries: 600, minTimeout: 200, maxTimeout: 500 } : 0,
      realpath: false,
      onCompromised: () => {}, // a capture under a lost lock is still checked by its record
    })
  } catch (error) {
    if (!wait && (error as NodeJS.ErrnoException).code === 'ELOCKED') return undefined
    throw error
  }
  try {
    return await fn()
  } finally {
    await release().catch(() => {})
  }
}

/**
 * A running VM's hold on a seeded slot, for as long as its resets may restore it: a file
 * `<slot>.hold-<pid>-<random>` beside the slot. A slot is dropped only under its lock and only
 * while no live process holds it (dropUnlessHeld); a dead holder's file counts for nothing.
 * No lock on the restore path: the hold is written first, then the slot is checked for a drop
 * under way (`<slot>.dropping`, which the dropper writes first, then reads the holds), so of two
 * that race, at least one sees the other and backs off.
 */
export interface SnapshotHold {
  release(): Promise<void>
}

const HOLD = /\.hold-(\d+)-[0-9a-f]{8}$/
const { O_WRONLY, O_RDONLY, O_CREAT, O_EXCL, O_NOFOLLOW, O_NONBLOCK } = constants

/** Holds `dir` for this process; undefined when it is being dropped (treat it as missing). */
export async function holdSnapshot(dir: string): Promise<SnapshotHold | undefined> {
  const file = `${dir}.hold-${process.pid}-${crypto.randomBytes(4).toString('hex')}`
  // A cache this process cannot write (read-only) cannot be pruned by it either; restores go on.
  const written = await fs.writeFile(file, '', { mode: 0o600, flag: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW }).then(
    () => true,
    () => false,
  )
  const hold = { release: async () => void (written && (await fs.unlink(file).catch(() => {}))) }
  const dropper = Number(await fs.readFile(`${dir}.dropping`, { encoding: 'utf8', flag: O_RDONLY | O_NOFOLLOW | O_NONBLOCK }).catch(() => ''))
  if (dropper > 0 && isProcessAlive(dropper)) {
    await hold.release()
    return undefined
  }
  return hold
}

/** Drops slot `dir` unless a live process holds it. Call under withSnapshotLock(dir). True when dropped. */
export async function dropUnlessHeld(dir: string): Promise<boolean> {
  const dropping = `${dir}.dropping`
  await fs.rm(dropping, { force: true }) // a dead dropper's: the lock is ours
  await fs.writeFile(dropping, String(process.pid), { mode: 0o600, flag: O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW })
  try {
    if ((await liveHolds(dir)) > 0) return false
    await discardSnapshot(dir)
    return true
  } finally {
    await fs.rm(dropping, { force: true })
  }
}

/** Clears a drop that its process left halfway (killed), so the slot saved anew can be held. Under the slot's lock. */
export async function clearDropping(dir: string): Promise<void> {
  await fs.rm(`${dir}.dropping`, { force: true })
}

/** How many live processes hold `dir`; a dead holder's file is removed. */
async function liveHolds(dir: string): Promise<number> {
  const prefix = path.basename(dir)
  let live = 0
  for (const entry of await fs.readdir(path.dirname(dir))) {
    const holder = entry.startsWith(`${prefix}.hold-`) ? HOLD.exec(entry) : null
    if (!holder) continue
    if (isProcessAlive(Number(holder[1]))) live++
    else await fs.rm(path.join(path.dirname(dir), entry), { force: true })
  }
  return live
}

/**
 * Keeps at most `max` seeded snapshots in the cache, every image and project together: drops the
 * least recently used beyond that, never `keep` (the one just saved), one a live process holds,
 * or one another process has locked (saving or dropping it). Those still count, so the store
 * stays above `max` while they are in use. Returns what it dropped.
 */
export async function boundSeededSnapshots(cacheRoot: string, max: number, keep: string): Promise<StoredSnapshot[]> {
  const seeded = (await listStoredSnapshots(cacheRoot)).filter((s) => s.kind === 'seeded' && s.record)
  let count = seeded.length
  const dropped: StoredSnapshot[] = []
  for (const slot of seeded.filter((s) => s.dir !== keep).sort((a, b) => a.lastUsedMs - b.lastUsedMs)) {
    if (count <= max) break
    if (await ifSnapshotUnlocked(slot.dir, () => dropUnlessHeld(slot.dir))) {
      count--
      dropped.push(slot)
    }
  }
  return dropped
}

/**
 * A capture QEMU refused (the guest booted and answered, yet its state would not save, e.g. a
 * share the guest holds): remembered beside the slot, so that later starts cold-boot at once
 * instead of paying for a capture that fails again. A new image or QEMU is another slot; `image
 * prune` drops every record (storeLeftovers).
 */
export interface CaptureRefusal {
  reason: string
  at: string
}

export const REFUSAL_SUFFIX = '.refused.json'

export async function readRefusal(dir: string): Promise<CaptureRefusal | undefined> {
  const refusal = await readJson<CaptureRefusal>(`${dir}${REFUSAL_SUFFIX}`)
  return typeof refusal?.reason === 'string' ? refusal : undefined
}

export async function rememberRefusal(dir: string, reason: string): Promise<void> {
  const file = `${dir}${REFUSAL_SUFFIX}`
  await fs.writeFile(`${file}.tmp-${process.pid}`, JSON.stringify({ reason, at: new Date().toISOString() } satisfies CaptureRefusal), { mode: 0o600 })
  await fs.rename(`${file}.tmp-${process.pid}`, file)
}

/** Every refusal in the cache, with the slot it belongs to (doctor and status show them). */
export async function listRefusals(cacheRoot: string): Promise<(CaptureRefusal & { slot: string })[]> {
  const root = path.join(cacheRoot, 'snapshots')
  const entries = await fs.readdir(root).catch(() => [] as string[])
  const found: (CaptureRefusal & { slot: string })[] = []
  for (const entry of entries.filter((e) => e.endsWith(REFUSAL_SUFFIX))) {
    const slot = path.join(root, entry.slice(0, -REFUSAL_SUFFIX.length))
    const refusal = await readRefusal(slot)
    if (refusal) found.push({ ...refusal, slot })
  }
  return found
}
