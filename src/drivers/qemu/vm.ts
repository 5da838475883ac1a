/**
 * The QEMU driver: the running VM is either restored from the `ready` snapshot (default) or
 * cold-booted on the instance's own disk (snapshot: false, or when no snapshot can be had), and
 * a reset brings it back on the same host ports.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import type {
  Capabilities,
  SeededSnapshotCheck,
  SeededSnapshotOpened,
  SeededSnapshotPolicy,
  SeededSnapshots,
  ResetResult,
  RunningInstance,
  ServiceLogQuery,
  ServiceLogs,
  InstanceOrigin,
} from '../types.js'
import { StackEmulatorError } from '../../errors.js'
import { chooseAccel } from './accel.js'
import { machineShape, qemuBinaryFor, type Forward } from './argv.js'
import { findQemu } from './binary.js'
import { readySnapshot, type ReadySnapshot } from './capture.js'
import { platform } from '../../image/manifest.js'
import { diskFull, local, localFailure } from '../../local-failure.js'
import { readQemuSettings } from './settings.js'
import { Stopwatch } from '../../stopwatch.js'
import {
  agentSocketPath,
  firstLine,
  launchReady,
  overlayPath,
  privateRamCopies,
  qmpSocketPath,
  resolvedForwards,
  forwardedUrls,
  type Context,
  type QemuStartOptions,
  type Mode,
  type Slot,
  type SnapshotMode,
} from './launch.js'
import { guestExec, withGuestAgent } from './guest-agent.js'
import { readServiceLogs } from './service-logs.js'
import { seededSnapshotFolder, discardStaged, findSeededSnapshot, saveSeededSnapshot, stageSeededSnapshot, sweepSeededSnapshots } from './seeded-snapshot.js'
import type { QemuProcess } from './process.js'
import { exitReason, oomKills } from './exit-reason.js'
import { moveForwards, portName, portsLost, portTaken, takeBack } from './forwards.js'
import { boundSeededSnapshots, checkFiles, discardSnapshot, type SnapshotHold } from './snapshot.js'
import { formatBytes } from '../../files.js'
import { pollUntil } from '../../poll.js'
import { HostShare } from '../host-share.js'

export async function startQemuVm(options: QemuStartOptions): Promise<QemuVm> {
  const { manifest, settings } = options
  const stopwatch = new Stopwatch()
  const own = readQemuSettings(settings.env)
  const qemu = await findQemu(qemuBinaryFor(platform(manifest).arch, own.binary), settings.cacheRoot)
  const decision = await chooseAccel({ choice: own.accel, qemu, cacheRoot: settings.cacheRoot })
  if (decision.warning) options.log(decision.warning)
  const ctx: Context = {
    options,
    manifest,
    binary: qemu.path,
    shape: machineShape(manifest, decision.accel, options.memoryMb),
    instanceDir: options.instanceDir,
    debug: settings.debug ? (line) => process.stderr.write(`stack-emulator: ${line}\n`) : undefined,
    stopwatch,
    share: manifest.hostShare ? new HostShare(options.instanceDir, manifest.credentials?.internalKey?.file) : undefined,
  }
  assertFixedPorts(options)
  await ctx.share?.prepare()
  stopwatch.lap('QEMU probe')
  const forwards = manifest.services.map((s) => ({ guestPort: s.guestPort, hostPort: options.ports[s.name] ?? 0 }))

  if (options.snapshot) {
    const snapshot = await readySnapshot(ctx, qemu.version)
    stopwatch.lap('snapshot lookup or capture')
    if (snapshot) {
      const ready: SnapshotMode = { kind: 'snapshot', files: snapshot.files, record: snapshot.record }
      const seededSnapshot =
        options.seededSnapshot &&
        (await findSeededSnapshot(seededSnapshotFolder(ready.files, options.seededSnapshot.slot), ready, options.seededSnapshot.check))
      if (seededSnapshot && 'mode' in seededSnapshot) {
        try {
          return await QemuVm.create(ctx, seededSnapshot.mode, forwards, false, {
            ready,
            current: { slot: options.seededSnapshot!.slot, meta: seededSnapshot.meta },
            hold: seededSnapshot.hold,
          })
        } catch (error) {
          await seededSnapshot.hold.release()
          await explainRestoreFailure(ctx, seededSnapshot.mode, error)
        }
      }
      try {
        return await QemuVm.create(ctx, ready, forwards, false, { ready })
      } catch (error) {
        await explainRestoreFailure(ctx, snapshot, error)
      }
    }
  }
  // Falling back from snapshots, the user still expects a clean VM: a fresh disk.
  return QemuVm.create(ctx, { kind: 'cold' }, forwards, options.snapshot || options.fresh)
}

/** An image that bakes its host ports into its snapshot cannot take ports chosen at launch. */
function assertFixedPorts({ manifest, ports }: QemuStartOptions): void {
  if (manifest.runtimeVolume?.hostPortsInSnapshot !== true) return
  const unset = manifest.services.filter((s) => !ports[s.name]).map((s) => s.name)
  if (unset.length === 0) return
  throw new StackEmulatorError(
    `Image ${manifest.name} builds its URLs from its host ports, so every service needs a fixed one; ${unset.join(', ')} ${unset.length === 1 ? 'has' : 'have'} none`,
    {
      code: 'BAD_OPTION',
      fix: `Give them ports (ports: { ${unset.map((n) => `'${n}': <port>`).join(', ')} }, or --port ${unset[0]}=<port>), or set hostPort in the manifest.`,
    },
  )
}

