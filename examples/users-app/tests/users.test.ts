import { expect, inject, test } from 'vitest'
import { listUsers, signUp } from '../users.mjs'

const run = process.env.EXAMPLE_RUN_ID ?? 'local'

test('the emulator is injected and in the environment', () => {
  const emulator = inject('stackEmulator')
  expect(emulator.backendUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
  expect(process.env.STACK_API_URL).toBe(emulator.backendUrl)
  expect(process.env.STACK_PROJECT_ID).toBe(emulator.projectId)
})

test('starts clean: no user from an earlier run', async () => {
  const strangers = (await listUsers()).filter((u) => !u.primary_email.includes(`-${run}@`))
  expect(strangers).toEqual([])
})

test('signs users up and lists them', async () => {
  await signUp(`vitest-${run}@example.com`, 'Vitest')
  expect((await listUsers()).map((u) => u.primary_email)).toContain(`vitest-${run}@example.com`)
})
