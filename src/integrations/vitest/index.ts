/**
 * `stack-emulator/vitest`, the config side: one line in vitest.config.ts.
 *
 *   export default defineConfig({ plugins: [stackEmulator({ reset: 'test' })] })
 *
 * Adds the package's globalSetup, which acquires a lease (taking the seeded snapshot once),
 * provides the emulator to inject() and sets the environment variables, resets before each
 * watch-mode rerun, and releases at the end. Its setup file, in each worker, gives the worker its
 * VM (isolation 'worker'), resets per file, and puts the emulator's logs into a failed test's report.
 *
 * This module loads nothing from `vitest` at run time: Vitest 3 refuses `import ... from 'vitest'`
 * while it loads a config ("Vitest failed to access its internal state"). What test files use,
 * the `test` fixture and `useStackEmulator()`, is in `stack-emulator/vitest/test`.
 */
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { seedIdentity } from '../../client/options.js'
import { StackEmulatorError } from '../../errors.js'
import { planIntegration, type IntegrationOptions, type IntegrationPlan } from '../context.js'
import { handOverSeed } from './seed.js'
import { seedProjectSetupFile } from './seed-project.js'

export type { StackEmulatorContext } from './provided.js'
export type { ResetPolicy } from '../context.js'
export type { MintedProject, SeedProject } from '../../client/projects.js'

/** Plugin options: acquire()'s less the callbacks, plus `isolation: 'worker'` and `reset`. */
export type StackEmulatorPluginOptions = IntegrationOptions

/** A Vite plugin: its `config` hook adds the globalSetup and a setup file. */
export interface StackEmulatorPlugin {
  name: 'stack-emulator'
  config(user?: { root?: string }): { test: Record<string, unknown> }
}

const globalSetup = fileURLToPath(new URL('./global-setup.js', import.meta.url))
const setupFile = fileURLToPath(new URL('./setup-file.js', import.meta.url))

export function stackEmulator(options: StackEmulatorPluginOptions = {}): StackEmulatorPlugin {
  const plan = planIntegration(options)
  if (typeof plan.projects?.seedProject === 'function') {
    throw new StackEmulatorError(
      'Option "seedProject" of the Vitest plugin must be a module path: Vitest\'s workers, where projects are minted, do not load vitest.config.ts',
      {
        code: 'BAD_OPTION',
        fix: "Move the function to a module (export default async function (project) { ... }) and pass its path: seedProject: './test/seed-project.ts'.",
      },
    )
  }
  const { seed, ...run } = plan.run
  handOverSeed(seed)
  return {
    name: 'stack-emulator',
    // The `config` hook works on every Vitest from 3.2 on; Vite merges arrays, so a user's own
    // globalSetup and setupFiles entries stay.
    config: (user = {}) => {
      // A relative seedProject path is the project root's, as Vitest's own setupFiles are.
      const seedModule = typeof options.seedProject === 'string' ? path.resolve(user.root ?? process.cwd(), options.seedProject) : undefined
      const projects = plan.projects && { ...plan.projects, seedProject: seedModule }
      // The plan, JSON only: the seed is replaced by its identity (it runs in the main process).
      const jsonPlan: IntegrationPlan = { ...plan, projects, run: { ...run, seedVersion: seedIdentity(plan.run) || undefined } }
      return {
        test: {
          globalSetup: [globalSetup],
          setupFiles: seedModule ? [seedProjectSetupFile(seedModule), setupFile] : [setupFile],
          provide: { stackEmulatorPlan: jsonPlan },
        },
      }
    },
  }
}
