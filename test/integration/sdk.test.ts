/**
 * Stack Auth's own SDK (@stackframe/js from the registry) against the fixture VM, configured by
 * nothing but the environment the integrations set, and the mail helper reading the VM's Inbucket.
 */
import path from 'node:path'
import { StackClientApp, StackServerApp } from '@stackframe/js'
import { KnownError, KnownErrors } from '@stackframe/stack-shared'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { acquire, type Emulator } from '../../src/client/acquire.js'
import { stopInstance } from '../../src/client/control.js'
import { cliPath, http, leftoversUnder, root, useTempHome } from '../helpers.js'

const home = useTempHome()
const NAME = 'sdk'
/** A developer's own project, in the environment the tests start from: the SDK reads HEXCLAVE_* first. */
const PARENT_PROJECT = 'some-other-project'
process.env.HEXCLAVE_PROJECT_ID = PARENT_PROJECT
const parentEnv = { ...process.env }

const PASSWORD = 'correct horse battery staple'
/** Where a verification link leads: an app's page on localhost, which the emulator's project allows. */
const CALLBACK_URL = 'http://localhost:3107/verify'
const run = Date.now().toString(36)
const address = (label: string) => `${label}-${run}@example.com`

let emulator: Emulator
/** What the Vitest plugin and the Playwright globalSetup do with the emulator's env. */
const applyEnv = () => Object.assign(process.env, emulator.env)
const serverApp = () => new StackServerApp({ tokenStore: 'memory' })
const clientApp = () => new StackClientApp({ tokenStore: 'memory' })
const signUp = (app: StackClientApp, email: string) =>
  app.signUpWithCredential({ email, password: PASSWORD, noRedirect: true, verificationCallbackUrl: CALLBACK_URL })

/** Every user of the project, page after page. */
async function allEmails(app: StackServerApp): Promise<(string | null)[]> {
  const emails: (string | null)[] = []
  let cursor: string | undefined
  do {
    const page = await app.listUsers({ limit: 2, ...(cursor ? { cursor } : {}) })
    emails.push(...page.map((u) => u.primaryEmail))
    cursor = page.nextCursor ?? undefined
  } while (cursor)
  return emails
}

beforeAll(async () => {
  emulator = await acquire({ name: NAME })
  applyEnv()
})

afterAll(async () => {
  await emulator?.release()
  await stopInstance(NAME)
  expect(await leftoversUnder(home)).toEqual([])
})

describe('the environment', () => {
  it("wins over a parent HEXCLAVE_PROJECT_ID: the SDK, given no options, talks to the emulator's project", async () => {
    const projectId = emulator.credentials!.projectId
    expect(projectId).not.toBe(PARENT_PROJECT)
    const app = serverApp()
    expect(app.projectId).toBe(projectId)
    const email = address('env')
    const user = await app.createUser({ primaryEmail: email })
    // The emulator's backend, asked directly with the handle's own keys, has that user.
    const direct = await http(`${emulator.backendUrl}/api/v1/users/${user.id}`, {
      headers: { 'x-stack-project-id': projectId, 'x-stack-access-type': 'server', 'x-stack-secret-server-key': emulator.credentials!.secretServerKey },
    })
    expect(direct.status, direct.text).toBe(200)
    expect(direct.json.primary_email).toBe(email)
  })

  it('wins over it for an app started by `stack-emulator exec` too', async () => {
    const child = await execa(process.execPath, [cliPath, 'exec', '--name', NAME, '--', process.execPath, path.join(root, 'test/programs/sdk-env.mjs')], {
      cwd: root,
      env: { ...parentEnv, HEXCLAVE_PROJECT_ID: PARENT_PROJECT },
      extendEnv: false,
      reject: false,
      timeout: 120_000,
    })
    expect(child.exitCode, child.stderr).toBe(0)
    const seen = JSON.parse(child.stdout.trim().split('\n').pop()!)
    expect(seen.projectId).toBe(emulator.credentials!.projectId)
    expect(seen.emails).toContain(address('env'))
  })
})

