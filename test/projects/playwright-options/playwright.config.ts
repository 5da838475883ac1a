// Options in one place: the instance name reaches the webServer (through `stack-emulator exec`),
// the globalSetup and the fixture, so the run uses one VM, not the default instance beside it.
import { defineConfig } from '@playwright/test'
import { globalSetup, stackEmulatorWebServer, type StackEmulatorPlaywrightOptions } from 'stack-emulator/playwright'

const port = Number(process.env.EXAMPLE_PORT ?? 3193)
const emulator: StackEmulatorPlaywrightOptions = { name: process.env.PW_INSTANCE ?? 'pw-options' }

export default defineConfig({
  testDir: '.',
  globalSetup,
  webServer: stackEmulatorWebServer({ command: 'node ../../../examples/users-app/server.mjs', url: `http://127.0.0.1:${port}/env`, env: { PORT: String(port) } }, emulator),
  use: { baseURL: `http://127.0.0.1:${port}`, stackEmulatorOptions: emulator },
})
