// One test fails on purpose after a backend request (test/integration/logs.test.ts): its report
// gets the emulator's log lines from that test's time window; the passing one gets none.
import { defineConfig } from 'vitest/config'
import { stackEmulator } from 'stack-emulator/vitest'

export default defineConfig({
  plugins: [stackEmulator({ name: process.env.VT_INSTANCE ?? 'vt-logs' })],
  test: { include: ['*.test.ts'], testTimeout: 60_000 },
})
