/**
 * The QEMU driver: cold boot, snapshot capture and restore, reset on the same host ports.
 * The running VM is always either restored from the `ready` snapshot (default) or cold-booted
 * on the instance's own overlay (snapshot: false, or when capturing failed).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { request } from 'undici'
import type { DriverStartOptions, ResetResult, RunningVm, VmOrigin } from '../types.js'
import type { ImageManifest } from '../../image/manifest.js'
import { packageRoot } from '../../package-root.js'
import { waitHealthy, type HealthTarget } from '../../stack/readiness.js'
import { StackEmulatorError } from '../../errors.js'
import { sha256 } from '../../digest.js'
import { chooseAccel } from './accel.js'
import { buildArgv, machineShape, type Forward, type MachineShape, type RamFile } from './argv.js'
import { createOverlay, findQemu } from './binary.js'
import { QemuProcess, tail } from './process.js'
import {
  discardSnapshot, expectedFingerprint, lookupSnapshot, snapshotDir, snapshotFiles,
  withSnapshotLock, writeRecord, type SnapshotFiles,
} from './snapshot.js'

const COLD_BOOT_TIMEOUT_MS = 180_000
const RESTORE_TIMEOUT_MS = 30_000

interface Context {
  options: DriverStartOptions
  manifest: ImageManifest
  binary: string
  shape: MachineShape
  instanceDir: string
  debug?: (line: string) => void
}

export async function startQemuVm(options: DriverStartOptions): Promise<RunningVm> {
  const { manifest, settings } = options
  const qemu = await findQemu(settings.qemuBinary)
  const decision = await chooseAccel({ choice: settings.accel, qemu, cacheRoot: settings.cacheRoot })
  if (decision.warning) options.log(decision.warning)
  await fs.mkdir(options.instanceDir, { recursive: true, mode: 0o700 })
  const ctx: Context = {
    options,
    manifest,
    binary: qemu.path,
    shape: machineShape(manifest, decision.accel, options.memoryMb),
    instanceDir: options.instanceDir,
    debug: settings.debug ? (line) => process.stderr.write(`[stack-emulator] ${line}\n`) : undefined,
  }
  const forwards = manifest.services.map((s) => ({ guestPort: s.guestPort, hostPort: options.ports?.[s.name] ?? s.hostPort ?? 0 }))

  if (options.snapshot !== false) {
    const files = await readySnapshot(ctx, qemu.version)
    if (files) {
      try {
        return await QemuVm.create(ctx, { kind: 'snapshot', files }, forwards, false)
      } catch (error) {
        if (error instanceof StackEmulatorError && error.code === 'PORT_BUSY') throw error
        options.log(`Restoring the ready snapshot failed (${firstLine(error)}); cold booting instead and capturing it again next time.`)
        await discardSnapshot(files.dir)
      }
    }
  }
  // Falling back from snapshots, the user still expects a clean VM: a fresh disk.
  return QemuVm.create(ctx, { kind: 'cold' }, forwards, options.snapshot !== false || Boolean(options.fresh))
}

type Mode = { kind: 'snapshot'; files: SnapshotFiles } | { kind: 'cold' }

class QemuVm implements RunningVm {
  private stopped = false
  private busy = false
  private resolveDied!: (reason: string) => void
  readonly died = new Promise<string>((resolve) => (this.resolveDied = resolve))
  urls: Record<string, string> = {}

  private constructor(
    private readonly ctx: Context,
    private readonly mode: Mode,
    private forwards: Forward[],
    private proc: QemuProcess,
    public origin: VmOrigin,
  ) {}

  static async create(ctx: Context, mode: Mode, requested: Forward[], fresh: boolean): Promise<QemuVm> {
    if (fresh) await fs.rm(overlayPath(ctx, mode), { force: true })
    const proc = await launchReady(ctx, mode, requested)
    try {
      const vm = new QemuVm(ctx, mode, await resolvedForwards(proc, requested), proc, mode.kind === 'snapshot' ? 'snapshot' : 'cold-boot')
      vm.urls = serviceUrls(ctx.manifest, vm.forwards)
      vm.watch(proc)
      return vm
    } catch (error) {
      await proc.stop()
      throw error
    }
  }

  get pid(): number {
    return this.proc.pid
  }

  get accel(): string {
    return this.ctx.shape.accel
  }

  async reset(): Promise<ResetResult> {
    const started = performance.now()
    this.busy = true
    try {
      await this.proc.stop()
      if (this.mode.kind === 'cold') await fs.rm(overlayPath(this.ctx, this.mode), { force: true })
      // Same host ports as before, so URLs handed out earlier keep working.
      this.proc = await launchReady(this.ctx, this.mode, this.forwards)
      this.watch(this.proc)
    } finally {
      this.busy = false
    }
    return { durationMs: Math.round(performance.now() - started), origin: this.origin }
  }

  async stop(): Promise<void> {
    this.stopped = true
    await this.proc.stop()
    await fs.rm(qmpSocketPath(this.ctx), { force: true })
    if (this.mode.kind === 'snapshot') await fs.rm(overlayPath(this.ctx, this.mode), { force: true })
  }

  consoleTail(lines = 30): Promise<string> {
    return readTail(consolePath(this.ctx), lines)
  }

  private watch(proc: QemuProcess): void {
    void proc.exited.then((exit) => {
      if (this.stopped || this.busy || proc !== this.proc) return
      this.resolveDied(`QEMU (pid ${proc.pid}) exited unexpectedly (${exit.signal ?? `code ${exit.code}`})`)
    })
  }
}

/** Launches (restore or cold boot) and waits until every service is healthy. */
async function launchReady(ctx: Context, mode: Mode, forwards: Forward[]): Promise<QemuProcess> {
  if (mode.kind === 'snapshot') return restore(ctx, mode.files, forwards)
  const overlay = overlayPath(ctx, mode)
  if (!(await exists(overlay))) await createOverlay(overlay, path.join(ctx.manifest.dir, ctx.manifest.disk))
  ctx.options.progress('booting the VM (cold boot)')
  const proc = await QemuProcess.launch({
    binary: ctx.binary,
    argv: buildArgv({ manifest: ctx.manifest, shape: ctx.shape, paths: launchPaths(ctx, overlay, seedFiles()), forwards, ram: undefined }),
    qmpSocket: qmpSocketPath(ctx),
    consoleLog: consolePath(ctx),
    debug: ctx.debug,
  })
  return afterLaunch(ctx, proc, forwards, ctx.options.bootTimeoutMs ?? COLD_BOOT_TIMEOUT_MS, consolePath(ctx))
}

