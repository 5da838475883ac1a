/**
 * What every test under isolation 'project' checks (Vitest and Playwright alike): it has a project
 * no other test had, with the per-project seed and nothing else; Stack Auth's SDK, configured by
 * nothing but process.env, signs up the same address every other test signs up; its mail helper
 * sees that one verification mail and no other test's.
 */
import assert from 'node:assert/strict'
import fs from 'node:fs'
import path from 'node:path'
import { StackClientApp } from '@stackframe/js'
import type { MailClient } from 'stack-emulator'
import { createUser, userEmails, type Keys } from '../vitest-isolation/users.js'

/** Every test of every worker signs this one address up, each in its own project. */
export const SAME_EMAIL = 'same-person@example.com'
export const PROJECT_SEED_EMAIL = 'project-seeded@example.com'

export interface ProjectContext extends Keys {
  backendUrl: string
  publishableClientKey: string
  mail: MailClient
}

export async function checkOwnProject(context: ProjectContext, label: string): Promise<void> {
  // The test's context and the worker's process.env name the same project.
  assert.equal(process.env.STACK_PROJECT_ID, context.projectId)
  assert.equal(process.env.NEXT_PUBLIC_STACK_PUBLISHABLE_CLIENT_KEY, context.publishableClientKey)
  assert.deepEqual(await userEmails(context.backendUrl, context), [PROJECT_SEED_EMAIL])

  const app = new StackClientApp({ tokenStore: 'memory' })
  const signUp = await app.signUpWithCredential({
    email: SAME_EMAIL,
    password: 'correct horse battery staple',
    noRedirect: true,
    verificationCallbackUrl: 'http://localhost:3107/verify',
  })
  assert.equal(signUp.status, 'ok', `sign-up in ${context.projectId}: ${JSON.stringify(signUp)}`)
  assert.equal((await app.getUser())?.primaryEmail, SAME_EMAIL)
  await createUser(context.backendUrl, context, `${label}@example.com`)
  assert.deepEqual(await userEmails(context.backendUrl, context), [`${label}@example.com`, PROJECT_SEED_EMAIL, SAME_EMAIL].sort())

  // Every test's verification mail lands in one mailbox: this test's helper sees its own only.
  const message = await context.mail.waitForMessage(SAME_EMAIL, { timeoutMs: 30_000 })
  assert.match(message.subject, /verify/i)
  assert.equal((await context.mail.messages(SAME_EMAIL)).length, 1)

  if (process.env.RESULTS_DIR) {
    const record = { label, projectId: context.projectId, pid: process.pid, backendUrl: context.backendUrl }
    fs.writeFileSync(path.join(process.env.RESULTS_DIR, `${label}.json`), JSON.stringify(record))
  }
}
