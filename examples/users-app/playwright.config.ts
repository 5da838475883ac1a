import { defineConfig } from '@playwright/test'
import { globalSetup, stackEmulatorWebServer } from 'stack-emulator/playwright'

const port = Number(process.env.EXAMPLE_PORT ?? 3107)

export default defineConfig({
  testDir: './e2e',
  globalSetup,
  // The auth-setup project signs a user in once; the signed-in tests reuse its saved state.
  projects: [
    { name: 'setup', testMatch: /auth\.setup\.ts/ },
    { name: 'e2e', testIgnore: /auth\.setup\.ts/, dependencies: ['setup'] },
  ],
  // The app gets the emulator's env by running under `stack-emulator exec`.
  webServer: stackEmulatorWebServer({ command: `node server.mjs`, url: `http://127.0.0.1:${port}/env`, env: { PORT: String(port) } }),
  use: {
    baseURL: `http://127.0.0.1:${port}`,
    // Debian's chromium: Playwright's own browser download is not needed.
    launchOptions: { executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] },
    headless: true,
  },
})