async function restore(ctx: Context, files: SnapshotFiles, forwards: Forward[]): Promise<QemuProcess> {
  const overlay = overlayPath(ctx, { kind: 'snapshot', files })
  await fs.rm(overlay, { force: true })
  await createOverlay(overlay, files.disk)
  ctx.options.progress('restoring the ready snapshot')
  const proc = await QemuProcess.launch({
    binary: ctx.binary,
    argv: buildArgv({
      manifest: ctx.manifest, shape: ctx.shape, paths: launchPaths(ctx, overlay, files.seed), forwards,
      ram: { path: files.ram, share: false }, incoming: true,
    }),
    qmpSocket: qmpSocketPath(ctx),
    consoleLog: consolePath(ctx),
    debug: ctx.debug,
  })
  try {
    await proc.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] })
    await proc.qmp.execute('migrate-incoming', { uri: `exec:cat ${shellQuote(files.state)}` })
    await waitRunning(proc, RESTORE_TIMEOUT_MS)
  } catch (error) {
    await proc.stop()
    const exit = await proc.exited
    throw new StackEmulatorError('The snapshot could not be loaded', {
      code: 'SNAPSHOT', details: tail(exit.stderr, 5) || firstLine(error), cause: error,
    })
  }
  const ready = await afterLaunch(ctx, proc, forwards, RESTORE_TIMEOUT_MS, consolePath(ctx))
  try {
    await syncGuestClock(ctx.manifest, await resolvedForwards(ready, forwards))
  } catch (error) {
    await ready.stop()
    throw error
  }
  return ready
}

/** Waits for health, racing QEMU's exit; stops QEMU on failure so nothing is left running. */
async function afterLaunch(ctx: Context, proc: QemuProcess, requested: Forward[], timeoutMs: number, consoleLog: string): Promise<QemuProcess> {
  try {
    const forwards = await resolvedForwards(proc, requested)
    ctx.options.progress(`waiting for ${ctx.manifest.services.filter((s) => s.health).map((s) => s.name).join(', ')}`)
    await waitHealthy({
      targets: healthTargets(ctx.manifest, forwards),
      deadline: Date.now() + timeoutMs,
      aborted: proc.exited.then((exit) => {
        throw new StackEmulatorError(`QEMU exited while waiting for the services (${exit.signal ?? `code ${exit.code}`})`, {
          code: 'BOOT_FAILED', fix: `See the console log ${consoleLog}.`, details: tail(exit.stderr, 10),
        })
      }),
      consoleTail: () => readTail(consoleLog, 20),
    })
    return proc
  } catch (error) {
    await proc.stop()
    throw error
  }
}

