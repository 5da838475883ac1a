/** A file of three tests for the many-workers run: each in its own project, all at once. */
import { test } from 'stack-emulator/vitest/test'
import { checkOwnProject } from './project-check.js'

export function workerFile(file: string): void {
  for (const n of [1, 2, 3]) {
    test(`${file} test ${n}`, async ({ stackEmulator }) => checkOwnProject(stackEmulator, `${file}-${n}`))
  }
}
