// `use: { stackEmulatorOptions }` in a plain defineConfig(), no generic arguments: the options of
// the fixture and the globalSetup, given to the webServer helper too.
import { defineConfig } from '@playwright/test'
import { globalSetup, stackEmulatorWebServer, type StackEmulatorPlaywrightOptions } from 'stack-emulator/playwright'

const emulator: StackEmulatorPlaywrightOptions = { name: 'e2e', memoryMb: 768 }

export default defineConfig({
  globalSetup,
  webServer: stackEmulatorWebServer({ command: 'node server.mjs', url: 'http://127.0.0.1:3107' }, emulator),
  use: { baseURL: 'http://127.0.0.1:3107', stackEmulatorOptions: emulator },
  projects: [{ name: 'chromium', use: { stackEmulatorOptions: { name: 'e2e', isolation: 'exclusive' } } }],
})

// @ts-expect-error: a misspelt option
defineConfig({ use: { stackEmulatorOptions: { nmae: 'e2e' } } })
// @ts-expect-error: isolation is one of suite | exclusive | none
defineConfig({ use: { stackEmulatorOptions: { isolation: 'strict' } } })
