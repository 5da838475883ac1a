// The file whose worker is SIGKILLed while it mints (test/integration/project-isolation.test.ts):
// it says its pid, then takes project after project, so its pool mints without a pause.
import fs from 'node:fs'
import path from 'node:path'
import { expect } from 'vitest'
import { test } from 'stack-emulator/vitest/test'

fs.writeFileSync(path.join(process.env.RESULTS_DIR!, 'victim.pid'), String(process.pid))
for (let n = 0; n < 200; n++) {
  test(`victim ${n}`, ({ stackEmulator }) => expect(stackEmulator.projectId).toBeTruthy())
}
