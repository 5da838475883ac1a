import fs from 'node:fs'
import path from 'node:path'
import { test } from 'stack-emulator/vitest/test'

// PER=file: the other file (per-file-a.test.ts) has a project of its own.
for (const n of [1, 2]) {
  test(`b ${n}`, ({ stackEmulator }) => fs.appendFileSync(path.join(process.env.RESULTS_DIR!, 'per-file.txt'), `b ${stackEmulator.projectId}\n`))
}