/** Finds (or captures) the snapshot for this configuration; undefined when it cannot be had. */
async function readySnapshot(ctx: Context, qemuVersion: string): Promise<SnapshotFiles | undefined> {
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

async function waitRunning(proc: QemuProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    const status = await Promise.race([
      proc.status(),
      proc.exited.then(() => Promise.reject(new Error('QEMU exited while loading the snapshot'))),
    ])
    if (status === 'running') return
    if (status !== 'inmigrate' && status !== 'prelaunch' && status !== 'paused') throw new Error(`VM status is "${status}" after loading`)
    if (Date.now() > deadline) throw new Error('loading the snapshot did not finish in time')
    await new Promise((r) => setTimeout(r, 5))
  }
}

/** A restored guest wakes with the snapshot's clock: push the host's time through the guest. */
async function syncGuestClock(manifest: ImageManifest, forwards: Forward[]): Promise<void> {
  if (!manifest.clock) return
  const url = serviceUrls(manifest, forwards)[manifest.clock.service] + manifest.clock.path
  const response = await request(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ epoch_ms: Date.now() }),
    signal: AbortSignal.timeout(5000),
  })
  await response.body.dump()
  if (response.statusCode !== 200) {
    throw new StackEmulatorError(`Setting the guest clock failed (HTTP ${response.statusCode} from ${url})`, { code: 'SNAPSHOT' })
  }
}

async function resolvedForwards(proc: QemuProcess, requested: Forward[]): Promise<Forward[]> {
  if (requested.every((f) => f.hostPort !== 0)) return requested
  const bound = await proc.hostForwards()
  return requested.map((f) => ({ guestPort: f.guestPort, hostPort: bound.find((b) => b.guestPort === f.guestPort)?.hostPort ?? f.hostPort }))
}

function serviceUrls(manifest: ImageManifest, forwards: Forward[]): Record<string, string> {
  const urls: Record<string, string> = {}
  for (const service of manifest.services) {
    const forward = forwards.find((f) => f.guestPort === service.guestPort)
    if (forward) urls[service.name] = `http://127.0.0.1:${forward.hostPort}`
  }
  return urls
}

function healthTargets(manifest: ImageManifest, forwards: Forward[]): HealthTarget[] {
  const urls = serviceUrls(manifest, forwards)
  return manifest.services
    .filter((s) => s.health)
    .map((s) => ({ name: s.name, url: urls[s.name] + s.health!.path, status: s.health!.status ?? 200 }))
}

function seedFiles(): { metaData: string; userData: string } {
  const dir = path.join(packageRoot, 'cloud-init')
  return { metaData: path.join(dir, 'meta-data'), userData: path.join(dir, 'user-data') }
}

async function seedDigest(): Promise<string> {
  const seed = seedFiles()
  return sha256(Buffer.concat([await fs.readFile(seed.metaData), await fs.readFile(seed.userData)])).slice(0, 16)
}

function launchPaths(ctx: Context, disk: string, seed: { metaData: string; userData: string }) {
  return { disk, qmpSocket: qmpSocketPath(ctx), consoleLog: consolePath(ctx), seed }
}

/** A restored VM writes to a throw-away overlay; a cold-booted one keeps its disk between runs. */
const overlayPath = (ctx: Context, mode: Mode) => path.join(ctx.instanceDir, mode.kind === 'snapshot' ? 'run.qcow2' : 'disk.qcow2')
const qmpSocketPath = (ctx: Context) => path.join(ctx.instanceDir, 'qmp.sock')
const consolePath = (ctx: { instanceDir: string }) => path.join(ctx.instanceDir, 'console.log')

async function readTail(file: string, lines: number): Promise<string> {
  try {
    return tail(await fs.readFile(file, 'utf8'), lines)
  } catch {
    return '(no console output)'
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(() => true, () => false)
}

/** QEMU's exec: migration URIs go through /bin/sh; our paths are quoted for it. */
function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? ''
}
