import { StackClientApp, StackServerApp } from '@stackframe/js'
import { useStackEmulator } from 'stack-emulator/vitest/test'
import { expect, inject, test } from 'vitest'
import { signUp, verifyEmail } from '../users.mjs'

const run = process.env.EXAMPLE_RUN_ID ?? 'local'
// Nothing but the environment configures it: the plugin set every name the SDK reads.
const stack = new StackServerApp({ tokenStore: 'memory' })

test('the emulator is injected and in the environment', () => {
  const emulator = inject('stackEmulator')! // provided: one VM for the run (no per-worker VMs here)
  expect(emulator.backendUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
  expect(process.env.STACK_API_URL).toBe(emulator.backendUrl)
  expect(stack.projectId).toBe(emulator.projectId)
})

test('starts clean: no user from an earlier run', async () => {
  const strangers = (await stack.listUsers()).filter((u) => !u.primaryEmail?.includes(`-${run}@`))
  expect(strangers).toEqual([])
})

test('creates users and lists them', async () => {
  await stack.createUser({ primaryEmail: `vitest-created-${run}@example.com`, displayName: 'Vitest' })
  expect((await stack.listUsers()).map((u) => u.primaryEmail)).toContain(`vitest-created-${run}@example.com`)
})

test('signs a user up, and the link of the verification email verifies the address', async () => {
  const email = `vitest-${run}@example.com`
  await signUp(email, 'correct horse battery staple', 'http://localhost:3107/verify')

  const { mail } = useStackEmulator()
  const message = await mail.waitForMessage(email)
  const link = message.links.find((l) => l.startsWith('http://localhost:3107/verify?'))
  expect(link, `links in "${message.subject}": ${message.links.join(', ')}`).toBeDefined()
  await verifyEmail(new URL(link!).searchParams.get('code'))

  const user = (await stack.listUsers()).find((u) => u.primaryEmail === email)
  expect(user?.primaryEmailVerified).toBe(true)
})

test('a signed-in user in one line: signIn(app, user), and authHeaders(user) for the backend and for an app route', async () => {
  const { users, signIn, authHeaders } = useStackEmulator()
  const user = await users.create({ email: `vitest-signed-in-${run}@example.com` })
  const app = new StackClientApp({ tokenStore: 'memory' })
  await signIn(app, user)
  expect((await app.getUser())?.primaryEmail).toBe(user.email)

  const headers = await authHeaders(user)
  const me = await fetch(`${process.env.STACK_API_URL}/api/v1/users/me`, { headers })
  expect(me.status).toBe(200)
  expect((await me.json()).id).toBe(user.id)
  // An app's own API route reads the same request through the SDK.
  expect((await stack.getUser({ tokenStore: { headers } }))?.id).toBe(user.id)
})
