import { defineConfig } from 'vitest/config'
import { stackEmulator } from 'stack-emulator/vitest'

export default defineConfig({
  plugins: [stackEmulator()],
  test: { include: ['tests/**/*.test.ts'] },
})
