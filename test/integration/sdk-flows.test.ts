/**
 * The flows an app's test suite reaches for after sign-up (issue 26), through Stack Auth's own SDK
 * (@stackframe/js) against the fixture VM, with the mail helper reading the VM's Inbucket: password
 * reset and change, magic links and one-time codes, anonymous users, metadata, analytics batches,
 * teams, API keys.
 * One VM for the file, one project whose config turns these flows on.
 */
import fs from 'node:fs'
import path from 'node:path'
import { StackClientApp, StackServerApp } from '@stackframe/js'
import { KnownErrors } from '@stackframe/stack-shared'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { acquire, type Emulator } from '../../src/client/acquire.js'
import { stopInstance } from '../../src/client/control.js'
import { http, leftoversUnder, useTempHome } from '../helpers.js'

const home = useTempHome()
const NAME = 'sdk-flows'
const CONFIG = `export const config = {
  auth: { password: { allowSignIn: true }, otp: { allowSignIn: true } },
  apps: { installed: { analytics: { enabled: true } } },
  teams: { allowClientTeamCreation: true },
  apiKeys: { enabled: { user: true, team: true } },
  rbac: {
    permissions: {
      team_member: { scope: 'team', containedPermissionIds: { $read_members: true, $invite_members: true } },
      team_admin: {
        scope: 'team',
        containedPermissionIds: {
          $update_team: true,
          $delete_team: true,
          $read_members: true,
          $remove_members: true,
          $invite_members: true,
          $manage_api_keys: true,
        },
      },
    },
    defaultPermissions: { teamCreator: { team_admin: true }, teamMember: { team_member: true } },
  },
}
`
const PASSWORD = 'correct horse battery staple'
/** The app's pages the e-mails link to: on localhost, which the emulator's project allows. */
const APP = 'http://localhost:3107/handler'
const run = Date.now().toString(36)
const address = (label: string) => `${label}-${run}@example.com`

let emulator: Emulator
const serverApp = () => new StackServerApp({ tokenStore: 'memory' })
const clientApp = () => new StackClientApp({ tokenStore: 'memory' })
const codeIn = (links: string[], page: string) => {
  const link = links.find((l) => l.startsWith(`${APP}/${page}?`))
  expect(link, `links: ${links.join(', ')}`).toBeDefined()
  return new URL(link!).searchParams.get('code')!
}
async function signedUp(email: string): Promise<StackClientApp> {
  const app = clientApp()
  const result = await app.signUpWithCredential({ email, password: PASSWORD, noRedirect: true, verificationCallbackUrl: `${APP}/email-verification` })
  expect(result.status, JSON.stringify(result)).toBe('ok')
  return app
}
const isError = (result: { status: string; error?: unknown }, type: { isInstance(e: unknown): boolean }) =>
  result.status === 'error' && type.isInstance(result.error)

beforeAll(async () => {
  const configFile = path.join(fs.mkdtempSync(path.join(home, 'app-')), 'stack.config.ts')
  fs.writeFileSync(configFile, CONFIG)
  emulator = await acquire({ name: NAME, configFile })
  Object.assign(process.env, emulator.env)
})

afterAll(async () => {
  await emulator?.release()
  await stopInstance(NAME)
  expect(await leftoversUnder(home)).toEqual([])
})

