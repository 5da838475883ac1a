// Two workers, a reset before each test, a seed (test/integration/isolation.test.ts): each worker
// gets a VM of its own from the seeded snapshot the globalSetup took once.
import fs from 'node:fs'
import { defineConfig } from '@playwright/test'
import { globalSetup, type StackEmulatorPlaywrightOptions } from 'stack-emulator/playwright'
import { serverHeaders } from '../vitest-isolation/users.js'

const emulator: StackEmulatorPlaywrightOptions = {
  name: process.env.PW_INSTANCE ?? 'pw-isolation',
  reset: 'test',
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
  workers: 2,
  fullyParallel: true,
  globalSetup,
  timeout: 120_000,
  use: { stackEmulatorOptions: emulator },
})
