/**
 * `stack-emulator/playwright`: `test` with a worker-scoped `stackEmulator` fixture, `expect`,
 * and helpers for the config (globalSetup, webServer). Combine with your own fixtures through
 * mergeTests. Options live in one place, the config's `use: { stackEmulatorOptions }`: the
 * fixture and the globalSetup read them there; give the same object to stackEmulatorWebServer.
 */
import path from 'node:path'
import { test as base, expect } from '@playwright/test'
import { acquire, acquireForWorker, type Emulator } from '../../client/acquire.js'
import { logsForFailedTest } from '../../client/test-logs.js'
import { flagsFromOptions } from '../../cli/flags.js'
import { log } from '../../log.js'
import { packageRoot } from '../../package-root.js'
import { assertResetFits, contextOf, planIntegration, workerOptions, type IntegrationOptions, type StackEmulatorContext } from '../context.js'
import { startProjectPool, type MintedProject } from '../../client/projects.js'
import type { ProjectPool } from '../../client/project-pool.js'
import type { MailClient } from '../../stack/mail.js'
import { signInHelpers, type PasswordSignIn, type SignInHelpers, type TestUser } from '../../stack/test-users.js'
import { signInBrowser, signOutBrowser, type BrowserSignInOptions, type BrowserTarget } from './sign-in.js'

export { expect }
export type { MailClient, MailMessage, WaitForMessageOptions } from '../../stack/mail.js'
export type { MintedProject, SeedProject } from '../../client/projects.js'
export type { NewTestUser, TestUser, TestUsers, UserSession } from '../../stack/test-users.js'
export type { BrowserSignInOptions } from './sign-in.js'

export interface StackEmulatorFixture extends StackEmulatorContext, Omit<SignInHelpers, 'signIn'> {
  /** The mail helper: the emails Stack Auth sent, read from the emulator's Inbucket. */
  mail: MailClient
  /**
   * Signs `user` in without a sign-in page. A page or browser context: the session's cookies, as
   * Stack Auth's browser SDK keeps them, for the app's origin (`use.baseURL`, or `options.url`),
   * so the next page load is signed in. A Stack Auth SDK app: its password sign-in.
   */
  signIn(target: BrowserTarget | PasswordSignIn, user: TestUser, options?: BrowserSignInOptions): Promise<void>
  /** Signs a page or browser context out: drops the session cookies. */
  signOut(target: BrowserTarget): Promise<void>
  /**
   * Back to the seeded state (same keys). With isolation 'worker' it touches this worker's VM
   * only; on a shared VM it resets it under every worker of the run.
   */
  reset(): Promise<void>
}

/** acquire()'s options less the callbacks, plus `isolation: 'worker'` and `reset` ('test' | 'file' | 'never'). */
export type StackEmulatorPlaywrightOptions = IntegrationOptions

// Typed here so that `use: { stackEmulatorOptions }` checks with a plain defineConfig().
declare module '@playwright/test' {
  interface PlaywrightWorkerOptions {
    /** stack-emulator's options for the fixture and the globalSetup (instance name, image, ...). */
    stackEmulatorOptions: StackEmulatorPlaywrightOptions
  }
}

// An option fixture at run time; its type comes from the declaration above, which Playwright's
// typings would not let carry `option: true` itself.
const asOption = { scope: 'worker', option: true } as const