/**
 * A failed restore: rethrows what a cold boot would not fix (a busy port, a full or read-only
 * folder); otherwise says why and drops the snapshot only when its files prove it bad.
 */
async function explainRestoreFailure(ctx: Context, snapshot: ReadySnapshot, error: unknown): Promise<void> {
  if (error instanceof StackEmulatorError && ['PORT_BUSY', 'DISK_FULL', 'READ_ONLY'].includes(error.code)) throw error
  const details = error instanceof StackEmulatorError && error.details ? `: ${error.details.replace(/\s+/g, ' ').slice(0, 300)}` : ''
  const reason = `${firstLine(error)}${details}`
  const bad = localFailure(error, ctx.instanceDir) ? undefined : await checkFiles(snapshot.files, snapshot.record, true)
  if (bad) {
    ctx.options.log(`Restoring the ready snapshot failed (${reason}) and ${bad}: dropping it; cold booting instead and capturing it again next time.`)
    await discardSnapshot(snapshot.files.dir)
  } else {
    ctx.options.log(`Restoring the ready snapshot failed (${reason}); its files are intact, so it is kept; cold booting instead.`)
  }
}

interface Spare {
  proc: QemuProcess
  slot: Slot
  /** Its private host ports. */
  forwards: Forward[]
}

/** How often a VM paused by a full disk is asked to continue. */
const RESUME_INTERVAL_MS = 2000

/** The ready snapshot a VM was restored from, and the seeded snapshot its resets return to, if any, held while they may. */
interface SeededSnapshotState {
  ready: SnapshotMode
  current?: { slot: string; meta: unknown }
  hold?: SnapshotHold
}

/** The QEMU driver's running instance: one VM, relaunched in place by resets. */
export class QemuVm implements RunningInstance {
  readonly driver = 'qemu'
  readonly capabilities: Capabilities
  /** Present when restored from a ready snapshot: a cold-booted VM has none to take a seeded snapshot over. */
  readonly seededSnapshots: SeededSnapshots | undefined
  /** Where it is in its life: an exit of its QEMU is a crash only while it serves (not while a reset, save or port move replaces or stops that QEMU). */
  private life: 'serving' | 'changing' | 'stopped' = 'serving'
  /** A seeded snapshot being seeded: the running VM was launched over it. */
  private staged: { mode: SnapshotMode; dir: string; slot: string } | undefined
  private diskFull: StackEmulatorError | undefined
  /** Host ports another process took at a reset, which the running QEMU lacks until it takes them back. */
  private lostForwards: Forward[] = []
  private portProblem: StackEmulatorError | undefined
  private takingBack: Promise<void> | undefined
  private slot: Slot = 'main'
  private spare: Promise<Spare | undefined> | undefined
  private resolveDied!: (reason: string) => void
  readonly died = new Promise<string>((resolve) => (this.resolveDied = resolve))
  urls: Record<string, string> = {}
  startupPhases: Record<string, number> = {}
  readonly shared: HostShare | undefined

