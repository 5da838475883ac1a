/**
 * Playwright globalSetup: `globalSetup: 'stack-emulator/playwright/global-setup'` (or the
 * `globalSetup` path exported by `stack-emulator/playwright`). Holds one lease for the run and
 * puts the env into process.env, which Playwright's workers inherit. Options come from the
 * environment (STACK_EMULATOR_NAME, STACK_EMULATOR_IMAGE); returns the teardown.
 */
import { acquire } from '../../client/acquire.js'

export default async function globalSetup(): Promise<() => Promise<void>> {
  const emulator = await acquire({
    onProgress: (phase) => process.stderr.write(`[stack-emulator] ${phase}\n`),
    onLog: (line) => process.stderr.write(`[stack-emulator] ${line}\n`),
  })
  Object.assign(process.env, emulator.env)
  return () => emulator.release()
}
