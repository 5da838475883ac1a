import { expect, test } from 'stack-emulator/playwright'

test('Sign in with GitHub: the mock provider signs in the e-mail typed on its page, and the app is signed in', async ({ page }) => {
  const email = `octocat-${Date.now().toString(36)}@example.com`
  await page.goto('/')
  await page.getByRole('button', { name: 'Sign in with GitHub' }).click()
  await expect(page.getByRole('heading', { name: 'Mock OAuth Sign-in' })).toBeVisible()
  await page.getByLabel('Email').fill(email)
  await page.getByRole('button', { name: 'Sign in' }).click()
  await expect(page.locator('#me')).toHaveText(`Signed in as ${email}`)
  await expect(page.locator('#providers')).toHaveText('github')
  expect(new URL(page.url()).pathname).toBe('/signed-in')
})
