// The sign-in helpers in a project of the test's own (minted through the credential route).
import { StackClientApp, StackServerApp } from '@stackframe/js'
import { expect } from 'vitest'
import { test } from 'stack-emulator/vitest/test'

test("users.create, signIn(app, user), sessionFor and authHeaders all work in the test's project", async ({ stackEmulator }) => {
  const user = await stackEmulator.users.create({ displayName: 'Ada', clientMetadata: { plan: 'pro' } })
  expect(user.projectId).toBe(stackEmulator.projectId)
  expect(user.email).toMatch(/^user-.+@example\.com$/)

  const app = new StackClientApp({ tokenStore: 'memory' })
  await stackEmulator.signIn(app, user)
  const signedIn = await app.getUser()
  expect([signedIn?.id, signedIn?.displayName, signedIn?.clientMetadata]).toEqual([user.id, 'Ada', { plan: 'pro' }])

  // A session minted server-side, in the SDK's own token store form.
  const session = await stackEmulator.sessionFor(user)
  expect((await new StackClientApp({ tokenStore: session }).getUser())?.id).toBe(user.id)

  const headers = await stackEmulator.authHeaders(user)
  const me = await fetch(`${stackEmulator.backendUrl}/api/v1/users/me`, { headers })
  expect(me.status).toBe(200)
  expect(((await me.json()) as { primary_email: string }).primary_email).toBe(user.email)
  expect((await new StackServerApp({ tokenStore: 'memory' }).getUser({ tokenStore: { headers } }))?.id).toBe(user.id)
})

test("a user of another test's project is refused, naming both projects", async ({ stackEmulator }) => {
  const stranger = { id: '00000000-0000-4000-8000-000000000000', email: 'x@example.com', password: 'x', displayName: null, projectId: 'another-project' }
  await expect(stackEmulator.sessionFor(stranger)).rejects.toMatchObject({
    code: 'SIGN_IN',
    message: expect.stringContaining(`not to ${stackEmulator.projectId}`),
  })
})
