/**
 * `stack-emulator/playwright`: `test` with a worker-scoped `stackEmulator` fixture, `expect`,
 * and helpers for the config (globalSetup, webServer). Combine with your own fixtures through
 * mergeTests.
 */
import path from 'node:path'
import { test as base, expect } from '@playwright/test'
import { acquire, type Emulator } from '../../client/acquire.js'
import type { EmulatorOptions } from '../../client/options.js'
import { packageRoot } from '../../package-root.js'
import { contextOf, type StackEmulatorContext } from '../context.js'

export { expect }

export interface StackEmulatorFixture extends StackEmulatorContext {
  /** Back to the clean `ready` state. It resets the VM under every worker of the run: use it with workers: 1. */
  reset(): Promise<void>
}

export type StackEmulatorPlaywrightOptions = Omit<EmulatorOptions, 'onProgress' | 'onLog'>

export const test = base.extend<object, { stackEmulator: StackEmulatorFixture; stackEmulatorOptions: StackEmulatorPlaywrightOptions }>({
  /** Set in the config's `use` to change the instance, image or isolation. */
  stackEmulatorOptions: [{}, { scope: 'worker', option: true }],
  stackEmulator: [
    async ({ stackEmulatorOptions }, use) => {
      // Each worker holds a lease of its own (attaching to a running VM takes milliseconds), so
      // the fixture also works without the globalSetup.
      const emulator = await acquire({ ...stackEmulatorOptions, onLog: (line) => process.stderr.write(`[stack-emulator] ${line}\n`) })
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
    reset: async () => {
      await emulator.reset({ force: true })
      Object.assign(fixture, contextOf(emulator)) // new credentials: the project went with the reset
    },
  }
  return fixture
}

/** The path to give Playwright's `globalSetup`: one lease for the whole run, env in process.env. */
export const globalSetup = path.join(packageRoot, 'dist/integrations/playwright/global-setup.js')

/**
 * Playwright starts `webServer` before `globalSetup`, so the app gets the emulator's env by
 * running under `stack-emulator exec` (which boots or reuses the same VM).
 */
export function stackEmulatorWebServer<T extends { command: string }>(webServer: T, options: { name?: string } = {}): T {
  const cli = path.join(packageRoot, 'dist/cli/main.js')
  const name = options.name ? ` --name ${options.name}` : ''
  return { ...webServer, command: `"${process.execPath}" "${cli}" exec${name} -- ${webServer.command}` }
}
