/**
 * The globalSetup the plugin adds. Runs in Vitest's main process: acquire, provide, set env,
 * reset before watch-mode reruns, release at teardown. A runner killed outright releases its
 * lease anyway: the lease is this process's socket.
 */
import type { TestProject } from 'vitest/node'
import type {} from './index.js'
import { acquire } from '../../client/acquire.js'
import { contextOf } from '../context.js'

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const options = project.getProvidedContext().stackEmulatorOptions ?? {}
  const watch = Boolean(project.vitest.config.watch)
  const emulator = await acquire({
    ...options,
    // In watch mode the VM outlives a single run, as a dev server does.
    keepAlive: options.keepAlive ?? watch,
    onProgress: (phase) => process.stderr.write(`[stack-emulator] ${phase}\n`),
    onLog: (line) => process.stderr.write(`[stack-emulator] ${line}\n`),
  })
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
      process.stderr.write(`[stack-emulator] not resetting before this rerun: ${(error as Error).message}\n`)
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
