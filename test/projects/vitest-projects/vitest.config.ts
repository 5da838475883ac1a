// A user's project under isolation 'project' (test/integration/project-isolation.test.ts): one
// shared VM, a fresh Stack Auth project per test (PER=file: per file), seeded per project.
// FILES picks the test files, WORKERS how many run at once.
import fs from 'node:fs'
import { defineConfig } from 'vitest/config'
import { stackEmulator } from 'stack-emulator/vitest'
import { createUser } from '../vitest-isolation/users.js'

export default defineConfig({
  plugins: [
    stackEmulator({
      isolation: 'project',
      per: process.env.PER === 'file' ? 'file' : 'test',
      seedProject: './seed-project.ts',
      // The run's seed goes into the seeded snapshot, in the base project only: no test's project sees it.
      seed: process.env.NO_BASE_SEED
        ? undefined
        : async (emulator) => {
            if (process.env.SEED_LOG) fs.appendFileSync(process.env.SEED_LOG, 'base\n')
            await createUser(emulator.backendUrl, emulator.credentials!, 'base-seeded@example.com')
          },
    }),
  ],
  test: {
    include: (process.env.FILES ?? 'same-email.test.ts').split(','),
    pool: 'forks',
    maxWorkers: Number(process.env.WORKERS ?? 1),
    testTimeout: 120_000,
    hookTimeout: 300_000,
  },
})