  private constructor(
    private readonly ctx: Context,
    private mode: Mode,
    private forwards: Forward[],
    private proc: QemuProcess,
    public origin: InstanceOrigin,
    private readonly seededState: SeededSnapshotState | undefined,
  ) {
    this.shared = ctx.share
    this.capabilities = { snapshots: true, reset: true, clock: Boolean(ctx.manifest.clock || ctx.manifest.guestAgent), lifecycle: true }
    this.seededSnapshots = seededState && {
      get current() {
        return seededState.current
      },
      open: (slot, check, stage) => this.openSeededSnapshot(slot, check, stage),
      save: (meta, policy) => this.saveSeededSnapshot(meta, policy),
    }
  }

  static async create(ctx: Context, mode: Mode, requested: Forward[], fresh: boolean, seededState?: SeededSnapshotState): Promise<QemuVm> {
    if (fresh) await fs.rm(overlayPath(ctx, mode.kind), { force: true })
    const proc = await launchReady(ctx, mode, requested)
    if (mode.kind === 'cold') ctx.stopwatch?.lap('cold boot')
    try {
      const vm = new QemuVm(
        { ...ctx, stopwatch: undefined },
        mode,
        await resolvedForwards(proc, requested),
        proc,
        mode.kind === 'snapshot' ? 'snapshot' : 'cold-boot',
        seededState,
      )
      vm.urls = forwardedUrls(ctx.manifest, vm.forwards)
      vm.startupPhases = ctx.stopwatch?.phases ?? {}
      vm.watch(proc)
      return vm
    } catch (error) {
      await proc.stop()
      throw error
    }
  }

  /** The QEMU process's id. */
  get id(): string {
    return String(this.proc.pid)
  }

  get accel(): string {
    return this.ctx.shape.accel
  }

  async reset(): Promise<ResetResult> {
    const started = performance.now()
    // With no spare, one is made now: the running VM keeps its host ports (and serves) until the
    // new one takes them over; stopping it first would leave them free for the whole restore.
    const spare = (await this.takeSpare()) ?? (this.mode.kind === 'snapshot' && !this.staged ? await this.prepareSpare() : undefined)
    if (spare && !this.staged && (await this.swapIn(spare))) {
      this.spare = this.prepareSpare()
    } else {
      await spare?.proc.stop()
      await this.restart(async () => {
        await this.dropStaged() // a seeded snapshot being seeded is given up: back to where resets return
        if (this.mode.kind === 'cold') await fs.rm(overlayPath(this.ctx, this.mode.kind), { force: true })
        return this.relaunch() // same host ports as before, so URLs handed out earlier keep working
      }, true)
    }
    return { durationMs: Math.round(performance.now() - started), origin: this.origin }
  }

  /**
   * Makes `slot` where resets return to: restored when it was saved before and `check` accepts
   * it; else (with `stage`) the VM restarts over a staged copy of the ready snapshot, to be seeded and saved.
   */
  async openSeededSnapshot(slot: string, check: SeededSnapshotCheck, stage: boolean): Promise<SeededSnapshotOpened> {
    const seededState = this.seededSnapshotRequired()
    const dir = seededSnapshotFolder(seededState.ready.files, slot)
    const found = await findSeededSnapshot(dir, seededState.ready, check)
    if (!('mode' in found) && !stage) return { opened: 'missing', reason: found.reason }
    if ('mode' in found) {
      let held = false
      try {
        await (await this.takeSpare())?.proc.stop()
        await this.restart(async () => {
          await this.dropStaged()
          this.mode = found.mode
          await this.returnTo({ slot, meta: found.meta }, found.hold)
          held = true
          return this.relaunch()
        })
      } finally {
        if (!held) await found.hold.release()
      }
      return { opened: 'restored', meta: found.meta }
    }
    // Staged before the running VM is touched: a cache that cannot take it (read-only, full) leaves the VM serving.
    await this.dropStaged()
    let mode: SnapshotMode
    try {
      mode = await local(path.dirname(dir), () => stageSeededSnapshot(seededState.ready, dir))
    } catch (error) {
      return { opened: 'missing', reason: `${found.reason}, and one cannot be staged (${firstLine(error)})` }
    }
    this.staged = { mode, dir, slot }
    await (await this.takeSpare())?.proc.stop()
    await this.restart(() => launchReady(this.ctx, mode, this.forwards, this.slot))
    return { opened: 'seeding', reason: found.reason }
  }

