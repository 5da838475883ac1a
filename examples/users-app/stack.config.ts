// The Stack Auth project of this app. The emulator mints a project for this file (by its path)
// and reads this config: password sign-in is off unless a config turns it on.
export const config = {
  auth: { password: { allowSignIn: true } },
}
