/**
 * `stack-emulator/playwright`: `test` with a worker-scoped `stackEmulator` fixture, `expect`,
 * and helpers for the config (globalSetup, webServer). Combine with your own fixtures through
 * mergeTests. Options live in one place, the config's `use: { stackEmulatorOptions }`: the
 * fixture and the globalSetup read them there; give the same object to stackEmulatorWebServer.
 */
import path from 'node:path'
import { test as base, expect } from '@playwright/test'
import { acquire, type Emulator } from '../../client/acquire.js'
import type { EmulatorOptions } from '../../client/options.js'
import { flagsFromOptions } from '../../cli/flags.js'
import { log } from '../../log.js'
import { packageRoot } from '../../package-root.js'
import { contextOf, type StackEmulatorContext } from '../context.js'
import type { MailClient } from '../../stack/mail.js'

export { expect }
export type { MailClient, MailMessage, WaitForMessageOptions } from '../../stack/mail.js'

export interface StackEmulatorFixture extends StackEmulatorContext {
  /** The mail helper: the emails Stack Auth sent, read from the emulator's Inbucket. */
  mail: MailClient
  /** Back to the clean `ready` state. It resets the VM under every worker of the run: use it with workers: 1. */
  reset(): Promise<void>
}

export type StackEmulatorPlaywrightOptions = Omit<EmulatorOptions, 'onProgress' | 'onLog'>

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

export const test = base.extend<object, { stackEmulator: StackEmulatorFixture }>({
  stackEmulatorOptions: [{}, asOption],
  stackEmulator: [
    async ({ stackEmulatorOptions }, use) => {
      // Each worker holds a lease of its own (attaching to a running VM takes milliseconds), so
      // the fixture also works without the globalSetup.
      const emulator = await acquire({ ...stackEmulatorOptions, onLog: log })
      try {
        await use(fixtureOf(emulator))
      } finally {
        await emulator.release()
      }
    },
    { scope: 'worker' },
  ],
})

function fixtureOf(emulator: Emulator): StackEmulatorFixture {
  const fixture: StackEmulatorFixture = {
    ...contextOf(emulator),
    mail: emulator.mail,
    reset: async () => {
      await emulator.reset({ force: true })
      Object.assign(fixture, contextOf(emulator), { mail: emulator.mail }) // new credentials: the project went with the reset
    },
  }
  return fixture
}

/** The path to give Playwright's `globalSetup`: one lease for the whole run, env in process.env. */
export const globalSetup = path.join(packageRoot, 'dist/integrations/playwright/global-setup.js')

/**
 * Playwright starts `webServer` before `globalSetup`, so the app gets the emulator's env by
 * running under `stack-emulator exec`, asking for the same VM as `options` (give it the config's
 * `use.stackEmulatorOptions`).
 */
export function stackEmulatorWebServer<T extends { command: string; timeout?: number }>(webServer: T, options: StackEmulatorPlaywrightOptions = {}): T {
  const argv = [process.execPath, path.join(packageRoot, 'dist/cli/main.js'), 'exec', ...flagsFromOptions(options), '--']
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
