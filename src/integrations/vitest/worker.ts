/**
 * What runs in each Vitest worker (the plugin's setup file, and the `test` fixture): under
 * isolation 'worker', the worker's own VM, acquired once per worker process and released when
 * it ends (its lease is its socket); resets per the `reset` option, on the worker's own VM or on
 * behalf of the run's lease on the shared one.
 */
import { inject } from 'vitest'
import { acquireForWorker, type Emulator } from '../../client/acquire.js'
import { resetInstance } from '../../client/control.js'
import { log } from '../../log.js'
import { contextOf, workerOptions, type IntegrationPlan, type StackEmulatorContext } from '../context.js'

/** Kept on globalThis: a worker re-evaluates modules for each test file, but keeps its VM. */
const WORKER_VM = Symbol.for('stack-emulator.vitest.worker-vm')
type WorkerGlobal = { [WORKER_VM]?: Promise<Emulator>; [key: symbol]: unknown }
let workerVm: Emulator | undefined

/** The plan the globalSetup provided (JSON: the seed itself stays in the main process). */
export function providedPlan(): IntegrationPlan {
  // An internal key, left out of the ProvidedContext that users' inject() sees.
  const plan = (inject as unknown as (key: string) => IntegrationPlan | undefined)('stackEmulatorPlan')
  if (!plan) throw new Error('stack-emulator: nothing was injected. Add stackEmulator() to the plugins of this vitest.config.ts (from stack-emulator/vitest).')
  return plan
}

/** Before each test file: the worker's VM (isolation 'worker'), its env, and the per-file reset. */
export async function setUpWorker(): Promise<void> {
  const plan = providedPlan()
  if (plan.perWorker) {
    const global = globalThis as WorkerGlobal
    global[WORKER_VM] ??= acquireForWorker({ ...workerOptions(plan, Number(process.env.VITEST_POOL_ID ?? 0)), onLog: log })
    workerVm = await global[WORKER_VM]
    Object.assign(process.env, workerVm.env)
  }
  if (plan.reset === 'file') await resetForTests()
}

/** The emulator this worker's tests use: its own VM, or the run's shared one. */
export function currentContext(): StackEmulatorContext {
  if (workerVm) return contextOf(workerVm)
  const context = inject('stackEmulator')
  if (!context) throw new Error('stack-emulator: nothing was injected. Add stackEmulator() to the plugins of this vitest.config.ts (from stack-emulator/vitest); under isolation \'worker\' use it in test files, where the worker has its VM.')
  return context
}

/** Back to the seeded state: the worker's own VM, or the shared one on behalf of the run's lease. */
export async function resetForTests(): Promise<void> {
  if (workerVm) {
    await workerVm.reset({ force: true })
    Object.assign(process.env, workerVm.env) // the same keys after a seeded reset; new ones where the driver has no checkpoints
    return
  }
  const context = currentContext()
  await resetInstance(context.name, false, context.lease)
}
