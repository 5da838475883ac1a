/**
 * Capturing the `ready` snapshot: boot a template with its RAM in a shared file, wait until it
 * is healthy, warm it up, migrate its device state to a file, and freeze the three together.
 */
import { createWriteStream } from 'node:fs'
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { pipeline } from 'node:stream/promises'
import { httpRequest } from '../../http.js'
import { StackEmulatorError } from '../../errors.js'
import { buildArgv, type RamFile } from './argv.js'
import { createOverlay } from './binary.js'
import { QemuProcess } from './process.js'
import {
  copySeed,
  discardSnapshot,
  expectedFingerprint,
  lookupSnapshot,
  ownerOnly,
  readRefusal,
  rememberRefusal,
  removeAbandoned,
  snapshotDir,
  snapshotFiles,
  withSnapshotLock,
  writeRecord,
  type SnapshotFiles,
  type SnapshotFingerprint,
  type SnapshotRecord,
} from './snapshot.js'
import { local, localFailure } from '../../local-failure.js'
import { afterLaunch, uefiFirmware, firstLine, forwardedHealthTargets, resolvedForwards, seedDigest, seedFiles, type Context } from './launch.js'
import { guestReadFile, withGuestAgent } from './guest-agent.js'
import { runtimeVolumeDigest, writeRuntimeVolume } from './runtime-volume.js'
import { pollUntil } from '../../poll.js'

export interface ReadySnapshot {
  files: SnapshotFiles
  record: SnapshotRecord
}

/** Finds (or captures) the snapshot for this configuration; undefined when it cannot be had. */
export async function readySnapshot(ctx: Context, qemuVersion: string): Promise<ReadySnapshot | undefined> {
  const volume = await runtimeVolumeDigest(ctx.manifest, ctx.options.ports)
  const expected = expectedFingerprint(ctx.manifest, ctx.shape, qemuVersion, await seedDigest(), volume)
  const dir = snapshotDir(ctx.options.settings.cacheRoot, ctx.manifest, expected)
  const found = await lookupSnapshot(dir, expected)
  if (found.kind === 'usable') return found
  const refusal = await readRefusal(dir)
  if (refusal) {
    ctx.note = `cold-booted: a capture of the ready snapshot was refused on ${refusal.at} (${refusal.reason}); a new image or QEMU, or \`stack-emulator image prune\`, tries again`
    ctx.options.log(
      `Cold booting: a capture of the ready snapshot was refused on ${refusal.at} (${refusal.reason}). A new image or QEMU, or \`stack-emulator image prune\`, tries again.`,
    )
    return undefined
  }
  if (found.kind === 'unusable') ctx.options.log(`Not using the ready snapshot: ${found.reason}; cold booting and capturing a new one.`)
  try {
    return await local(path.dirname(dir), () =>
      withSnapshotLock(dir, async () => {
        const again = await lookupSnapshot(dir, expected) // another process may have captured it meanwhile
        if (again.kind === 'usable') return again
        await removeAbandoned(path.dirname(dir))
        await discardSnapshot(dir) // a slot without a record, or one proven bad just now
        await capture(ctx, dir, expected)
        const captured = await lookupSnapshot(dir, expected)
        if (captured.kind !== 'usable') throw new Error(captured.kind === 'unusable' ? captured.reason : 'the capture left no record')
        return captured
      }),
    )
  } catch (error) {
    const remembered = error instanceof CaptureRefused && !localFailure(error.cause, dir)
    if (remembered) {
      await rememberRefusal(dir, error.message).catch(() => {})
      ctx.note = `cold-booted: QEMU refused to capture the ready snapshot (${error.message}); later starts cold-boot too, until a new image or QEMU, or \`stack-emulator image prune\``
    }
    ctx.options.log(
      `Capturing the ready snapshot failed (${firstLine(error)}); using a plain cold boot${remembered ? ', now and at later starts (stack-emulator doctor shows why)' : ''}.`,
    )
    return undefined
  }
}