describe('StackServerApp from the environment alone', () => {
  it('creates, lists page by page, gets, updates and deletes users', async () => {
    const app = serverApp()
    const emails = ['s1', 's2', 's3'].map(address)
    const created = []
    for (const email of emails)
      created.push(await app.createUser({ primaryEmail: email, password: PASSWORD, primaryEmailAuthEnabled: true, displayName: 'Ada' }))

    const firstPage = await app.listUsers({ limit: 2 })
    expect(firstPage).toHaveLength(2)
    expect(firstPage.nextCursor).toEqual(expect.any(String))
    const listed = await allEmails(app)
    expect(listed).toEqual(expect.arrayContaining(emails))
    expect(new Set(listed).size).toBe(listed.length) // no user on two pages

    const [first] = created
    expect(await app.getUser(first!.id)).toMatchObject({ id: first!.id, primaryEmail: emails[0], displayName: 'Ada' })
    await first!.update({ displayName: 'Ada Lovelace' })
    expect((await app.getUser(first!.id))?.displayName).toBe('Ada Lovelace')
    await first!.delete()
    expect(await app.getUser(first!.id)).toBeNull()
    expect(await allEmails(app)).not.toContain(emails[0])
  })

  it("refuses a client key on a server route, with the SDK's own known errors", async () => {
    const { projectId, publishableClientKey } = emulator.credentials!
    // The publishable client key given to a server app as its secret server key.
    const error = await new StackServerApp({ tokenStore: 'memory', secretServerKey: publishableClientKey }).listUsers().catch((e: unknown) => e)
    expect(KnownErrors.InvalidSecretServerKey.isInstance(error), String(error)).toBe(true)
    // Client access on a server-only route (creating a user), as Stack's backend answers it.
    const response = await http(`${emulator.backendUrl}/api/v1/users`, {
      method: 'POST',
      body: { primary_email: address('client-key') },
      headers: { 'x-hexclave-project-id': projectId, 'x-hexclave-access-type': 'client', 'x-hexclave-publishable-client-key': publishableClientKey },
    })
    expect(response.status, response.text).toBe(401)
    expect(KnownErrors.InsufficientAccessType.isInstance(KnownError.fromJson(response.json)), response.text).toBe(true)
  })
})

describe('StackClientApp from the environment alone', () => {
  const email = address('client')

  it('signs up with a password, reads the current user, signs out and signs in again', async () => {
    const app = clientApp()
    expect((await signUp(app, email)).status).toBe('ok')
    const user = await app.getUser()
    expect(user).toMatchObject({ primaryEmail: email, primaryEmailVerified: false })
    await user!.signOut()
    expect(await app.getUser()).toBeNull()

    const wrong = await app.signInWithCredential({ email, password: 'not the password', noRedirect: true })
    expect(wrong.status === 'error' && KnownErrors.EmailPasswordMismatch.isInstance(wrong.error)).toBe(true)
    expect((await app.signInWithCredential({ email, password: PASSWORD, noRedirect: true })).status).toBe('ok')
    expect((await app.getUser())?.id).toBe(user!.id)
  })

  it("surfaces a duplicate sign-up as the SDK's own known error", async () => {
    const result = await signUp(clientApp(), email)
    expect(result.status).toBe('error')
    expect(result.status === 'error' && KnownErrors.UserWithEmailAlreadyExists.isInstance(result.error), JSON.stringify(result)).toBe(true)
  })
})

describe('the verification email and the mail helper', () => {
  it('the email arrives, its link leads to the callback URL with a code, and the code verifies the address', async () => {
    const email = address('verify')
    const app = clientApp()
    expect((await signUp(app, email)).status).toBe('ok')
    const userId = (await app.getUser())!.id

    const message = await emulator.mail.waitForMessage(email)
    expect(message.to.join(' ')).toContain(email)
    expect(message.subject).not.toBe('')
    const link = message.links.find((l) => l.startsWith(`${CALLBACK_URL}?`))
    expect(link, `links: ${message.links.join(', ')}`).toBeDefined()
    expect(message.html).toContain('href=')
    const code = new URL(link!).searchParams.get('code')
    expect(code).toBeTruthy()

    // What the app's page at the callback URL does with it.
    expect((await clientApp().verifyEmail(code!)).status).toBe('ok')
    expect((await serverApp().getUser(userId))?.primaryEmailVerified).toBe(true)
    expect((await emulator.mail.messages(email)).map((m) => m.id)).toContain(message.id)
  })

  it('a wait for mail that never comes ends with a TIMEOUT naming the address and the mailbox', async () => {
    const error = await emulator.mail.waitForMessage(address('nobody'), { timeoutMs: 500 }).catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'TIMEOUT' })
    expect((error as Error).message).toContain(`${emulator.services.inbucket}/api/v1/mailbox/nobody-${run}`)
  })
})

describe('reset', () => {
  it('takes every user and every message away, and the SDK works again', async () => {
    const email = address('before-reset')
    expect((await signUp(clientApp(), email)).status).toBe('ok')
    await emulator.mail.waitForMessage(email)
    expect(await allEmails(serverApp())).toContain(email)

    await emulator.reset({ force: true })
    applyEnv() // the project went with the reset: new credentials, as the plugin publishes them

    const app = serverApp()
    expect(await allEmails(app)).toEqual([])
    expect(await emulator.mail.messages(email)).toEqual([])
    expect((await signUp(clientApp(), email)).status).toBe('ok')
    expect(await allEmails(app)).toEqual([email])
    expect((await emulator.mail.waitForMessage(email)).links.some((l) => l.startsWith(CALLBACK_URL))).toBe(true)
  })
})
