import { defineConfig } from 'vitest/config'

// `.ci/run` records where the time goes: each file's and each test's duration, in this JSON file.
const timings = process.env.STACK_EMULATOR_TEST_TIMINGS

export default defineConfig({
  test: {
    ...(timings ? { reporters: ['default', ['./test/timings-reporter.ts', { outputFile: timings }]] } : {}),
    // The integration tier boots real VMs under TCG on 2 cores: one file at a time.
    fileParallelism: false,
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'] } },
      {
        test: {
          name: 'integration',
          fileParallelism: false,
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 240_000,
          hookTimeout: 600_000,
          globalSetup: ['test/global-setup.ts'],
        },
      },
      // The Docker and external drivers: real containers, no VM image needed.
      {
        test: {
          name: 'drivers',
          include: ['test/drivers/**/*.test.ts'],
          fileParallelism: false,
          testTimeout: 240_000,
          hookTimeout: 600_000,
          globalSetup: ['test/drivers/global-setup.ts'],
        },
      },
    ],
  },
})
