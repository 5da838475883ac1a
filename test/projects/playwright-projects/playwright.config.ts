// Two Playwright workers under isolation 'project' (test/integration/project-isolation.test.ts):
// one VM, a fresh project per test, seeded per project by a function (Playwright loads this file
// in each worker, so a function works here).
import { defineConfig } from '@playwright/test'
import type { StackEmulatorPlaywrightOptions } from 'stack-emulator/playwright'
import seedProject from '../vitest-projects/seed-project.js'

const emulator: StackEmulatorPlaywrightOptions = { name: process.env.PW_INSTANCE ?? 'pw-projects', isolation: 'project', seedProject }

export default defineConfig({
  testDir: '.',
  workers: 2,
  fullyParallel: true,
  timeout: 120_000,
  use: { stackEmulatorOptions: emulator },
})
