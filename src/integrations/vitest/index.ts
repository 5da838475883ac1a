/**
 * `stack-emulator/vitest`: one line in vitest.config.ts.
 *
 *   export default defineConfig({ plugins: [stackEmulator({ reset: 'test' })] })
 *
 * Adds the package's globalSetup, which acquires a lease (taking the seeded snapshot once),
 * provides the emulator to inject() and sets the environment variables, resets before each
 * watch-mode rerun, and releases at the end. With isolation 'worker' or a `reset` policy it also
 * adds a setup file that gives each worker its VM and resets per file. In tests, `test` (built
 * with test.extend) has the `stackEmulator` fixture, which resets before each test with
 * reset: 'test'; `useStackEmulator()` gives the same outside fixtures.
 */
import { fileURLToPath } from 'node:url'
import { test as base, type TestAPI } from 'vitest'
import { seedIdentity } from '../../client/options.js'
import { mailFor, type MailClient } from '../../stack/mail.js'
import { planIntegration, type IntegrationOptions, type IntegrationPlan, type StackEmulatorContext } from '../context.js'
import { currentContext, resetForTests, providedPlan } from './worker.js'

export type { StackEmulatorContext, IntegrationOptions, ResetPolicy } from '../context.js'
export type { MailClient, MailMessage, WaitForMessageOptions } from '../../stack/mail.js'

/** `inject('stackEmulator')` plus the mail helper. */
export interface StackEmulatorTestContext extends StackEmulatorContext {
  /** The mail helper: the emails Stack Auth sent, read from the emulator's Inbucket. */
  mail: MailClient
}

/** In a test (or a hook): the emulator this worker uses, with its mail helper. */
export function useStackEmulator(): StackEmulatorTestContext {
  const context = currentContext()
  return { ...context, mail: mailFor(context.services) }
}

type StackEmulatorTest = TestAPI<{ stackEmulator: StackEmulatorTestContext }>

function extendedTest(): StackEmulatorTest {
  return base.extend<{ stackEmulator: StackEmulatorTestContext }>({
    // eslint-disable-next-line no-empty-pattern -- Vitest reads the fixture's dependencies from this pattern
    stackEmulator: async ({}, use) => {
      if (providedPlan().reset === 'test') await resetForTests()
      await use(useStackEmulator())
    },
  })
}

let extended: StackEmulatorTest | undefined
/**
 * Vitest's `test` with a `stackEmulator` fixture, which resets before each test that uses it when
 * reset is 'test'. Made on first use: this module is also loaded by vitest.config.ts, where
 * test.extend cannot run.
 */
export const test: StackEmulatorTest = new Proxy(function stackEmulatorTest() {} as unknown as StackEmulatorTest, {
  apply: (_target, thisArg, args) => Reflect.apply((extended ??= extendedTest()), thisArg, args),
  get: (_target, key) => Reflect.get((extended ??= extendedTest()), key),
})

/** Plugin options: acquire()'s less the callbacks, plus `isolation: 'worker'` and `reset`. */
export type StackEmulatorPluginOptions = IntegrationOptions

declare module 'vitest' {
  interface ProvidedContext {
    stackEmulator: StackEmulatorContext
    /** The plan, JSON only: the seed is replaced by its identity (it runs in the main process). */
    stackEmulatorPlan: IntegrationPlan
  }
}

/** The seed function travels to the globalSetup (same process) here: provide() carries JSON only. */
export const SEED_KEY = Symbol.for('stack-emulator.vitest.seed')

const globalSetup = fileURLToPath(new URL('./global-setup.js', import.meta.url))
const setupFile = fileURLToPath(new URL('./setup-file.js', import.meta.url))

export function stackEmulator(options: StackEmulatorPluginOptions = {}) {
  const plan = planIntegration(options)
  const { seed, ...run } = plan.run
  ;(globalThis as Record<symbol, unknown>)[SEED_KEY] = seed
  const jsonPlan: IntegrationPlan = { ...plan, run: { ...run, seedVersion: seedIdentity(plan.run) || undefined } }
  const needsWorkerSetup = plan.perWorker || plan.reset === 'file'
  return {
    name: 'stack-emulator',
    // The `config` hook works on every Vitest from 3.2 on; Vite merges arrays, so a user's own
    // globalSetup and setupFiles entries stay.
    config: () => ({
      test: {
        globalSetup: [globalSetup],
        ...(needsWorkerSetup ? { setupFiles: [setupFile] } : {}),
        provide: { stackEmulatorPlan: jsonPlan },
      },
    }),
  }
}
