/** The QEMU driver behind the contract: QemuVm (vm.ts) as a RunningInstance. */
import type { ImageManifest } from '../../image/manifest.js'
import type { Checkpoints, Driver, RunningInstance, RunningVm, ServiceLogQuery } from '../types.js'
import type { QemuStartOptions } from './launch.js'
import { startQemuVm } from './vm.js'

export const qemuDriver: Driver<ImageManifest> = {
  name: 'qemu',
  async start(options: QemuStartOptions): Promise<RunningInstance> {
    return new QemuInstance(await startQemuVm(options), Boolean(options.manifest.clock || options.manifest.guestAgent))
  },
}

class QemuInstance implements RunningInstance {
  readonly driver = 'qemu'
  readonly capabilities
  readonly died: Promise<string>
  readonly checkpoints: Checkpoints | undefined

  constructor(
    private readonly vm: RunningVm,
    clock: boolean,
  ) {
    this.capabilities = { snapshots: true, reset: true, clock, lifecycle: true }
    this.died = vm.died
    // A cold-booted VM has no ready snapshot to checkpoint over.
    this.checkpoints = vm.checkpointable
      ? {
          get current() {
            return vm.checkpoint
          },
          open: (slot, check, stage) => vm.openCheckpoint(slot, check, stage),
          save: (meta, policy) => vm.saveCheckpoint(meta, policy),
        }
      : undefined
  }

  get id(): string {
    return String(this.vm.pid)
  }
  get accel(): string {
    return this.vm.accel
  }
  get origin() {
    return this.vm.origin
  }
  get urls() {
    return this.vm.urls
  }
  get startupPhases() {
    return this.vm.startupPhases
  }
  get shared() {
    return this.vm.shared
  }
  get note() {
    return this.vm.note
  }
  reset() {
    return this.vm.reset()
  }
  serviceLogs(query?: ServiceLogQuery) {
    return this.vm.serviceLogs(query)
  }
  problem() {
    return this.vm.problem()
  }
  stop() {
    return this.vm.stop()
  }
}