describe('password reset and change', () => {
  it('sendForgotPasswordEmail sends the reset link; verifyPasswordResetCode and resetPassword use its code once', async () => {
    const email = address('reset')
    await signedUp(email)
    const app = clientApp()
    expect((await app.sendForgotPasswordEmail(email, { callbackUrl: `${APP}/password-reset` })).status).toBe('ok')
    const message = await emulator.mail.waitForMessage(email, { subject: 'Reset your password' })
    const code = codeIn(message.links, 'password-reset')

    expect((await app.verifyPasswordResetCode(code)).status).toBe('ok')
    expect((await app.resetPassword({ code, password: 'a brand new password' })).status).toBe('ok')
    expect(isError(await app.resetPassword({ code, password: 'yet another password' }), KnownErrors.VerificationCodeAlreadyUsed)).toBe(true)
    expect(isError(await app.verifyPasswordResetCode('x'.repeat(45)), KnownErrors.VerificationCodeNotFound)).toBe(true)

    const old = await app.signInWithCredential({ email, password: PASSWORD, noRedirect: true })
    expect(isError(old, KnownErrors.EmailPasswordMismatch)).toBe(true)
    expect((await app.signInWithCredential({ email, password: 'a brand new password', noRedirect: true })).status).toBe('ok')
  })

  it('an address nobody signed up with gets the same answer and no e-mail', async () => {
    const email = address('no-account')
    expect((await clientApp().sendForgotPasswordEmail(email, { callbackUrl: `${APP}/password-reset` })).status).toBe('ok')
    expect(await emulator.mail.messages(email)).toEqual([])
  })

  it('user.updatePassword needs the old password; user.setPassword refuses a user who has one', async () => {
    const email = address('update')
    const app = await signedUp(email)
    const user = (await app.getUser())!
    const wrong = await user.updatePassword({ oldPassword: 'not the password', newPassword: 'a new password' })
    expect(KnownErrors.PasswordConfirmationMismatch.isInstance(wrong), String(wrong)).toBe(true)
    const weak = await user.updatePassword({ oldPassword: PASSWORD, newPassword: 'short' })
    expect(KnownErrors.PasswordTooShort.isInstance(weak), String(weak)).toBe(true)
    expect(await user.updatePassword({ oldPassword: PASSWORD, newPassword: 'a new password' })).toBeUndefined()
    expect(await app.getUser()).not.toBeNull() // the session that changed it stays signed in
    await expect(user.setPassword({ password: 'another password' })).rejects.toThrow(/User already has a password set/)
    expect((await clientApp().signInWithCredential({ email, password: 'a new password', noRedirect: true })).status).toBe('ok')
  })
})

describe('magic links and one-time codes', () => {
  it('sendMagicLinkEmail sends one e-mail with the link and the code; the link signs a new user up, the code signs them in', async () => {
    const email = address('magic')
    const app = clientApp()
    const sent = await app.sendMagicLinkEmail(email, { callbackUrl: `${APP}/magic-link-callback` })
    expect(sent.status).toBe('ok')
    const message = await emulator.mail.waitForMessage(email, { subject: 'Sign in to' })
    const code = codeIn(message.links, 'magic-link-callback')
    expect((await app.signInWithMagicLink(code, { noRedirect: true })).status).toBe('ok')
    const user = (await app.getUser())!
    expect(user).toMatchObject({ primaryEmail: email, primaryEmailVerified: true, hasPassword: false })
    expect(isError(await clientApp().signInWithMagicLink(code, { noRedirect: true }), KnownErrors.VerificationCodeAlreadyUsed)).toBe(true)

    // The one-time password in the subject, followed by the nonce of the answer, is the same code.
    const again = await app.sendMagicLinkEmail(email, { callbackUrl: `${APP}/magic-link-callback` })
    const otpMessage = await emulator.mail.waitForMessage(email, { subject: 'Sign in to', after: message.id })
    const otp = /Your code is ([A-Z0-9]{6})$/.exec(otpMessage.subject)?.[1]
    expect(otp, otpMessage.subject).toBeDefined()
    const nonce = again.status === 'ok' ? again.data.nonce : ''
    const other = clientApp()
    expect((await other.signInWithMagicLink(otp! + nonce, { noRedirect: true })).status).toBe('ok')
    expect((await other.getUser())?.id).toBe(user.id)

    // A user without a password sets one.
    expect(await user.setPassword({ password: 'a first password' })).toBeUndefined()
    expect((await clientApp().signInWithCredential({ email, password: 'a first password', noRedirect: true })).status).toBe('ok')
  })

  it('refuses an address whose account is not verified, with the known error the SDK throws', async () => {
    const email = address('unverified')
    await signedUp(email)
    const error = await clientApp()
      .sendMagicLinkEmail(email, { callbackUrl: `${APP}/magic-link-callback` })
      .catch((e: unknown) => e)
    expect(KnownErrors.UserWithEmailAlreadyExists.isInstance(error), String(error)).toBe(true)
  })
})

