/** Each test: the seeded state, the keys every worker shares, a user of its own that no other test sees. */
import fs from 'node:fs'
import path from 'node:path'
import { test, expect } from 'stack-emulator/playwright'
import { createUser, userEmails } from '../vitest-isolation/users.js'

export function isolationTests(file: string): void {
  for (const n of [1, 2, 3]) {
    test(`${file} test ${n}`, async ({ stackEmulator }, testInfo) => {
      const results = process.env.RESULTS_DIR!
      const keys = JSON.stringify([stackEmulator.projectId, stackEmulator.secretServerKey])
      // The first test anywhere records the keys; every later one, in either worker, has the same.
      const keysFile = path.join(results, 'keys.json')
      try {
        fs.writeFileSync(keysFile, keys, { flag: 'wx' })
      } catch {
        expect(fs.readFileSync(keysFile, 'utf8')).toBe(keys)
      }
      expect(await userEmails(stackEmulator.backendUrl, stackEmulator)).toEqual(['seeded@example.com'])
      const email = `${file}-${n}@example.com`
      await createUser(stackEmulator.backendUrl, stackEmulator, email)
      expect(await userEmails(stackEmulator.backendUrl, stackEmulator)).toEqual([email, 'seeded@example.com'].sort())
      fs.appendFileSync(path.join(results, `worker-${testInfo.parallelIndex}.txt`), `${stackEmulator.name} ${stackEmulator.backendUrl} ${process.pid}\n`)
    })
  }
}
