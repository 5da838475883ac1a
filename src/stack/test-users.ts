/**
 * Signed-in users for tests, without a sign-in page (issue 27): a user created and a session
 * minted through the project's server API, as Stack Auth's own e2e suite signs in
 * (apps/e2e backend-helpers.ts `Auth.fastSignUp`: POST /users, then POST /auth/sessions), and
 * the forms Stack Auth's SDK takes a session in: request headers here, cookies in
 * session-cookies.ts. x-stack-* headers: every backend generation reads them.
 */
import crypto from 'node:crypto'
import { StackEmulatorError } from '../errors.js'

/** The project whose server API the helpers call: the test's own under isolation 'project'. */
export interface ProjectAccess {
  backendUrl: string
  projectId: string
  publishableClientKey: string
  secretServerKey: string
}

export interface NewTestUser {
  /** @default a unique address at example.com */
  email?: string
  /** @default a random one, returned on the user */
  password?: string
  displayName?: string
  /** Whether the address counts as verified. @default true (a test user skips the e-mail round trip) */
  verified?: boolean
  clientMetadata?: Record<string, unknown>
  clientReadOnlyMetadata?: Record<string, unknown>
  serverMetadata?: Record<string, unknown>
  /**
   * The id of a team of the project to put the user in (as a member: the config's
   * `rbac.defaultPermissions.teamMember`), through POST /team-memberships/{team}/{user}.
   */
  team?: string
}

/** A user of the project, with the password it signs in with. */
export interface TestUser {
  id: string
  email: string
  password: string
  displayName: string | null
  /** The project it belongs to: its sessions are that project's. */
  projectId: string
}

/** A session as Stack Auth's SDK holds it. */
export interface UserSession {
  accessToken: string
  refreshToken: string
}

/** Anything with the SDK's password sign-in: a StackClientApp, a StackServerApp. */
export interface PasswordSignIn {
  signInWithCredential(options: { email: string; password: string; noRedirect?: boolean }): Promise<{ status: 'ok' | 'error'; error?: unknown }>
}

export interface TestUsers {
  /** Creates a user through the server API (a unique e-mail, a random password by default). */
  create(user?: NewTestUser): Promise<TestUser>
}

export interface SignInHelpers {
  /** Users of the project (the test's project under isolation 'project'). */
  readonly users: TestUsers
  /** A new session for `user`, minted server-side (POST /api/v1/auth/sessions): no sign-in page. */
  sessionFor(user: TestUser): Promise<UserSession>
  /** Signs an SDK app in as `user` (its password sign-in: the app's token store then holds the session). */
  signIn(app: PasswordSignIn, user: TestUser): Promise<void>
  /**
   * Request headers of a fresh session of `user`: the backend's own (it answers /users/me with
   * them), and `x-stack-auth`, which the SDK's `getUser({ tokenStore: request })` reads in an
   * app's own API route.
   */
  authHeaders(user: TestUser): Promise<Record<string, string>>
}

/** The helpers for the project `access()` gives at the time of each call. */
export function signInHelpers(access: () => ProjectAccess): SignInHelpers {
  const helpers: SignInHelpers = {
    users: { create: (user = {}) => createUser(access(), user) },
    sessionFor: (user) => createSession(access(), user),
    async signIn(app, user) {
      const result = await app.signInWithCredential({ email: user.email, password: user.password, noRedirect: true })
      if (result.status !== 'ok')
        throw new StackEmulatorError(`Signing ${user.email} in failed: ${errorText(result.error)}`, { code: 'SIGN_IN', fix: signInFix(access(), user) })
    },
    async authHeaders(user) {
      const session = await helpers.sessionFor(user)
      const { projectId, publishableClientKey } = access()
      return {
        'x-stack-access-type': 'client',
        'x-stack-project-id': projectId,
        'x-stack-publishable-client-key': publishableClientKey,
        'x-stack-access-token': session.accessToken,
        'x-stack-refresh-token': session.refreshToken,
        'x-stack-auth': JSON.stringify(session),
      }
    },
  }
  return helpers
}

async function createUser(project: ProjectAccess, user: NewTestUser): Promise<TestUser> {
  const email = user.email ?? `user-${crypto.randomUUID()}@example.com`
  const password = user.password ?? crypto.randomBytes(18).toString('base64url')
  const created = await serverCall<{ id: string; display_name: string | null }>(project, 'POST', '/users', {
    primary_email: email,
    primary_email_verified: user.verified ?? true,
    primary_email_auth_enabled: true,
    password,
    ...(user.displayName === undefined ? {} : { display_name: user.displayName }),
    ...(user.clientMetadata ? { client_metadata: user.clientMetadata } : {}),
    ...(user.clientReadOnlyMetadata ? { client_read_only_metadata: user.clientReadOnlyMetadata } : {}),
    ...(user.serverMetadata ? { server_metadata: user.serverMetadata } : {}),
  })
  if (user.team !== undefined) {
    try {
      await serverCall(project, 'POST', `/team-memberships/${encodeURIComponent(user.team)}/${created.id}`, {})
    } catch (error) {
      // No half-made test user: the one without its team goes again.
      await serverCall(project, 'DELETE', `/users/${created.id}`, undefined).catch(() => undefined)
      throw error
    }
  }
  return { id: created.id, email, password, displayName: created.display_name, projectId: project.projectId }
}

async function createSession(project: ProjectAccess, user: TestUser): Promise<UserSession> {
  if (user.projectId !== project.projectId) {
    throw new StackEmulatorError(`User ${user.email} belongs to project ${user.projectId}, not to ${project.projectId}, the one this helper signs in to`, {
      code: 'SIGN_IN',
      fix: "Create the user with the same test's helper (stackEmulator.users.create): under isolation 'project' each test has a project of its own.",
    })
  }
  const session = await serverCall<{ access_token: string; refresh_token: string }>(project, 'POST', '/auth/sessions', {
    user_id: user.id,
    expires_in_millis: SESSION_LIFETIME_MS,
  })
  return { accessToken: session.access_token, refreshToken: session.refresh_token }
}

/** A day: longer than any test run, and the refresh token outlives a suite's stored state. */
const SESSION_LIFETIME_MS = 24 * 60 * 60 * 1000

async function serverCall<T>(project: ProjectAccess, method: string, route: string, body: unknown): Promise<T> {
  const url = `${project.backendUrl}/api/v1${route}`
  let response: Response
  try {
    response = await fetch(url, {
      method,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json' }),
        'x-stack-access-type': 'server',
        'x-stack-project-id': project.projectId,
        'x-stack-secret-server-key': project.secretServerKey,
      },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      signal: AbortSignal.timeout(30_000),
    })
  } catch (cause) {
    throw new StackEmulatorError(`Could not reach ${url}`, {
      code: 'SIGN_IN',
      fix: 'Check that the emulator is running and healthy (stack-emulator status).',
      cause,
    })
  }
  const text = await response.text()
  if (!response.ok) {
    throw new StackEmulatorError(`${method} ${url} answered HTTP ${response.status}: ${errorText(text)}`, {
      code: 'SIGN_IN',
      fix: 'The backend refused the test user or session: see its error code above.',
    })
  }
  return JSON.parse(text) as T
}

function signInFix(project: ProjectAccess, user: TestUser): string {
  return user.projectId === project.projectId
    ? "Password sign-in must be on in the project's config (auth.password.allowSignIn), or use sessionFor(user) and the session's tokens."
    : "Create the user with the same test's helper (stackEmulator.users.create)."
}

const errorText = (error: unknown) => (error instanceof Error ? error.message : String(error)).slice(0, 300)
