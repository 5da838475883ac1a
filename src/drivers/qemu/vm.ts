/**
 * The QEMU driver: the running VM is either restored from the `ready` snapshot (default) or
 * cold-booted on the instance's own disk (snapshot: false, or when no snapshot can be had), and
 * a reset brings it back on the same host ports.
 */
import fs from 'node:fs/promises'
import type { DriverStartOptions, ResetResult, RunningVm, VmOrigin } from '../types.js'
import { StackEmulatorError } from '../../errors.js'
import { chooseAccel } from './accel.js'
import { machineShape, type Forward } from './argv.js'
import { findQemu } from './binary.js'
import { readySnapshot } from './capture.js'
import { consolePath, firstLine, launchReady, overlayPath, qmpSocketPath, readTail, resolvedForwards, serviceUrls, type Context, type Mode } from './launch.js'
import type { QemuProcess } from './process.js'
import { discardSnapshot } from './snapshot.js'

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