  /** Saves the seeded VM as its seeded snapshot, and restarts from it. On failure, resets return where they did. */
  async saveSeededSnapshot(meta: unknown, policy: SeededSnapshotPolicy): Promise<void> {
    const seededState = this.seededSnapshotRequired()
    const staged = this.staged
    if (!staged) throw new StackEmulatorError('No seeded snapshot is being seeded', { code: 'SNAPSHOT' })
    let failure: unknown
    // Its QEMU stops once saved: that is no crash.
    await this.changing(async () => {
      // Its files go to the snapshot store (the cache), not the instance folder: a full disk names that.
      const saving = local(path.dirname(staged.dir), () => saveSeededSnapshot(this.ctx, this.proc, this.slot, staged.mode, staged.dir, meta))
      const watching = new AbortController()
      try {
        // A guest paused on a full disk answers nothing: fail at once rather than after the agent's timeout.
        const saved = await Promise.race([saving, this.pausedOnFullDisk(watching.signal)])
        this.mode = saved.mode
        await this.returnTo({ slot: staged.slot, meta }, saved.hold)
        this.staged = undefined
      } catch (error) {
        failure = this.diskFull ? diskFull(this.diskFolder(), this.diskFull.message, error) : error
        // The save may still be under way: it ends with its QEMU, before the staged files are dropped.
        await this.proc.stop()
        await saving.catch(() => {})
      } finally {
        watching.abort()
      }
    })
    await this.restart(async () => {
      await this.dropStaged()
      return this.relaunch()
    })
    if (failure) throw failure
    await sweepSeededSnapshots(seededState.ready, policy.retired, seededState.current?.slot).catch((error: Error) =>
      this.ctx.options.log(`Could not drop unusable seeded snapshots (${firstLine(error)}).`),
    )
    await this.boundStore(staged.dir, policy)
  }

  /** The store keeps at most so many seeded snapshots (settings): the least recently used beyond go, in one line. */
  private async boundStore(saved: string, policy: SeededSnapshotPolicy): Promise<void> {
    const { cacheRoot, env } = this.ctx.options.settings
    const max = readQemuSettings(env).maxSeededSnapshots
    const dropped = await boundSeededSnapshots(cacheRoot, max, saved).catch((error: Error) => {
      this.ctx.options.log(`Could not bound the seeded snapshots to ${max} (${firstLine(error)}).`)
      return []
    })
    if (dropped.length === 0) return
    const each = dropped.map((s) => `${policy.describe(s.record?.meta)} (last used ${new Date(s.lastUsedMs).toISOString().slice(0, 16).replace('T', ' ')})`)
    const freed = formatBytes(dropped.reduce((sum, s) => sum + s.bytes, 0))
    this.ctx.options.log(
      `dropped ${dropped.length === 1 ? 'the seeded snapshot' : `${dropped.length} seeded snapshots`} used least recently, to keep at most ${max} (STACK_EMULATOR_MAX_SEEDED_SNAPSHOTS): ${each.join(', ')}; freed ${freed}`,
    )
  }

  /** Resets return to `current` from now on; its hold replaces the one on where they returned before. */
  private async returnTo(current: { slot: string; meta: unknown } | undefined, hold: SnapshotHold | undefined): Promise<void> {
    const seededState = this.seededState!
    const previous = seededState.hold
    seededState.current = current
    seededState.hold = hold
    if (previous !== hold) await previous?.release()
  }

  private seededSnapshotRequired(): SeededSnapshotState {
    if (!this.seededState || this.mode.kind !== 'snapshot')
      throw new StackEmulatorError('Seeded snapshots need a VM restored from its ready snapshot', { code: 'SNAPSHOT' })
    return this.seededState
  }

  private async dropStaged(): Promise<void> {
    if (this.staged) await discardStaged(this.staged.mode)
    this.staged = undefined
  }

  private async takeSpare(): Promise<Spare | undefined> {
    const spare = await this.spare
    this.spare = undefined
    return spare
  }

  /**
   * Replaces the running QEMU by what `launch` starts (after the old one is gone). After a reset
   * it keeps a spare: a VM reset once is likely reset again (per-test resets, watch mode).
   */
  private async restart(launch: () => Promise<QemuProcess>, keepSpare = false): Promise<void> {
    await this.changing(async () => {
      await this.proc.stop()
      this.proc = await launch()
      this.watch(this.proc)
      this.portsBack(this.forwards) // it listens on every port
    })
    if (keepSpare && this.mode.kind === 'snapshot' && this.life !== 'stopped' && !this.staged) this.spare = this.prepareSpare()
  }