describe('anonymous users', () => {
  it("getUser({ or: 'anonymous' }) signs up an anonymous user, and a sign-up upgrades it (same id, metadata kept)", async () => {
    const app = clientApp()
    expect(await app.getUser()).toBeNull()
    const anonymous = await app.getUser({ or: 'anonymous' })
    expect(anonymous).toMatchObject({ isAnonymous: true, primaryEmail: null })
    await anonymous.update({ clientMetadata: { cart: ['book'] } })
    expect(await app.getUser()).toBeNull() // not without { or: 'anonymous' }

    const email = address('was-anonymous')
    expect((await app.signUpWithCredential({ email, password: PASSWORD, noRedirect: true, verificationCallbackUrl: `${APP}/email-verification` })).status).toBe(
      'ok',
    )
    const user = (await app.getUser())!
    expect(user).toMatchObject({ id: anonymous.id, isAnonymous: false, primaryEmail: email, clientMetadata: { cart: ['book'] } })
    const listed = await serverApp().listUsers({ includeAnonymous: true })
    expect(listed.filter((u) => u.id === anonymous.id)).toHaveLength(1)
  })
})

describe('metadata', () => {
  it('client metadata from the client, server and client-read-only metadata from the server; the client reads only its two', async () => {
    const email = address('metadata')
    const app = await signedUp(email)
    const user = (await app.getUser())!
    await user.update({ clientMetadata: { theme: 'dark' } })
    const server = (await serverApp().getUser(user.id))!
    expect(server.clientMetadata).toEqual({ theme: 'dark' })
    await server.update({ serverMetadata: { plan: 'pro' }, clientReadOnlyMetadata: { credits: 3 } })
    expect(await serverApp().getUser(user.id)).toMatchObject({ serverMetadata: { plan: 'pro' }, clientReadOnlyMetadata: { credits: 3 } })

    const fresh = (await app.getUser())!
    expect(fresh.clientMetadata).toEqual({ theme: 'dark' })
    expect(fresh.clientReadOnlyMetadata).toEqual({ credits: 3 })
    expect('serverMetadata' in fresh).toBe(false)
    // The client cannot write the read-only metadata: Stack Auth's schema refuses the field.
    const { projectId, publishableClientKey } = emulator.credentials!
    const direct = await http(`${emulator.backendUrl}/api/v1/users/me`, {
      method: 'PATCH',
      body: { client_read_only_metadata: { credits: 1000 } },
      headers: {
        'x-stack-project-id': projectId,
        'x-stack-access-type': 'client',
        'x-stack-publishable-client-key': publishableClientKey,
        'x-stack-access-token': (await user.getAuthJson()).accessToken!,
      },
    })
    expect(direct.status, direct.text).toBe(400)
    expect(direct.json.code).toBe('SCHEMA_ERROR')
  })
})

describe('analytics', () => {
  it("the SDK's event batch (as its browser event tracker sends it, gzip-compressed) is accepted", async () => {
    const app = await signedUp(address('analytics'))
    const internals = (
      app as unknown as Record<
        symbol,
        { sendAnalyticsEventBatch(body: string, options: { keepalive: boolean }): Promise<{ status: string; data?: Response; error?: unknown }> }
      >
    )[Symbol.for('StackAuth--DO-NOT-USE-OR-YOU-WILL-BE-FIRED--StackAppInternals')]!
    const batch = {
      session_replay_segment_id: crypto.randomUUID(),
      batch_id: crypto.randomUUID(),
      sent_at_ms: Date.now(),
      events: [{ event_type: '$page-view', event_at_ms: Date.now(), data: { path: '/' } }],
    }
    for (const keepalive of [false, true]) {
      const result = await internals.sendAnalyticsEventBatch(JSON.stringify(batch), { keepalive })
      expect(result.status, String(result.error)).toBe('ok')
      expect(result.data!.status).toBe(200)
      expect(await result.data!.json()).toEqual({ inserted: 1 })
    }
  })
})

