/** One file per worker: records which VM it got, then waits until every file holds one at once. */
import fs from 'node:fs'
import path from 'node:path'
import { expect } from 'vitest'
import { test } from 'stack-emulator/vitest/test'
import { createUser, userEmails } from './users.js'

export function workerTest(n: number): void {
  test(`file ${n} has a VM of its own`, async ({ stackEmulator }) => {
    const results = process.env.RESULTS_DIR!
    await createUser(stackEmulator.backendUrl, stackEmulator, `worker-${n}@example.com`)
    fs.writeFileSync(path.join(results, `${n}.json`), JSON.stringify({ name: stackEmulator.name, backendUrl: stackEmulator.backendUrl, pid: process.pid }))
    // All three hold their VMs at once: none sees another's user.
    for (let i = 0; i < 1200 && fs.readdirSync(results).length < 3; i++) await new Promise((r) => setTimeout(r, 100))
    expect(fs.readdirSync(results)).toHaveLength(3)
    expect(await userEmails(stackEmulator.backendUrl, stackEmulator)).toEqual(['seeded@example.com', `worker-${n}@example.com`])
  })
}