  /** Runs `change` as 'changing' (a QEMU that exits meanwhile is no crash); back to serving after, unless stopped meanwhile. */
  private async changing<T>(change: () => Promise<T>): Promise<T> {
    if (this.life === 'serving') this.life = 'changing'
    try {
      return await change()
    } finally {
      if (this.life === 'changing') this.life = 'serving'
    }
  }

  /** A plain restore on the same ports; when it fails, a cold boot that keeps the suites served. */
  private async relaunch(): Promise<QemuProcess> {
    try {
      return await launchReady(this.ctx, this.mode, this.forwards, this.slot)
    } catch (error) {
      if (this.mode.kind !== 'snapshot') throw error
      await explainRestoreFailure(this.ctx, this.mode, error)
      if (this.seededState?.current) {
        // A seeded snapshot that will not restore: back to the ready snapshot (the suites mint anew).
        this.mode = this.seededState.ready
        await this.returnTo(undefined, undefined)
        return this.relaunch()
      }
      this.mode = { kind: 'cold' }
      this.origin = 'cold-boot'
      this.slot = 'main'
      await fs.rm(overlayPath(this.ctx, this.mode.kind), { force: true })
      return launchReady(this.ctx, this.mode, this.forwards)
    }
  }

  /** Rejects with the pause's error once QEMU pauses the guest on a full disk (until `signal` aborts). */
  private async pausedOnFullDisk(signal: AbortSignal): Promise<never> {
    throw (await pollUntil(() => this.diskFull, { timeoutMs: Infinity, intervalMs: 100, signal }))!
  }

  /** Where the running VM's disk overlay grows: a VM being seeded writes into the snapshot store. */
  private diskFolder(): string {
    return this.staged ? path.dirname(this.staged.dir) : this.ctx.instanceDir
  }

  problem(): StackEmulatorError | undefined {
    return this.diskFull ?? this.portProblem
  }

  get note(): string | undefined {
    return this.ctx.note
  }

  /**
   * As Stack Auth's script has it: a guest booted with its VM folder tees the services' output into
   * `stack.log` there, through the share; a restored guest's services started without one (the
   * capture's), so their output is in their unit's journal, read through the agent.
   */
  async serviceLogs(query?: ServiceLogQuery): Promise<ServiceLogs | undefined> {
    const shared = this.mode.kind === 'cold' ? this.shared : undefined
    const unit = this.ctx.manifest.serviceUnit
    const socket = agentSocketPath(this.ctx, this.slot)
    return readServiceLogs(
      {
        file: shared && { path: shared.vmFilePath('stack.log'), read: () => shared.readVmFile('stack.log').catch(() => undefined) },
        journal:
          unit && this.ctx.manifest.guestAgent
            ? { unit, vm: String(this.proc.pid), run: (argv) => withGuestAgent(socket, 10_000, (agent) => guestExec(agent, argv, 20_000)) }
            : undefined,
      },
      query,
    )
  }

  async stop(): Promise<void> {
    this.life = 'stopped'
    const spare = await this.spare
    // The guest's last changes to shared config files reach the user's files before it goes.
    await this.shared?.syncBack().catch((error: unknown) => this.ctx.options.log(`Copying back the shared config files failed: ${firstLine(error)}`))
    await Promise.all([this.proc.stop(), spare?.proc.stop()])
    await this.dropStaged()
    await this.seededState?.hold?.release()
    for (const copy of privateRamCopies(this.ctx)) await fs.rm(copy, { force: true })
    for (const slot of ['main', 'spare'] as const) {
      await fs.rm(qmpSocketPath(this.ctx, slot), { force: true })
      if (this.mode.kind === 'snapshot') await fs.rm(overlayPath(this.ctx, this.mode.kind, slot), { force: true })
    }
  }

  /**
   * A spare: the snapshot restored in the other slot, on private ports, resumed and warmed by
   * its health checks. It holds no test's data. Progress is not reported: nobody waits on it.
   */
  private prepareSpare(): Promise<Spare | undefined> {
    const slot: Slot = this.slot === 'main' ? 'spare' : 'main'
    const privatePorts = this.forwards.map((f) => ({ guestPort: f.guestPort, hostPort: 0 }))
    const quiet = { ...this.ctx, options: { ...this.ctx.options, progress: () => {} } }
    return launchReady(quiet, this.mode, privatePorts, slot).then(
      async (proc) => ({ proc, slot, forwards: await resolvedForwards(proc, privatePorts) }),
      () => undefined, // the next reset restores the plain way, and says why if that fails too
    )
  }

