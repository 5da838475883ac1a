// A user's project for per-test resets, seeds and per-worker VMs (test/integration/isolation.test.ts).
// MODE=reset: reset before each test (which gives each worker its own VM); MODE=workers: three
// files at once, each on its worker's VM; MODE=shared-reset: a reset before each test of one VM
// the three workers share (refused at start).
import fs from 'node:fs'
import { defineConfig } from 'vitest/config'
import { stackEmulator } from 'stack-emulator/vitest'
import { serverHeaders } from './users.js'

const mode = process.env.MODE ?? 'reset'

export default defineConfig({
  plugins: [
    stackEmulator({
      reset: mode === 'workers' ? 'never' : 'test',
      isolation: mode === 'shared-reset' ? 'suite' : 'worker',
      seedVersion: process.env.SEED_VERSION,
      // Runs once per seeded snapshot: the seed log proves how often.
      seed: async (emulator) => {
        if (process.env.SEED_LOG) fs.appendFileSync(process.env.SEED_LOG, 'seeded\n')
        const response = await fetch(`${emulator.backendUrl}/api/v1/users`, {
          method: 'POST',
          headers: serverHeaders(emulator.credentials!),
          body: JSON.stringify({ primary_email: 'seeded@example.com' }),
        })
        if (response.status !== 201) throw new Error(`seed: HTTP ${response.status}`)
      },
    }),
  ],
  test: {
    include: mode === 'workers' ? ['worker-*.test.ts'] : ['reset.test.ts'],
    pool: 'forks',
    maxWorkers: 3,
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
})