/** QEMU would not save a guest that booted and answered: it would refuse again at the next start. */
class CaptureRefused extends Error {}

/**
 * Boots a template with its RAM in a shared file, waits until it is healthy, warms it up,
 * migrates its device state out, and publishes the slot: the staging folder renamed into place,
 * the empty overlay made beside the disk layer, and the record written last.
 */
async function capture(ctx: Context, dir: string, fingerprint: SnapshotFingerprint): Promise<void> {
  const staging = `${dir}.staging-${process.pid}`
  const files = snapshotFiles(staging)
  await fs.rm(staging, { recursive: true, force: true })
  await copySeed(seedFiles(), files.seed)
  await createOverlay(files.disk, path.join(ctx.manifest.dir, ctx.manifest.disk))
  // The template runs on private ports (0), so it never collides with the instance's ports.
  const forwards = ctx.manifest.services.map((s) => ({ guestPort: s.guestPort, hostPort: 0 }))
  const ram: RamFile = { path: files.ram, share: true }
  const consoleLog = path.join(staging, 'console.log')
  const qmpSocket = path.join(ctx.instanceDir, 'qmp-capture.sock')
  const agentSocket = path.join(ctx.instanceDir, 'qga-capture.sock')
  // As Stack Auth's script captures: the runtime volume names no VM folder (the share is absent).
  const runtimeVolume = ctx.manifest.runtimeVolume ? path.join(staging, 'runtime.iso') : undefined
  if (runtimeVolume) await writeRuntimeVolume(runtimeVolume, { manifest: ctx.manifest, hostPorts: ctx.options.ports, vmDir: '' })
  // A line of its own, not only a phase: on a terminal the next phase overwrites this one at once.
  ctx.options.log(
    'first start of this image: booting it once to capture its ready snapshot (a minute or so under TCG); later starts restore it in about a second',
  )
  ctx.options.progress('booting the VM to capture its ready snapshot')
  let proc: QemuProcess | undefined
  let internalKey: string | undefined
  try {
    proc = await QemuProcess.launch({
      binary: ctx.binary,
      argv: buildArgv({
        manifest: ctx.manifest,
        shape: ctx.shape,
        forwards,
        ram,
        paths: {
          disk: files.disk,
          qmpSocket,
          consoleLog,
          seed: files.seed,
          runtimeVolume,
          hostShare: ctx.share?.root,
          firmware: await uefiFirmware(ctx, path.join(staging, 'efi-vars.fd')),
          guestAgentSocket: ctx.manifest.guestAgent ? agentSocket : undefined,
        },
      }),
      qmpSocket,
      consoleLog,
      debug: ctx.debug,
    })
    await afterLaunch(ctx, proc, forwards, ctx.options.bootTimeoutMs, consoleLog)
    // Warm up: a second round of requests, so the snapshot holds hot processes and connections.
    const targets = forwardedHealthTargets(ctx.manifest, await resolvedForwards(proc, forwards))
    for (const target of targets) await httpRequest(target.url, { timeoutMs: 10_000 })
    // The agent must answer now, or no restore could mount the share or set the clock.
    if (ctx.manifest.guestAgent) {
      const key = ctx.manifest.credentials?.internalKey
      internalKey = await withGuestAgent(agentSocket, 30_000, async (agent) => key && (await guestReadFile(agent, key.guestPath)).trim())
      if (key && !internalKey) throw new StackEmulatorError(`The guest has no internal key in ${key.guestPath}`, { code: 'SNAPSHOT' })
    }
    ctx.options.progress('capturing the ready snapshot')
    try {
      await saveDeviceState(ctx, proc, files.state)
    } catch (error) {
      // The guest booted and answered, yet QEMU would not save it: that recurs on every try.
      throw new CaptureRefused(firstLine(error), { cause: error })
    }
    await proc.stop()
    await fs.rename(staging, dir)
  } catch (error) {
    await proc?.stop()
    await fs.rm(staging, { recursive: true, force: true })
    throw error
  } finally {
    await fs.rm(qmpSocket, { force: true })
    await fs.rm(agentSocket, { force: true })
  }
  const published = snapshotFiles(dir)
  await createOverlay(published.emptyOverlay, published.disk)
  await writeRecord(
    published,
    fingerprint,
    ctx.manifest.services.map((s) => s.guestPort),
    internalKey || undefined,
  )
  await ownerOnly(dir)
}

