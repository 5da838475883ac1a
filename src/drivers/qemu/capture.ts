/**
 * Capturing the `ready` snapshot: boot a template with its RAM in a shared file, wait until it
 * is healthy, warm it up, migrate its device state to a file, and freeze the three together.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { request } from 'undici'
import { StackEmulatorError } from '../../errors.js'
import { buildArgv, type RamFile } from './argv.js'
import { createOverlay } from './binary.js'
import { QemuProcess } from './process.js'
import {
  discardSnapshot, expectedFingerprint, lookupSnapshot, snapshotDir, snapshotFiles,
  withSnapshotLock, writeRecord, type SnapshotFiles,
} from './snapshot.js'
import {
  COLD_BOOT_TIMEOUT_MS, afterLaunch, firstLine, healthTargets, resolvedForwards, seedDigest, seedFiles, shellQuote, type Context,
} from './launch.js'

/** Finds (or captures) the snapshot for this configuration; undefined when it cannot be had. */
export async function readySnapshot(ctx: Context, qemuVersion: string): Promise<SnapshotFiles | undefined> {
  const dir = snapshotDir(ctx.options.settings.cacheRoot, ctx.manifest)
  const expected = expectedFingerprint(ctx.manifest, ctx.shape, qemuVersion, await seedDigest())
  const found = await lookupSnapshot(dir, expected)
  if (found.kind === 'usable') return found.files
  if (found.kind === 'unusable') ctx.options.log(`Not using the ready snapshot: ${found.reason}; cold booting and capturing a new one.`)
  try {
    return await withSnapshotLock(dir, async () => {
      const again = await lookupSnapshot(dir, expected) // another process may have captured it meanwhile
      if (again.kind === 'usable') return again.files
      await discardSnapshot(dir)
      await capture(ctx, dir, expected)
      return snapshotFiles(dir)
    })
  } catch (error) {
    ctx.options.log(`Capturing the ready snapshot failed (${firstLine(error)}); using a plain cold boot.`)
    return undefined
  }
}

async function capture(ctx: Context, dir: string, fingerprint: ReturnType<typeof expectedFingerprint>): Promise<void> {
  const staging = `${dir}.staging-${process.pid}`
  const files = snapshotFiles(staging)
  await fs.rm(staging, { recursive: true, force: true })
  await fs.mkdir(path.dirname(files.seed.metaData), { recursive: true, mode: 0o700 })
  const seed = seedFiles()
  await fs.copyFile(seed.metaData, files.seed.metaData)
  await fs.copyFile(seed.userData, files.seed.userData)
  await createOverlay(files.disk, path.join(ctx.manifest.dir, ctx.manifest.disk))
  // The template runs on private ports (0), so it never collides with the instance's ports.
  const forwards = ctx.manifest.services.map((s) => ({ guestPort: s.guestPort, hostPort: 0 }))
  const ram: RamFile = { path: files.ram, share: true }
  const consoleLog = path.join(staging, 'console.log')
  ctx.options.progress('booting the VM to capture the ready snapshot (first start only)')
  let proc: QemuProcess | undefined
  try {
    proc = await QemuProcess.launch({
      binary: ctx.binary,
      argv: buildArgv({ manifest: ctx.manifest, shape: ctx.shape, paths: { disk: files.disk, qmpSocket: path.join(staging, 'qmp.sock'), consoleLog, seed: files.seed }, forwards, ram }),
      qmpSocket: path.join(staging, 'qmp.sock'),
      consoleLog,
      debug: ctx.debug,
    })
    await afterLaunch(ctx, proc, forwards, ctx.options.bootTimeoutMs ?? COLD_BOOT_TIMEOUT_MS, consoleLog)
    // Warm up: a second round of requests, so the snapshot holds hot processes and connections.
    const targets = healthTargets(ctx.manifest, await resolvedForwards(proc, forwards))
    for (const target of targets) await (await request(target.url)).body.dump()
    ctx.options.progress('capturing the ready snapshot')
    await proc.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] })
    await proc.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 10 * 1024 ** 3 })
    await proc.qmp.execute('migrate', { uri: `exec:cat > ${shellQuote(files.state)}` })
    await waitMigrated(proc, 60_000)
    await proc.stop()
    await fs.rm(path.join(staging, 'qmp.sock'), { force: true })
    await writeRecord(files, fingerprint, ctx.manifest.services.map((s) => s.guestPort))
    await fs.rename(staging, dir)
  } catch (error) {
    await proc?.stop()
    await fs.rm(staging, { recursive: true, force: true })
    throw error
  }
}

async function waitMigrated(proc: QemuProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const info = await proc.qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate')
    if (info.status === 'completed') return
    if (info.status === 'failed' || info.status === 'cancelled') {
      throw new StackEmulatorError(`Saving the snapshot failed: ${info['error-desc'] ?? info.status}`, { code: 'SNAPSHOT' })
    }
    if (Date.now() > deadline) throw new StackEmulatorError('Saving the snapshot did not finish in time', { code: 'TIMEOUT' })
    await new Promise((r) => setTimeout(r, 10))
  }
}
