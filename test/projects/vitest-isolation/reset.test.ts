import { expect } from 'vitest'
import { test } from 'stack-emulator/vitest/test'
import { createUser, userEmails } from './users.js'

let firstKeys: string | undefined

// In order, in one file: each test starts from the seeded state with the same keys.
for (const n of [1, 2, 3]) {
  test(`test ${n} starts from the seed, writes a user`, async ({ stackEmulator }) => {
    const keys = JSON.stringify([stackEmulator.projectId, stackEmulator.secretServerKey, stackEmulator.publishableClientKey])
    firstKeys ??= keys
    expect(keys).toBe(firstKeys)
    expect(process.env.STACK_SECRET_SERVER_KEY).toBe(stackEmulator.secretServerKey)
    expect(await userEmails(stackEmulator.backendUrl, stackEmulator)).toEqual(['seeded@example.com'])
    await createUser(stackEmulator.backendUrl, stackEmulator, `test-${n}@example.com`)
    expect(await userEmails(stackEmulator.backendUrl, stackEmulator)).toEqual(['seeded@example.com', `test-${n}@example.com`])
  })
}