// biome-ignore lint/suspicious/noConfusingVoidType: Playwright types a fixture that gives no value as void
export const test = base.extend<{ stackEmulatorReset: void; stackEmulatorLogs: void }, { stackEmulator: StackEmulatorFixture }>({
  stackEmulatorOptions: [{}, asOption],
  stackEmulator: [
    async ({ stackEmulatorOptions }, use, workerInfo) => {
      const plan = planIntegration(stackEmulatorOptions)
      assertResetFits(plan, workerInfo.config.workers) // also without the globalSetup
      // Each worker holds a lease of its own (attaching to a running VM takes milliseconds), so
      // the fixture also works without the globalSetup; under isolation 'worker', on a VM of its
      // own, restored from the seeded snapshot the globalSetup took (or seeded here without one).
      const emulator = plan.perWorker
        ? await acquireForWorker({ ...workerOptions(plan, workerInfo.parallelIndex), seed: plan.run.seed, onLog: log })
        : await acquire({ ...plan.run, onLog: log })
      if (plan.perWorker) Object.assign(process.env, emulator.env)
      // isolation 'project': this worker mints its projects ahead; each test takes one (stackEmulatorReset).
      const pool = plan.projects ? await startProjectPool(emulator, plan.projects) : undefined
      try {
        await use(fixtureOf(emulator, plan.perWorker, pool))
      } finally {
        await pool?.close()
        await emulator.release()
      }
    },
    { scope: 'worker' },
  ],
  // Runs for every test of a project using this `test`: the reset policy, before the test body.
  stackEmulatorReset: [
    async ({ stackEmulator, stackEmulatorOptions }, use, testInfo) => {
      const { reset, projects } = planIntegration(stackEmulatorOptions)
      const newFile = lastFile.get(stackEmulator.name) !== testInfo.file
      if (projects) {
        if (projects.per === 'test' || newFile) await takeProject(stackEmulator)
      } else if (reset === 'test' || (reset === 'file' && newFile)) await stackEmulator.reset()
      lastFile.set(stackEmulator.name, testInfo.file)
      await use()
    },
    { auto: true },
  ],
  // After a test that did not end as expected: the emulator's log lines from its time window, in
  // the report (read only then: a passing test costs nothing).
  stackEmulatorLogs: [
    async ({ stackEmulator }, use, testInfo) => {
      const startMs = Date.now()
      await use()
      if (testInfo.status === testInfo.expectedStatus) return
      const body = await logsForFailedTest(stackEmulator.name, { startMs, endMs: Date.now() })
      await testInfo.attach('stack-emulator logs', { body, contentType: 'text/plain' })
    },
    { auto: true },
  ],
})

/** Per worker: the test file its VM last served, for reset 'file'. */
const lastFile = new Map<string, string>()
/** Per fixture object: its worker's pool under isolation 'project'. */
const pools = new WeakMap<StackEmulatorFixture, { emulator: Emulator; pool: ProjectPool<MintedProject> }>()

/** isolation 'project': the fixture (worker-scoped) and process.env now carry a fresh project. */
async function takeProject(fixture: StackEmulatorFixture): Promise<void> {
  const { emulator, pool } = pools.get(fixture)!
  const project = await pool.take()
  Object.assign(fixture, contextOf(emulator, project), { mail: project.mail })
  Object.assign(process.env, project.env)
}

function fixtureOf(emulator: Emulator, perWorker: boolean, pool?: ProjectPool<MintedProject>): StackEmulatorFixture {
  // The project of the moment: under isolation 'project' the fixture is given each test's.
  const helpers = signInHelpers(() => fixture)
  const fixture: StackEmulatorFixture = {
    ...contextOf(emulator),
    ...helpers,
    signIn: async (target, user, options) => {
      if ('signInWithCredential' in target) await helpers.signIn(target, user)
      else await signInBrowser(target, user.projectId, await helpers.sessionFor(user), options)
    },
    signOut: signOutBrowser,
    mail: emulator.mail,
    reset: async () => {
      await emulator.reset({ force: true })
      Object.assign(fixture, contextOf(emulator), { mail: emulator.mail }) // the same keys after a seeded reset; new ones without a seeded snapshot
      if (perWorker) Object.assign(process.env, emulator.env)
    },
  }
  if (pool) {
    pools.set(fixture, { emulator, pool })
    // A reset of the shared VM drops every worker's projects: this test goes on in a new one.
    fixture.reset = () => takeProject(fixture)
  }
  return fixture
}

/** The path to give Playwright's `globalSetup`: one lease for the whole run, env in process.env. */
export const globalSetup = path.join(packageRoot, 'dist/integrations/playwright/global-setup.js')

/**
 * Playwright starts `webServer` before `globalSetup`, so the app gets the emulator's env by
 * running under `stack-emulator exec`, asking for the same VM as `options` (give it the config's
 * `use.stackEmulatorOptions`): the run's shared VM. (One app serves every worker, so an app under
 * test goes with a shared VM; isolation 'worker' suits tests that call the emulator themselves.)
 */
export function stackEmulatorWebServer<T extends { command: string; timeout?: number }>(webServer: T, options: StackEmulatorPlaywrightOptions = {}): T {
  const argv = [process.execPath, path.join(packageRoot, 'dist/cli/main.js'), 'exec', ...flagsFromOptions(planIntegration(options).run), '--']
  return {
    ...webServer,
    command: `${argv.map(shellQuote).join(' ')} ${webServer.command}`,
    // Playwright's default of 60 s: the first run on a machine builds the fixture image before the
    // VM boots, which takes minutes (later runs take about a second).
    timeout: webServer.timeout ?? 15 * 60_000,
  }
}

function shellQuote(arg: string): string {
  return /^[\w@%+=:,./-]+$/.test(arg) ? arg : `'${arg.replace(/'/g, `'\\''`)}'`
}
