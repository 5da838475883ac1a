/**
 * The globalSetup the plugin adds. Runs in Vitest's main process: acquire (taking the seeded
 * snapshot once for every worker), provide, set env, reset before watch-mode reruns, release at
 * teardown. Under isolation 'worker' it only takes the seeded snapshot: the workers' VMs serve.
 * A runner killed outright releases its lease anyway: the lease is this process's socket.
 */
import type { TestProject } from 'vitest/node'
import { acquire } from '../../client/acquire.js'
import type { EmulatorOptions } from '../../client/options.js'
import { log, summary } from '../../log.js'
import { assertResetFits, contextOf, summaryLine, type IntegrationPlan } from '../context.js'
import { handedOverSeed } from './seed.js'

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const plan = (project.getProvidedContext() as { stackEmulatorPlan?: IntegrationPlan }).stackEmulatorPlan
  if (!plan)
    throw new Error(
      'stack-emulator: the globalSetup runs without the plugin. Add stackEmulator() to the plugins of this vitest.config.ts instead of listing the globalSetup.',
    )
  // Resolved config: fileParallelism false runs one file at a time, whatever maxWorkers says.
  const { fileParallelism, maxWorkers } = project.config as { fileParallelism?: boolean; maxWorkers?: number }
  assertResetFits(plan, fileParallelism === false ? 1 : (maxWorkers ?? 1))
  const seed = handedOverSeed()
  // The plan names the seed by its identity (seedVersion); the function is the one given to the plugin.
  const options: EmulatorOptions = { ...plan.run, seed }
  const watch = Boolean(project.vitest.config.watch)
  const emulator = await acquire({
    ...options,
    // In watch mode the VM outlives a single run, as a dev server does.
    keepAlive: options.keepAlive ?? watch,
    onProgress: log,
    onLog: log,
  })
  summary(summaryLine(emulator))
  if (plan.perWorker) {
    // It took the seeded snapshot once; each worker restores a VM of its own from it (setup file).
    await emulator.release()
    return async () => {}
  }
  const previousEnv = { ...process.env }
  const publish = () => {
    Object.assign(process.env, emulator.env)
    project.provide('stackEmulator', contextOf(emulator))
  }
  publish()
  project.onTestsRerun(async () => {
    if (options.isolation === 'none') return
    try {
      await emulator.reset()
    } catch (error) {
      if ((error as { code?: string }).code !== 'RESET_REFUSED') throw error
      log(`not resetting before this rerun: ${(error as Error).message}`)
    }
    publish()
  })
  return async () => {
    for (const key of Object.keys(emulator.env)) {
      if (previousEnv[key] === undefined) delete process.env[key]
      else process.env[key] = previousEnv[key]
    }
    await emulator.release()
  }
}
