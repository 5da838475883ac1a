// The app's backend code: Stack Auth's own SDK, configured by nothing but the environment
// variables it reads (stack-emulator sets them: the plugin, the fixture or `stack-emulator exec`).
import { StackClientApp, StackServerApp } from '@stackframe/js'

let server
// Made on first use, so that importing this module never needs the environment.
const serverApp = () => (server ??= new StackServerApp({ tokenStore: 'memory' }))
// One client app per visitor's request: its memory token store holds that visitor's session only.
const clientApp = () => new StackClientApp({ tokenStore: 'memory' })

/**
 * Signs a user up with a password. Stack Auth emails them a link to `verificationCallbackUrl`
 * with `?code=...`; that page hands the code to verifyEmail(). A known error (the address is
 * taken, the password too weak) is thrown with the SDK's own message.
 */
export async function signUp(email, password, verificationCallbackUrl) {
  const result = await clientApp().signUpWithCredential({ email, password, verificationCallbackUrl, noRedirect: true })
  if (result.status === 'error') throw result.error
}

export async function verifyEmail(code) {
  const result = await clientApp().verifyEmail(code)
  if (result.status === 'error') throw result.error
}

export const listUsers = async () => (await serverApp().listUsers()).map((u) => ({ email: u.primaryEmail, verified: u.primaryEmailVerified }))

/**
 * The visitor signed in, read from the request's cookies as Stack Auth's SDK reads a browser's
 * (a session the sign-in form below set, or one a test put there with stackEmulator.signIn).
 */
export async function signedInUser(cookieHeader) {
  const user = await serverApp().getUser({ tokenStore: { headers: { cookie: cookieHeader ?? '' } } })
  return user ? { email: user.primaryEmail } : null
}

/**
 * Signs a visitor in with a password; returns the cookie that keeps the session: the refresh
 * token under the name Stack Auth's SDK reads (`stack-refresh-<project id>`, its plain form).
 */
export async function signIn(email, password) {
  const app = clientApp()
  const result = await app.signInWithCredential({ email, password, noRedirect: true })
  if (result.status === 'error') throw result.error
  const { refreshToken } = await (await app.getUser({ or: 'throw' })).currentSession.getTokens()
  return `stack-refresh-${app.projectId}=${encodeURIComponent(refreshToken)}; Path=/; SameSite=Lax`
}
