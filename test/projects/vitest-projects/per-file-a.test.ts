import fs from 'node:fs'
import path from 'node:path'
import { test } from 'stack-emulator/vitest/test'

// PER=file: both tests of a file share its project; the other file has another one.
for (const n of [1, 2]) {
  test(`a ${n}`, ({ stackEmulator }) => fs.appendFileSync(path.join(process.env.RESULTS_DIR!, 'per-file.txt'), `a ${stackEmulator.projectId}\n`))
}
