/**
 * Seeded snapshots: the `ready` snapshot plus what a suite put in it (its
 * project's credentials, a seed function's data), saved so that resets return there.
 *
 * A seeded snapshot is taken from a VM restored for the purpose over a private copy of the ready
 * snapshot's RAM file mapped shared, on its own disk layer over the ready snapshot's: when the
 * suite is done seeding, the share is unmounted and unplugged (share-device.ts),
 * the device state is migrated out without the RAM (x-ignore-shared: it is in the file already),
 * and the three files are published as one slot beside the ready snapshot's, as capture.ts does.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { createOverlay } from './binary.js'
import { saveDeviceState } from './capture.js'
import { withGuestAgent } from './guest-agent.js'
import { unplugShare } from './share-device.js'
import type { QemuProcess } from './process.js'
import type { SeededSnapshotCheck } from '../types.js'
import {
  clearDropping,
  copySeed,
  discardSnapshot,
  dropUnlessHeld,
  holdSnapshot,
  lookupSnapshot,
  ownerOnly,
  removeAbandoned,
  seededSnapshotDir,
  seededSnapshotsOf,
  snapshotFiles,
  withSnapshotLock,
  writeRecord,
  type SnapshotFiles,
  type SnapshotHold,
  type SnapshotRecord,
} from './snapshot.js'
import { readJson } from '../../files.js'
import { agentSocketPath, type Context, type Slot, type SnapshotMode } from './launch.js'

/** The slot of a seeded snapshot: beside its ready snapshot's, named after it (the store's layout). */
export function seededSnapshotFolder(base: SnapshotFiles, slot: string): string {
  return seededSnapshotDir(base.dir, slot)
}

/**
 * The seeded snapshot in `dir` when it was taken over this very ready snapshot and `check` accepts it,
 * held for this process (snapshot.ts, holdSnapshot): release the hold once resets no longer return there.
 */
export async function findSeededSnapshot(
  dir: string,
  base: SnapshotMode,
  check: SeededSnapshotCheck,
): Promise<{ mode: SnapshotMode; meta: unknown; hold: SnapshotHold } | { reason: string }> {
  const hold = await holdSnapshot(dir)
  if (!hold) return { reason: 'it is being dropped' }
  const found = await lookupSnapshot(dir, base.record.fingerprint)
  const misfit =
    found.kind === 'missing'
      ? 'none was taken yet'
      : found.kind === 'unusable'
        ? found.reason
        : // Its disk layer sits on the ready snapshot's: one captured anew at the same place invalidates it.
          found.record.base !== base.record.stateSha256
          ? 'the ready snapshot under it was captured again'
          : check(found.record.meta)
  if (misfit || found.kind !== 'usable') {
    await hold.release()
    return { reason: misfit! }
  }
  return { mode: { kind: 'snapshot', files: found.files, record: found.record }, meta: found.record.meta, hold }
}

/**
 * Stages a seeded snapshot of `base` into `dir`: a sparse private copy of its RAM file and a fresh disk
 * layer over its disk. The returned mode launches over them (launch.ts, `seeding`).
 */
export async function stageSeededSnapshot(base: SnapshotMode, dir: string): Promise<SnapshotMode> {
  await removeAbandoned(path.dirname(dir))
  const staging = `${dir}.staging-${process.pid}`
  await fs.rm(staging, { recursive: true, force: true })
  await fs.mkdir(staging, { recursive: true, mode: 0o700 })
  const files = snapshotFiles(staging)
  // cp keeps the holes: the guest touched about half of its RAM. (execa loads in 0.1 s: not on the restore path.)
  const { execa } = await import('execa')
  await execa('cp', ['--sparse=always', '--reflink=auto', base.files.ram, files.ram])
  // Then every page is given its block: the guest's RAM is this file, mapped shared, and a page it
  // touches in a hole of a full disk would kill QEMU (SIGBUS). A full disk fails here, before the VM stops serving.
  await execa('fallocate', ['-l', String((await fs.stat(base.files.ram)).size), files.ram])
  await createOverlay(files.disk, base.files.disk)
  return { kind: 'snapshot', files: { ...files, state: base.files.state, seed: base.files.seed }, record: base.record, seeding: true }
}

/** Saves the seeding VM as the seeded snapshot in `dir` and stops it; the seeded snapshot comes held for this process. */
export async function saveSeededSnapshot(
  ctx: Context,
  proc: QemuProcess,
  slot: Slot,
  staged: SnapshotMode,
  dir: string,
  meta: unknown,
): Promise<{ mode: SnapshotMode; hold: SnapshotHold }> {
  await withGuestAgent(agentSocketPath(ctx, slot), 30_000, (agent) => unplugShare(ctx.manifest, proc, agent))
  await saveDeviceState(ctx, proc, path.join(staged.files.dir, 'state'))
  await proc.stop()
  await sparseCopy(staged.files.ram)
  return withSnapshotLock(dir, async () => {
    await discardSnapshot(dir)
    await clearDropping(dir)
    await copySeed(staged.files.seed, snapshotFiles(staged.files.dir).seed)
    await fs.rename(staged.files.dir, dir)
    const files = snapshotFiles(dir)
    await createOverlay(files.emptyOverlay, files.disk)
    const record = await writeRecord(files, staged.record.fingerprint, staged.record.guestPorts, staged.record.internalKey, {
      base: staged.record.stateSha256,
      meta,
    })
    await ownerOnly(dir)
    // Held before the lock goes: a drop takes the lock first, and then sees the hold.
    const hold = (await holdSnapshot(dir)) ?? { release: async () => {} }
    return { mode: { kind: 'snapshot', files, record }, hold }
  })
}

/**
 * Drops the seeded snapshots of `ready` that no restore can use again (all but `keep`): those taken over
 * an earlier capture of it, and those whose meta `retired` names. Each is a copy of the RAM the
 * guest touched (about 190 MB with the fixture), so a cache seeded for many config files, or for
 * temporary ones, would otherwise only grow. One being saved right now has no record yet, and one
 * a running VM holds still serves its resets: both kept. (snapshot.ts bounds how many are kept.)
 */
export async function sweepSeededSnapshots(ready: SnapshotMode, retired: (meta: unknown) => boolean, keep: string | undefined): Promise<void> {
  const kept = keep && seededSnapshotFolder(ready.files, keep)
  for (const { dir } of await seededSnapshotsOf(ready.files.dir)) {
    if (dir === kept) continue
    await withSnapshotLock(dir, async () => {
      const record = await readJson<SnapshotRecord>(snapshotFiles(dir).record)
      if (record && (record.base !== ready.record.stateSha256 || retired(record.meta))) await dropUnlessHeld(dir)
    })
  }
}

/** Gives back the blocks of the pages the guest never touched (stageSeededSnapshot allocated them all). */
async function sparseCopy(file: string): Promise<void> {
  const { execa } = await import('execa')
  await execa('cp', ['--sparse=always', file, `${file}.sparse`])
  await fs.rename(`${file}.sparse`, file)
}

/** Drops a staged seeded snapshot that will not be saved. */
export async function discardStaged(staged: SnapshotMode): Promise<void> {
  await fs.rm(staged.files.dir, { recursive: true, force: true })
}
