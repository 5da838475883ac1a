/**
 * Launching QEMU for the driver: a cold boot on the instance's disk or a restore of the `ready`
 * snapshot, each waited on until every service is healthy (and, after a restore, the guest
 * clock set). Whatever fails stops its QEMU, so nothing is left running.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { httpRequest } from '../../http.js'
import type { DriverStartOptions } from '../types.js'
import { packageRoot } from '../../package-root.js'
import { waitHealthy, type HealthTarget } from '../../stack/readiness.js'
import { healthTargets, serviceUrls } from '../manifest.js'
import { StackEmulatorError } from '../../errors.js'
import { sha256 } from '../../digest.js'
import { platform, type ImageManifest } from '../../image/manifest.js'
import { findUefiFirmware } from './firmware.js'
import { buildArgv, type Forward, type LaunchPaths, type MachineShape } from './argv.js'
import { createOverlay } from './binary.js'
import { syncGuestClock, withGuestAgent, type ClockMethod } from './guest-agent.js'
import type { QmpClient } from './qmp.js'
import { plugShare } from './share-device.js'
import type { HostShare } from '../host-share.js'
import { local } from '../../local-failure.js'
import type { Stopwatch } from '../../stopwatch.js'
import { QemuProcess, tail } from './process.js'
import { writeRuntimeVolume } from './runtime-volume.js'
import type { SnapshotFiles, SnapshotRecord } from './snapshot.js'
import { pollUntil } from '../../poll.js'

const RESTORE_TIMEOUT_MS = 30_000

/** What the QEMU driver starts: the options with its image manifest. */
export type QemuStartOptions = DriverStartOptions & { manifest: ImageManifest }

export interface Context {
  options: QemuStartOptions
  manifest: ImageManifest
  binary: string
  shape: MachineShape
  instanceDir: string
  /** Per snapshot RAM file, itself or a private copy of it when the cache is read-only (QEMU opens it read-write). */
  ramFiles?: Map<string, string>
  /** Where the first start's phases are timed (the bench and `--json` report them); absent later. */
  stopwatch?: Stopwatch
  debug?: (line: string) => void
  /** The share with the guest (manifest `hostShare`), prepared once per VM lifetime (made again if removed). */
  share?: HostShare
  /** This instance's runtime volume (manifest `runtimeVolume`), written once per VM lifetime (again if removed). */
  runtimeVolume?: Promise<string>
  /** How this guest's clock was last set (guest-agent.ts), so a restore does not try what failed. */
  clockMethod?: ClockMethod
  /** Why this instance cold-boots although it could restore (a refused capture): `status` says it. */
  note?: string
}

/** How long the guest agent may take to answer: a cold-booted guest starts it with its services. */
const AGENT_TIMEOUT_MS = 30_000
/** How far the guest clock may be from the host's once set. */
const CLOCK_TOLERANCE_MS = 2000

export interface SnapshotMode {
  kind: 'snapshot'
  files: SnapshotFiles
  record: SnapshotRecord
  /** Running to be seeded (seeded-snapshot.ts): RAM mapped shared over a private copy, its disk layer written in place. */
  seeding?: true
}

export type Mode = SnapshotMode | { kind: 'cold' }

/** Which set of files a QEMU process uses: a warm spare runs beside the VM, in the other slot. */
export type Slot = 'main' | 'spare'

/** Launches (restore or cold boot) and waits until every service is healthy. */
export async function launchReady(ctx: Context, mode: Mode, forwards: Forward[], slot: Slot = 'main'): Promise<QemuProcess> {
  if (mode.kind === 'snapshot') return restore(ctx, mode, forwards, slot)
  const overlay = overlayPath(ctx, mode.kind)
  if (!(await exists(overlay))) await local(ctx.instanceDir, () => createOverlay(overlay, path.join(ctx.manifest.dir, ctx.manifest.disk)))
  ctx.options.progress('booting the VM (cold boot)')
  const paths = await launchPaths(ctx, overlay, seedFiles())
  const proc = await local(ctx.instanceDir, () =>
    QemuProcess.launch({
      binary: ctx.binary,
      // A cold-booted guest mounts its share at boot and publishes its key through it itself.
      argv: buildArgv({ manifest: ctx.manifest, shape: ctx.shape, paths, forwards, ram: undefined, shareAttached: true }),
      qmpSocket: qmpSocketPath(ctx),
      consoleLog: consolePath(ctx),
      debug: ctx.debug,
    }),
  )
  return afterLaunch(ctx, proc, forwards, ctx.options.bootTimeoutMs, consolePath(ctx))
}