describe('teams', () => {
  it('a user creates a team, invites by e-mail, the invitee accepts; permissions, profiles, the selected team', async () => {
    const ownerApp = await signedUp(address('owner'))
    const owner = (await ownerApp.getUser())!
    const team = await owner.createTeam({ displayName: 'Ada Inc' })
    expect((await owner.listTeams()).map((t) => t.id)).toEqual([team.id])
    expect(await owner.hasPermission(team, '$update_team')).toBe(true)
    await team.update({ displayName: 'Ada Ltd', clientMetadata: { tier: 'gold' } })
    expect(await owner.getTeam(team.id)).toMatchObject({ displayName: 'Ada Ltd', clientMetadata: { tier: 'gold' } })

    const inviteeEmail = address('invitee')
    await team.inviteUser({ email: inviteeEmail, callbackUrl: `${APP}/team-invitation` })
    expect((await team.listInvitations()).map((i) => i.recipientEmail)).toEqual([inviteeEmail])
    const message = await emulator.mail.waitForMessage(inviteeEmail, { subject: 'You have been invited to join Ada Ltd' })
    const code = codeIn(message.links, 'team-invitation')

    const inviteeApp = await signedUp(inviteeEmail)
    expect(await inviteeApp.getTeamInvitationDetails(code)).toMatchObject({ status: 'ok', data: { teamDisplayName: 'Ada Ltd' } })
    expect((await inviteeApp.acceptTeamInvitation(code)).status).toBe('ok')
    expect(isError(await inviteeApp.acceptTeamInvitation(code), KnownErrors.VerificationCodeAlreadyUsed)).toBe(true)
    const invitee = (await inviteeApp.getUser())!
    const joined = (await invitee.getTeam(team.id))!
    expect(joined.displayName).toBe('Ada Ltd')
    expect(await invitee.hasPermission(joined, '$read_members')).toBe(true)
    expect(await invitee.hasPermission(joined, '$update_team')).toBe(false)
    const refused = await joined.update({ displayName: 'Taken over' }).catch((e: unknown) => e)
    expect(KnownErrors.TeamPermissionRequired.isInstance(refused), String(refused)).toBe(true)

    const profile = await invitee.getTeamProfile(joined)
    await profile.update({ displayName: 'Bobby' })
    expect((await joined.listUsers()).map((u) => u.teamProfile.displayName).sort()).toEqual(['Bobby', null].sort())
    await invitee.setSelectedTeam(joined)
    expect((await inviteeApp.getUser())?.selectedTeam?.id).toBe(team.id)

    // The server's view: the team, its users, membership changes.
    const serverTeam = (await serverApp().getTeam(team.id))!
    expect(serverTeam).toMatchObject({ displayName: 'Ada Ltd' })
    expect((await serverTeam.listUsers()).map((u) => u.id).sort()).toEqual([owner.id, invitee.id].sort())
    const carol = await serverApp().createUser({ primaryEmail: address('carol') })
    await serverTeam.addUser(carol.id)
    expect((await serverApp().listUsers({ teamId: team.id })).map((u) => u.id)).toContain(carol.id)
    await serverTeam.removeUser(carol.id)
    const gone = await serverTeam.removeUser(carol.id).catch((e: unknown) => e)
    expect(KnownErrors.TeamMembershipNotFound.isInstance(gone), String(gone)).toBe(true)

    // Leaving, then the team is out of reach; the owner deletes it.
    await invitee.leaveTeam(joined)
    expect(await invitee.listTeams()).toEqual([])
    expect((await inviteeApp.getUser())?.selectedTeam).toBeNull()
    await team.delete()
    expect(await serverApp().getTeam(team.id)).toBeNull()
  })

  it('the server creates teams and adds members; the client is refused a team it is not in', async () => {
    const server = serverApp()
    const team = await server.createTeam({ displayName: 'Server team' })
    const user = await server.createUser({ primaryEmail: address('server-member'), password: PASSWORD, primaryEmailAuthEnabled: true })
    await team.addUser(user.id)
    await team.update({ serverMetadata: { plan: 'pro' }, clientReadOnlyMetadata: { seats: 3 } })
    expect(await server.getTeam(team.id)).toMatchObject({ serverMetadata: { plan: 'pro' }, clientReadOnlyMetadata: { seats: 3 } })

    const app = clientApp()
    expect((await app.signInWithCredential({ email: user.primaryEmail!, password: PASSWORD, noRedirect: true })).status).toBe('ok')
    const member = (await app.getUser())!
    expect((await member.getTeam(team.id))?.clientReadOnlyMetadata).toEqual({ seats: 3 })
    const outsiderApp = await signedUp(address('outsider'))
    expect(await (await outsiderApp.getUser())!.getTeam(team.id)).toBeNull()
  })

  it("users.create({ team }) puts the test user in the team, with the config's member permissions; an unknown team creates no user", async () => {
    const team = await serverApp().createTeam({ displayName: 'Test users' })
    const user = await emulator.users.create({ team: team.id, displayName: 'Member' })
    const app = clientApp()
    await emulator.signIn(app, user)
    const member = (await app.getUser())!
    expect((await member.listTeams()).map((t) => t.id)).toEqual([team.id])
    expect(await member.hasPermission((await member.getTeam(team.id))!, '$invite_members')).toBe(true)

    const email = address('teamless')
    await expect(emulator.users.create({ email, team: crypto.randomUUID() })).rejects.toThrow(/TEAM_NOT_FOUND/)
    expect((await serverApp().listUsers()).map((u) => u.primaryEmail)).not.toContain(email)
  })
})

