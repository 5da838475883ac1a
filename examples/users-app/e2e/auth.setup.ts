// The auth-setup project: signs a user in once, without the sign-in page, and saves the browser's
// state; the signed-in tests start from it (playwright.config.ts: `dependencies: ['setup']`).
import { authFile, test as setup } from './fixtures.js'

setup('sign in once', async ({ page, stackEmulator, runId }) => {
  const user = await stackEmulator.users.create({ email: `stored-${runId}@example.com` })
  await stackEmulator.signIn(page, user)
  await page.context().storageState({ path: authFile })
})
