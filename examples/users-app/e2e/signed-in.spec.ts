import { authFile, expect, test } from './fixtures.js'

test('signIn(page, user): the first page load is signed in, no sign-in page visited; signOut(page) signs out', async ({ page, stackEmulator, runId }) => {
  const user = await stackEmulator.users.create({ email: `signed-in-${runId}@example.com` })
  await stackEmulator.signIn(page, user)
  await page.goto('/')
  await expect(page.locator('#me')).toHaveText(`Signed in as ${user.email}`)
  await stackEmulator.signOut(page)
  await page.reload()
  await expect(page.locator('#me')).toHaveText('Not signed in')
})

test('the sign-in form, as a visitor uses it', async ({ page, stackEmulator, runId }) => {
  const user = await stackEmulator.users.create({ email: `form-${runId}@example.com`, password: 'correct horse battery staple' })
  await page.goto('/')
  await expect(page.locator('#me')).toHaveText('Not signed in')
  await page.getByLabel('sign-in email').fill(user.email)
  await page.getByLabel('sign-in password').fill(user.password)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page.locator('#me')).toHaveText(`Signed in as ${user.email}`)
})

test.describe('with the state the auth-setup project saved', () => {
  test.use({ storageState: authFile })

  for (const n of [1, 2]) {
    test(`test ${n} starts signed in`, async ({ page, runId }) => {
      await page.goto('/')
      await expect(page.locator('#me')).toHaveText(`Signed in as stored-${runId}@example.com`)
    })
  }
})
