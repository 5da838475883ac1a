// The example's `test`: the emulator's fixtures merged with one of the app's own (the run's id,
// which every address a test creates carries, so the users list tells this run's users apart).
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { mergeTests, test as base } from '@playwright/test'
import { test as emulatorTest } from 'stack-emulator/playwright'

export { expect } from 'stack-emulator/playwright'
export const test = mergeTests(emulatorTest, base.extend<{ runId: string }>({ runId: process.env.EXAMPLE_RUN_ID ?? 'local' }))
/** Where the auth-setup project keeps the signed-in browser state the signed-in tests reuse. */
export const authFile = path.join(path.dirname(fileURLToPath(import.meta.url)), '../.auth/user.json')
