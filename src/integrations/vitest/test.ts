/**
 * `stack-emulator/vitest/test`, the test side: what test files import (never vitest.config.ts,
 * where Vitest 3 refuses anything that loads `vitest`). `test` is Vitest's `test` with a
 * `stackEmulator` fixture, which resets before each test that uses it with reset: 'test';
 * `useStackEmulator()` gives the same outside fixtures.
 */
import { test as base, type TestAPI } from 'vitest'
import { mailFor, type MailClient } from '../../stack/mail.js'
import { signInHelpers, type SignInHelpers } from '../../stack/test-users.js'
import type { StackEmulatorContext } from './provided.js'
import { currentContext, projectInUse, providedPlan, resetForTests } from './worker.js'

export type { StackEmulatorContext } from './provided.js'
export type { MailClient, MailMessage, WaitForMessageOptions } from '../../stack/mail.js'
export type { NewTestUser, PasswordSignIn, TestUser, TestUsers, UserSession } from '../../stack/test-users.js'

/**
 * `inject('stackEmulator')` plus the mail helper and the sign-in helpers: `users.create()`,
 * `sessionFor(user)`, `signIn(app, user)`, `authHeaders(user)`, all in this test's project.
 */
export interface StackEmulatorTestContext extends StackEmulatorContext, SignInHelpers {
  /** The mail helper: the emails Stack Auth sent, read from the emulator's Inbucket. */
  mail: MailClient
}

/** In a test (or a hook): the emulator this worker uses, with its mail and sign-in helpers. */
export function useStackEmulator(): StackEmulatorTestContext {
  const context = currentContext()
  // Under isolation 'project', the mail helper sees only the test's project's mail.
  return { ...context, ...signInHelpers(() => context), mail: projectInUse()?.mail ?? mailFor(context.services) }
}

/** Vitest's `test` with a `stackEmulator` fixture, which resets before each test that uses it when reset is 'test'. */
export const test: TestAPI<{ stackEmulator: StackEmulatorTestContext }> = base.extend<{ stackEmulator: StackEmulatorTestContext }>({
  // biome-ignore lint/correctness/noEmptyPattern: Vitest reads the fixture's dependencies from this pattern
  stackEmulator: async ({}, use) => {
    if (providedPlan().reset === 'test') await resetForTests()
    await use(useStackEmulator())
  },
})
