// One test fails on purpose after a backend request (test/integration/logs.test.ts): its report
// gets the emulator's log lines from that test's time window; the passing one gets none.
import { defineConfig } from '@playwright/test'
import type { StackEmulatorPlaywrightOptions } from 'stack-emulator/playwright'

const emulator: StackEmulatorPlaywrightOptions = { name: process.env.PW_INSTANCE ?? 'pw-logs' }

export default defineConfig({
  testDir: '.',
  workers: 1,
  timeout: 120_000,
  use: {
    stackEmulatorOptions: emulator,
    // Debian's chromium: Playwright's own browser download is not needed.
    launchOptions: { executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] },
    headless: true,
  },
})
