// A user's project: the plugin comes from the built package, as an installed one would.
import { defineConfig } from 'vitest/config'
import { stackEmulator } from 'stack-emulator/vitest'

export default defineConfig({
  plugins: [stackEmulator()],
  test: { include: ['*.test.ts'] },
})
