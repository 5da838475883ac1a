import { expect } from 'vitest'
import { test, useStackEmulator } from 'stack-emulator/vitest/test'
import { checkOwnProject } from './project-check.js'

const seen: string[] = []

// Two tests in one file: each signs up the same address, in a project of its own.
for (const n of [1, 2]) {
  test(`test ${n} signs up the same address`, async ({ stackEmulator }) => {
    expect(useStackEmulator().projectId).toBe(stackEmulator.projectId)
    expect(seen).not.toContain(stackEmulator.projectId)
    seen.push(stackEmulator.projectId)
    await checkOwnProject(stackEmulator, `same-${n}`)
  })
}