async function restore(ctx: Context, { files, record, seeding }: SnapshotMode, forwards: Forward[], slot: Slot): Promise<QemuProcess> {
  const overlay = seeding ? files.disk : overlayPath(ctx, 'snapshot', slot)
  const ram = seeding
    ? files.ram
    : await local(ctx.instanceDir, async () => {
        // A new file (copy, then rename): a QEMU still letting go of the old one keeps its own.
        await fs.copyFile(files.emptyOverlay, `${overlay}.tmp`) // a copy takes under 1 ms; qemu-img, tens
        await fs.rename(`${overlay}.tmp`, overlay)
        return writableRam(ctx, files)
      })
  const paths = await launchPaths(ctx, overlay, files.seed, slot)
  ctx.stopwatch?.lap('prepare files')
  ctx.options.progress('restoring the ready snapshot')
  // The device state reaches QEMU as an inherited descriptor (fd 3): no shell, no extra process.
  const state = await fs.open(files.state, 'r')
  let proc: QemuProcess
  try {
    proc = await local(ctx.instanceDir, () =>
      QemuProcess.launch({
        binary: ctx.binary,
        argv: buildArgv({ manifest: ctx.manifest, shape: ctx.shape, paths, forwards, ram: { path: ram, share: Boolean(seeding) }, incoming: true }),
        qmpSocket: qmpSocketPath(ctx, slot),
        consoleLog: consolePath(ctx, slot),
        debug: ctx.debug,
        extraFd: state.fd,
      }),
    )
  } finally {
    await state.close()
  }
  ctx.stopwatch?.lap('QEMU launch')
  try {
    await proc.qmp.execute('migrate-set-capabilities', { capabilities: [{ capability: 'x-ignore-shared', state: true }] })
    await proc.qmp.execute('migrate-incoming', { uri: 'fd:3' })
    await waitRunning(proc, RESTORE_TIMEOUT_MS)
  } catch (error) {
    await proc.stop()
    const exit = await proc.exited
    throw new StackEmulatorError('The snapshot could not be loaded', {
      code: 'SNAPSHOT',
      details: tail(exit.stderr, 5) || firstLine(error),
      cause: error,
    })
  }
  ctx.stopwatch?.lap('restore')
  // The guest's share, key and clock are put back while its services are probed.
  const restored = afterRestore(ctx, proc, slot, record)
  restored.catch(() => {}) // awaited below, once the probes are done
  const ready = await afterLaunch(ctx, proc, forwards, RESTORE_TIMEOUT_MS, consolePath(ctx, slot))
  ctx.stopwatch?.lap('first healthy probe')
  try {
    await restored
    if (ctx.manifest.clock) await pushGuestClock({ ...ctx.manifest, clock: ctx.manifest.clock }, await resolvedForwards(ready, forwards))
  } catch (error) {
    await ready.stop()
    throw error
  }
  ctx.stopwatch?.lap('share and clock')
  return ready
}

/**
 * What a restored guest lacks: the 9p share, never in a snapshot, plugged and mounted as Stack
 * Auth's script does (share-device.ts); the internal key in the VM folder, which the captured guest
 * could not publish; the clock, which stands at the capture's time.
 */
async function afterRestore(ctx: Context, proc: QemuProcess, slot: Slot, record: SnapshotRecord): Promise<void> {
  const { manifest, share } = ctx
  const key = manifest.credentials?.internalKey
  if (share && key && record.internalKey) await share.writeVmFile(key.file, record.internalKey)
  if (!manifest.guestAgent) return
  await withGuestAgent(agentSocketPath(ctx, slot), AGENT_TIMEOUT_MS, async (agent) => {
    await plugShare(manifest, proc, agent)
    if (!manifest.clock) await setClock(ctx, proc, agent)
  })
}

/**
 * Sets the guest clock and checks it: a guest left at the snapshot's time mints tokens that are
 * already expired on the host. A clock that cannot be set is said in one line, not fatal (a VM
 * stopped meanwhile, such as a spare given up, says nothing).
 */
async function setClock(ctx: Context, proc: QemuProcess, agent: QmpClient): Promise<void> {
  try {
    const { method, skewMs } = await syncGuestClock(agent, ctx.clockMethod)
    ctx.clockMethod = method
    if (Math.abs(skewMs) > CLOCK_TOLERANCE_MS)
      ctx.options.log(`The guest clock is ${skewMs} ms off the host's after setting it (${method}); tokens it mints may look expired or not yet valid.`)
  } catch (error) {
    if (proc.isAlive)
      ctx.options.log(
        `Setting the guest clock through its agent failed (${firstLine(error)}); it stands at the snapshot's time, so tokens it mints may look expired.`,
      )
  }
}

