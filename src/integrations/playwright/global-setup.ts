/**
 * Playwright globalSetup: `globalSetup: 'stack-emulator/playwright/global-setup'` (or the
 * `globalSetup` path exported by `stack-emulator/playwright`). Holds one lease for the run and
 * puts the env into process.env, which Playwright's workers inherit. Options come from the
 * config's `use: { stackEmulatorOptions }` (of the first project), as for the fixture; returns
 * the teardown.
 */
import type { FullConfig } from '@playwright/test'
import { acquire } from '../../client/acquire.js'
import { log, summary } from '../../log.js'
import { assertResetFits, planIntegration, summaryLine } from '../context.js'
import type {} from './index.js'

export default async function globalSetup(config: FullConfig): Promise<() => Promise<void>> {
  const plan = planIntegration(config.projects[0]?.use.stackEmulatorOptions)
  assertResetFits(plan, config.workers)
  const emulator = await acquire({ ...plan.run, onProgress: log, onLog: log })
  summary(summaryLine(emulator))
  if (plan.perWorker) {
    // It took the seeded snapshot once; each worker restores a VM of its own from it.
    await emulator.release()
    return async () => {}
  }
  Object.assign(process.env, emulator.env)
  return () => emulator.release()
}
