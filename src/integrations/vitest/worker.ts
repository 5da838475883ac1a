/**
 * What runs in each Vitest worker (the plugin's setup file, and the `test` fixture): under
 * isolation 'worker', the worker's own VM, acquired once per worker process and released when
 * it ends (its lease is its socket); resets per the `reset` option, on the worker's own VM or on
 * behalf of the run's lease on the shared one.
 */
import { beforeEach, inject } from 'vitest'
import { acquireForWorker, type Emulator } from '../../client/acquire.js'
import type { ProjectPool } from '../../client/project-pool.js'
import { startProjectPool, type MintedProject } from '../../client/projects.js'
import { resetInstance } from '../../client/control.js'
import { log } from '../../log.js'
import { importHandedOver } from './seed-project.js'
import { contextOf, projectWorkerOptions, workerOptions, type IntegrationPlan, type StackEmulatorContext } from '../context.js'

/** Kept on globalThis: a worker re-evaluates modules for each test file, but keeps its VM. */
const WORKER_VM = Symbol.for('stack-emulator.vitest.worker-vm')
type WorkerGlobal = { [WORKER_VM]?: Promise<Emulator>; [key: symbol]: unknown }
let workerEmulator: Emulator | undefined
/** isolation 'project': this worker's lease on the shared VM and its pool, kept across files. */
const WORKER_PROJECTS = Symbol.for('stack-emulator.vitest.worker-projects')
type Projects = { emulator: Emulator; pool: ProjectPool<MintedProject> }
let projects: Projects | undefined
/** The project the running test (or file) uses. */
let currentProject: MintedProject | undefined

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
    workerEmulator = await global[WORKER_VM]
    Object.assign(process.env, workerEmulator.env)
  }
  if (plan.reset === 'file') await resetForTests()
  if (plan.projects) {
    const global = globalThis as unknown as Record<symbol, Promise<Projects> | undefined>
    global[WORKER_PROJECTS] ??= (async () => {
      // A lease of its own on the run's VM (it died with this process, so a worker killed
      // mid-mint leaves nothing held); the seeded snapshot is the run's, never taken here.
      const emulator = await acquireForWorker({ ...projectWorkerOptions(plan), onLog: log })
      return { emulator, pool: await startProjectPool(emulator, plan.projects!, importHandedOver) }
    })()
    projects = await global[WORKER_PROJECTS]
    if (plan.projects.per === 'file') await takeProject()
    // Registered per file: the setup file runs before each file, and its hooks belong to it.
    else beforeEach(takeProject)
  }
}

/** A fresh project from the worker's pool: the test's context and process.env carry it. */
async function takeProject(): Promise<void> {
  currentProject = await projects!.pool.take()
  Object.assign(process.env, currentProject.env)
}

/** The running test's project under isolation 'project' (its mail helper sees only its mail). */
export function projectInUse(): MintedProject | undefined {
  return currentProject
}

/** The emulator this worker's tests use: its own VM, or the run's shared one. */
export function currentContext(): StackEmulatorContext {
  if (projects) {
    if (!currentProject)
      throw new Error(
        "stack-emulator: no project yet. Under isolation 'project' each test gets its project before it runs: use the emulator inside a test or a beforeEach.",
      )
    return contextOf(projects.emulator, currentProject)
  }
  if (workerEmulator) return contextOf(workerEmulator)
  const context = inject('stackEmulator')
  if (!context)
    throw new Error(
      "stack-emulator: nothing was injected. Add stackEmulator() to the plugins of this vitest.config.ts (from stack-emulator/vitest); under isolation 'worker' use it in test files, where the worker has its VM.",
    )
  return context
}

/** Back to the seeded state: the worker's own VM, or the shared one on behalf of the run's lease. */
export async function resetForTests(): Promise<void> {
  if (workerEmulator) {
    await workerEmulator.reset({ force: true })
    Object.assign(process.env, workerEmulator.env) // the same keys after a seeded reset; new ones where the driver has no seeded snapshots
    return
  }
  const context = currentContext()
  await resetInstance(context.name, false, context.lease)
}
