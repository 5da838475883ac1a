// Options in one place: the instance name and the seed reach the webServer (through `stack-emulator
// exec`), the globalSetup and the fixture, so the run uses one VM, not the default instance beside
// it, and the app serves the seeded project the tests see (issue 22: it used to replace the seed).
import fs from 'node:fs'
import { defineConfig } from '@playwright/test'
import { globalSetup, stackEmulatorWebServer, type StackEmulatorPlaywrightOptions } from 'stack-emulator/playwright'
import { serverHeaders } from '../vitest-isolation/users.js'

const port = Number(process.env.EXAMPLE_PORT ?? 3193)
const emulator: StackEmulatorPlaywrightOptions = {
  name: process.env.PW_INSTANCE ?? 'pw-options',
  configFile: process.env.PW_CONFIG_FILE,
  seed: async (e) => {
    if (process.env.SEED_LOG) fs.appendFileSync(process.env.SEED_LOG, 'seeded\n')
    const response = await fetch(`${e.backendUrl}/api/v1/users`, {
      method: 'POST',
      headers: serverHeaders(e.credentials!),
      body: JSON.stringify({ primary_email: 'seeded@example.com' }),
    })
    if (response.status !== 201) throw new Error(`seed: HTTP ${response.status}`)
  },
}

export default defineConfig({
  testDir: '.',
  globalSetup,
  webServer: stackEmulatorWebServer(
    { command: 'node ../../../examples/users-app/server.mjs', url: `http://127.0.0.1:${port}/env`, env: { PORT: String(port) } },
    emulator,
  ),
  use: { baseURL: `http://127.0.0.1:${port}`, stackEmulatorOptions: emulator },
})
