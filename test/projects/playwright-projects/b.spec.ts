import { test } from 'stack-emulator/playwright'
import { checkOwnProject } from '../vitest-projects/project-check.js'

for (const n of [1, 2, 3]) {
  test(`pw-b test ${n}`, ({ stackEmulator }) => checkOwnProject(stackEmulator, `pw-b-${n}`))
}