  /**
   * The spare takes the instance's host ports from the running VM, which then stops: its open
   * connections close before the reset returns, so no client reuses one into the old state. The
   * spare's clock has run since its restore set it. False when the spare cannot take over; the
   * caller restarts the plain way. A port another process took meanwhile fails the reset
   * (ResetNotDone): the running VM keeps serving, as it was.
   */
  private async swapIn(spare: Spare): Promise<boolean> {
    if (!spare.proc.isAlive) return false
    const old = this.proc
    await this.takingBack // the lost ports as they are now
    const move = await this.changing(() => moveForwards(old, spare.proc, this.forwards, spare.forwards, this.lostForwards))
    if (!move.moved) {
      await spare.proc.stop()
      const lost = move.lost.filter((f) => !this.lostForwards.includes(f))
      this.lostForwards = move.lost
      if (lost.length > 0) await this.watchLostPorts(old)
      if (move.taken) throw await portTaken(this.ctx.manifest, move.taken, move.lost)
      return false
    }
    this.proc = spare.proc
    this.slot = spare.slot
    this.watch(spare.proc)
    this.portsBack(this.forwards)
    await old.stop()
    return true
  }

  /**
   * Ports lost to other processes: acquires are refused meanwhile (`problem`), and the running VM
   * takes them back once their holders let go.
   */
  private async watchLostPorts(proc: QemuProcess): Promise<void> {
    this.portProblem = await portsLost(this.ctx.manifest, this.lostForwards)
    this.ctx.options.log(this.portProblem.message)
    const timer = setInterval(() => {
      if (proc !== this.proc || this.life === 'stopped' || this.lostForwards.length === 0) return clearInterval(timer)
      if (this.life === 'serving')
        this.takingBack ??= takeBack(proc, this.lostForwards)
          .then((back) => {
            if (proc === this.proc) this.portsBack(back)
          })
          .finally(() => (this.takingBack = undefined))
    }, RESUME_INTERVAL_MS)
    timer.unref()
  }

  /** The running QEMU listens on `back` again. */
  private portsBack(back: Forward[]): void {
    if (back.length === 0 || this.lostForwards.length === 0) return
    const had = this.lostForwards
    this.lostForwards = had.filter((f) => !back.includes(f))
    for (const f of had.filter((f) => back.includes(f))) this.ctx.options.log(`The VM took back ${portName(this.ctx.manifest, f)}.`)
    if (this.lostForwards.length === 0) this.portProblem = undefined
    else void portsLost(this.ctx.manifest, this.lostForwards).then((problem) => (this.portProblem = problem))
  }

  private watch(proc: QemuProcess): void {
    this.diskFull = undefined // said of the QEMU this one replaces
    const oomBefore = oomKills() // a SIGKILL while this count rises is most likely the kernel's OOM killer
    void proc.exited.then(async (exit) => {
      if (this.life !== 'serving' || proc !== this.proc) return
      this.resolveDied(`QEMU (pid ${proc.pid}) ${exitReason(exit, await oomBefore, await oomKills())}`)
    })
    // werror=enospc: a full host disk pauses the guest. Say so once, and keep asking it to
    // continue, so it resumes by itself once space is freed.
    proc.qmp.on('event', (event) => {
      if (event.event !== 'BLOCK_IO_ERROR' || !event.data?.nospace || proc !== this.proc || this.diskFull) return
      const folder = this.diskFolder()
      this.diskFull = new StackEmulatorError(`The VM is paused: no space left for its disk in ${folder}`, {
        code: 'DISK_FULL',
        fix: `Free some space there (df -h ${folder}); the VM resumes by itself within seconds.`,
      })
      this.ctx.options.log(this.diskFull.message)
      const timer = setInterval(() => {
        if (proc !== this.proc || !proc.isAlive) return clearInterval(timer)
        void proc.status().then(
          async (status) => {
            if (status !== 'running') return void (await proc.qmp.execute('cont').catch(() => {}))
            clearInterval(timer)
            this.diskFull = undefined
            this.ctx.options.log('The VM resumed: its disk has space again.')
          },
          () => {},
        )
      }, RESUME_INTERVAL_MS)
      timer.unref()
    })
  }
}