/** Quiet is under 10 % of one core over half a second; a guest that never gets there is saved after 15 s anyway. */
const QUIET = { windowMs: 500, cpuMs: 50, timeoutMs: 15_000 }

/**
 * Saves a running VM's device state into `file` (its RAM is in its shared file already). The guest
 * goes quiet first, since every restore replays the work it has in flight (a snapshot taken at
 * once had each restore answer four requests whose clients had gone, printing their tracebacks on
 * the serial console). The share's device must not be plugged (share-device.ts).
 */
export async function saveDeviceState(ctx: Context, proc: QemuProcess, file: string): Promise<void> {
  await guestQuiet(proc)
  await proc.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] })
  await proc.qmp.execute('migrate-set-parameters', { 'max-bandwidth': 10 * 1024 ** 3 })
  await migrateToFile(proc, path.join(ctx.instanceDir, 'migrate.sock'), file)
}

async function guestQuiet(proc: QemuProcess): Promise<void> {
  const first = await proc.cpuTimeMs()
  if (first === undefined) return
  let before = first
  // Each check measures the window just waited (so a first pause); at the deadline it is saved anyway.
  await pollUntil(
    async () => {
      const now = await proc.cpuTimeMs()
      if (now === undefined || now - before < QUIET.cpuMs) return true
      before = now
      return false
    },
    { timeoutMs: QUIET.timeoutMs, intervalMs: QUIET.windowMs, waitFirst: true },
  )
}

/** Migrates the running VM's device state into `file` through a unix socket we listen on (no shell). */
export async function migrateToFile(proc: QemuProcess, socketPath: string, file: string): Promise<void> {
  await fs.rm(socketPath, { force: true })
  const server = net.createServer()
  const received = new Promise<void>((resolve, reject) => {
    server.once('connection', (socket) => {
      server.close()
      pipeline(socket, createWriteStream(file, { mode: 0o600 })).then(resolve, reject)
    })
  })
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject)
    server.listen(socketPath, resolve)
  })
  // Never rejects: QEMU only sees its socket close when our write fails, so that error is the cause.
  const writeFailure = received.then(
    () => undefined,
    (error: unknown) => error,
  )
  try {
    await proc.qmp.execute('migrate', { uri: `unix:${socketPath}` })
    await waitMigrated(proc, 60_000)
  } catch (error) {
    throw (await Promise.race([writeFailure, new Promise((r) => setTimeout(r, 1000))])) ?? error
  } finally {
    server.close()
    await fs.rm(socketPath, { force: true })
  }
  const failure = await writeFailure
  if (failure) throw failure
}

async function waitMigrated(proc: QemuProcess, timeoutMs: number): Promise<void> {
  await pollUntil(
    async () => {
      const info = await proc.qmp.execute<{ status?: string; 'error-desc'?: string }>('query-migrate')
      if (info.status === 'failed' || info.status === 'cancelled') {
        throw new StackEmulatorError(`Saving the snapshot failed: ${info['error-desc'] ?? info.status}`, { code: 'SNAPSHOT' })
      }
      return info.status === 'completed'
    },
    { timeoutMs, intervalMs: 10, timeoutError: () => new StackEmulatorError('Saving the snapshot did not finish in time', { code: 'TIMEOUT' }) },
  )
}
