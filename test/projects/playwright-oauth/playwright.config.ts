// "Sign in with GitHub" in Chromium against the fixture's mock OAuth provider
// (test/integration/oauth-browser.test.ts): the app is app.mjs, with Stack Auth's browser SDK.
import { defineConfig } from '@playwright/test'
import { globalSetup, stackEmulatorWebServer, type StackEmulatorPlaywrightOptions } from 'stack-emulator/playwright'

const port = Number(process.env.APP_PORT ?? 3195)
const emulator: StackEmulatorPlaywrightOptions = {
  name: process.env.PW_INSTANCE ?? 'pw-oauth',
  configFile: process.env.PW_CONFIG_FILE,
  // The mock's sign-in page is reached at a fixed host port, as the real image's 8114: the guest
  // bakes it in, so the first start on that port captures a snapshot of its own, later ones restore it.
  ports: { 'mock-oauth': Number(process.env.MOCK_OAUTH_PORT ?? 8114) },
}

export default defineConfig({
  testDir: '.',
  globalSetup,
  workers: 1,
  timeout: 120_000,
  webServer: stackEmulatorWebServer({ command: 'node app.mjs', url: `http://127.0.0.1:${port}/env`, env: { PORT: String(port) }, timeout: 180_000 }, emulator),
  use: {
    baseURL: `http://localhost:${port}`,
    stackEmulatorOptions: emulator,
    launchOptions: { executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] },
    headless: true,
  },
})