/**
 * QEMU opens a RAM file read-write even to map it privately: on a read-only cache, restore from
 * a private copy in the instance folder (made once per VM lifetime, shared by its spare).
 */
async function writableRam(ctx: Context, files: SnapshotFiles): Promise<string> {
  ctx.ramFiles ??= new Map()
  const known = ctx.ramFiles.get(files.ram)
  if (known && (await exists(known))) return known // gone with a removed instance folder: copied again
  let ram = files.ram
  if (
    !(await fs.access(files.ram, fs.constants.W_OK).then(
      () => true,
      () => false,
    ))
  ) {
    ram = path.join(ctx.instanceDir, `snapshot-ram-${ctx.ramFiles.size}`)
    ctx.options.log(`The snapshot cache is read-only; restoring from a private copy of its RAM file (${ram}).`)
    // Sparse, as the guest touched about half of it; removed at stop (privateRamCopies).
    const { execa } = await import('execa')
    await execa('cp', ['--sparse=always', files.ram, `${ram}.tmp`])
    await fs.rename(`${ram}.tmp`, ram)
  }
  ctx.ramFiles.set(files.ram, ram)
  return ram
}

/** The private RAM copies writableRam made for this VM (none on a writable cache). */
export function privateRamCopies(ctx: Context): string[] {
  return [...(ctx.ramFiles ?? new Map<string, string>()).entries()].filter(([cached, copy]) => cached !== copy).map(([, copy]) => copy)
}

/** Waits for health, racing QEMU's exit; stops QEMU on failure so nothing is left running. */
export async function afterLaunch(ctx: Context, proc: QemuProcess, requested: Forward[], timeoutMs: number, consoleLog: string): Promise<QemuProcess> {
  try {
    const forwards = await resolvedForwards(proc, requested)
    ctx.options.progress(
      `waiting for ${ctx.manifest.services
        .filter((s) => s.health)
        .map((s) => s.name)
        .join(', ')}`,
    )
    await waitHealthy({
      targets: forwardedHealthTargets(ctx.manifest, forwards),
      timeoutMs,
      // A restored guest answers within a few hundred ms: probe it eagerly.
      intervalMs: timeoutMs <= RESTORE_TIMEOUT_MS ? 10 : 50,
      aborted: proc.exited.then((exit) => {
        throw new StackEmulatorError(`QEMU exited while waiting for the services (${exit.signal ?? `code ${exit.code}`})`, {
          code: 'BOOT_FAILED',
          fix: `See the console log ${consoleLog}.`,
          details: tail(exit.stderr, 10),
        })
      }),
      console: { path: consoleLog, tail: () => readTail(consoleLog, 20) },
    })
    return proc
  } catch (error) {
    await proc.stop()
    throw error
  }
}

async function waitRunning(proc: QemuProcess, timeoutMs: number): Promise<void> {
  await pollUntil(
    async () => {
      const status = await Promise.race([proc.status(), proc.exited.then(() => Promise.reject(new Error('QEMU exited while loading the snapshot')))])
      if (status !== 'running' && status !== 'inmigrate' && status !== 'prelaunch' && status !== 'paused')
        throw new Error(`VM status is "${status}" after loading`)
      return status === 'running'
    },
    { timeoutMs, intervalMs: 5, timeoutError: () => new Error('loading the snapshot did not finish in time') },
  )
}

/** A restored guest wakes with the snapshot's clock: push the host's time through the image's clock endpoint. */
async function pushGuestClock(manifest: ImageManifest & { clock: NonNullable<ImageManifest['clock']> }, forwards: Forward[]): Promise<void> {
  const url = forwardedUrls(manifest, forwards)[manifest.clock.service] + manifest.clock.path
  const { status } = await httpRequest(url, { method: 'POST', json: { epoch_ms: Date.now() }, timeoutMs: 5000 })
  if (status !== 200) {
    throw new StackEmulatorError(`Setting the guest clock failed (HTTP ${status} from ${url})`, { code: 'SNAPSHOT' })
  }
}

export async function resolvedForwards(proc: QemuProcess, requested: Forward[]): Promise<Forward[]> {
  if (requested.every((f) => f.hostPort !== 0)) return requested
  const bound = await proc.hostForwards()
  return requested.map((f) => ({ guestPort: f.guestPort, hostPort: bound.find((b) => b.guestPort === f.guestPort)?.hostPort ?? f.hostPort }))
}