describe('API keys', () => {
  it('user.createApiKey shows the secret once; listApiKeys, getUser({ apiKey }) on the server; revoke() and expiry end it', async () => {
    const app = await signedUp(address('keys'))
    const user = (await app.getUser())!
    const key = await user.createApiKey({ description: 'CI', expiresAt: null })
    expect(key).toMatchObject({ type: 'user', userId: user.id, description: 'CI', manuallyRevokedAt: null })
    expect(key.value).toMatch(/^sk_[0-9a-z]{45}[0-9a-f]{32}user1574ck4u7h[0-9a-f]{8}$/)
    const expired = await user.createApiKey({ description: 'old', expiresAt: new Date(Date.now() - 60_000) })
    const listed = await user.listApiKeys()
    expect(listed.map((k) => [k.id, k.value])).toEqual([
      [expired.id, { lastFour: expired.value.slice(-4) }],
      [key.id, { lastFour: key.value.slice(-4) }],
    ])
    expect(listed.map((k) => k.whyInvalid())).toEqual(['expired', null])

    expect((await serverApp().getUser({ apiKey: key.value }))?.id).toBe(user.id)
    expect(await serverApp().getUser({ apiKey: expired.value })).toBeNull()
    expect(await serverApp().getUser({ apiKey: 'sk_not_a_key' })).toBeNull()
    expect(await serverApp().getTeam({ apiKey: key.value })).toBeNull() // a user's key is not a team's

    await listed[1]!.revoke()
    expect(await serverApp().getUser({ apiKey: key.value })).toBeNull()
    const revoked = (await user.listApiKeys())[1]!
    expect(revoked.whyInvalid()).toBe('manually-revoked')

    // The server manages any user's keys; a missing expiresAt is refused as Stack Auth's schema refuses it.
    const serverUser = (await serverApp().getUser(user.id))!
    expect((await serverUser.listApiKeys()).map((k) => k.id)).toEqual([expired.id, key.id])
    const missing = await user.createApiKey({ description: 'no expiry given' } as never).catch((e: unknown) => e)
    expect(KnownErrors.SchemaError.isInstance(missing), String(missing)).toBe(true)
  })

  it('team.createApiKey needs $manage_api_keys; getTeam({ apiKey }) finds the team; a member without it is refused', async () => {
    const ownerApp = await signedUp(address('team-keys'))
    const owner = (await ownerApp.getUser())!
    const team = await owner.createTeam({ displayName: 'Keys Inc' })
    const key = await team.createApiKey({ description: 'deploy', expiresAt: new Date(Date.now() + 3_600_000), isPublic: true })
    expect(key).toMatchObject({ type: 'team', teamId: team.id })
    expect(key.value.startsWith('pk_')).toBe(true)
    expect((await team.listApiKeys()).map((k) => k.id)).toEqual([key.id])
    expect((await serverApp().getTeam({ apiKey: key.value }))?.id).toBe(team.id)
    expect(await serverApp().getUser({ apiKey: key.value })).toBeNull()

    const server = serverApp()
    const member = await server.createUser({ primaryEmail: address('no-manage'), password: PASSWORD, primaryEmailAuthEnabled: true })
    await (await server.getTeam(team.id))!.addUser(member.id)
    const memberApp = clientApp()
    await memberApp.signInWithCredential({ email: member.primaryEmail!, password: PASSWORD, noRedirect: true })
    const memberTeam = (await (await memberApp.getUser())!.getTeam(team.id))!
    const refused = await memberTeam.createApiKey({ description: 'nope', expiresAt: null }).catch((e: unknown) => e)
    expect(KnownErrors.ApiKeyNotFound.isInstance(refused), String(refused)).toBe(true)
  })
})
