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

export const listUsers = async () =>
  (await serverApp().listUsers()).map((u) => ({ email: u.primaryEmail, verified: u.primaryEmailVerified }))