/** Base URL per service, on the host ports QEMU forwards to its guest ports. */
export function forwardedUrls(manifest: ImageManifest, forwards: Forward[]): Record<string, string> {
  const ports = Object.fromEntries(manifest.services.map((s) => [s.name, forwards.find((f) => f.guestPort === s.guestPort)?.hostPort]))
  return serviceUrls(manifest.services, '127.0.0.1', ports)
}

export function forwardedHealthTargets(manifest: ImageManifest, forwards: Forward[]): HealthTarget[] {
  return healthTargets(manifest.services, forwardedUrls(manifest, forwards))
}

export function seedFiles(): { metaData: string; userData: string } {
  const dir = path.join(packageRoot, 'cloud-init')
  return { metaData: path.join(dir, 'meta-data'), userData: path.join(dir, 'user-data') }
}

export async function seedDigest(): Promise<string> {
  const seed = seedFiles()
  return sha256(Buffer.concat([await fs.readFile(seed.metaData), await fs.readFile(seed.userData)])).slice(0, 16)
}

/** The files of one QEMU process; the runtime volume and the share are the instance's, shared by both slots. */
async function launchPaths(ctx: Context, disk: string, seed: { metaData: string; userData: string }, slot: Slot = 'main'): Promise<LaunchPaths> {
  return {
    disk,
    qmpSocket: qmpSocketPath(ctx, slot),
    consoleLog: consolePath(ctx, slot),
    seed,
    firmware: await uefiFirmware(ctx, path.join(ctx.instanceDir, `efi-vars${suffix(slot)}.fd`)),
    runtimeVolume: ctx.manifest.runtimeVolume ? await instanceRuntimeVolume(ctx) : undefined,
    hostShare: ctx.share && (await local(ctx.instanceDir, () => ctx.share!.ensure())),
    guestAgentSocket: ctx.manifest.guestAgent ? agentSocketPath(ctx, slot) : undefined,
  }
}

/**
 * A UEFI image's firmware: the code read-only, and a variable store of this QEMU's own (the guest
 * writes to it, and QEMU locks it), copied from the template once per file.
 */
export async function uefiFirmware(ctx: Context, vars: string): Promise<LaunchPaths['firmware']> {
  if (platform(ctx.manifest).firmware !== 'uefi') return undefined
  const firmware = await findUefiFirmware(platform(ctx.manifest).arch, { qemuBinary: ctx.binary })
  if (!(await exists(vars))) {
    await local(ctx.instanceDir, async () => {
      await fs.copyFile(firmware.varsTemplate, `${vars}.tmp`)
      await fs.rename(`${vars}.tmp`, vars)
    })
  }
  return { code: firmware.code, vars }
}

/**
 * The instance's runtime volume, naming its host ports and VM folder; written at its first launch,
 * and again when the instance folder was removed under the running VM (issue 22).
 */
async function instanceRuntimeVolume(ctx: Context): Promise<string> {
  const iso = path.join(ctx.instanceDir, 'runtime.iso')
  if (ctx.runtimeVolume && !(await exists(iso))) ctx.runtimeVolume = undefined
  ctx.runtimeVolume ??= local(ctx.instanceDir, () =>
    writeRuntimeVolume(iso, { manifest: ctx.manifest, hostPorts: ctx.options.ports, vmDir: ctx.share?.vmDir ?? '' }).then(() => iso),
  )
  ctx.runtimeVolume.catch(() => (ctx.runtimeVolume = undefined))
  return ctx.runtimeVolume
}

/** A restored VM writes to a throw-away overlay; a cold-booted one keeps its disk between runs. */
export const overlayPath = (ctx: Context, kind: Mode['kind'], slot: Slot = 'main') =>
  path.join(ctx.instanceDir, kind === 'snapshot' ? `run${suffix(slot)}.qcow2` : 'disk.qcow2')
export const qmpSocketPath = (ctx: Context, slot: Slot = 'main') => path.join(ctx.instanceDir, `qmp${suffix(slot)}.sock`)
export const consolePath = (ctx: { instanceDir: string }, slot: Slot = 'main') => path.join(ctx.instanceDir, `console${suffix(slot)}.log`)
export const agentSocketPath = (ctx: { instanceDir: string }, slot: Slot = 'main') => path.join(ctx.instanceDir, `qga${suffix(slot)}.sock`)
const suffix = (slot: Slot) => (slot === 'main' ? '' : `-${slot}`)

export async function readTail(file: string, lines: number): Promise<string> {
  try {
    return tail(await fs.readFile(file, 'utf8'), lines)
  } catch {
    return '(no console output)'
  }
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  )
}

export function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0] ?? ''
}
