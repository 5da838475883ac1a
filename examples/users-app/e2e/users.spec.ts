import { expect, test } from './fixtures.js'

test('the web server and the fixture see the same emulator', async ({ request, stackEmulator }) => {
  const env = await (await request.get('/env')).json()
  expect(env.apiUrl).toBe(stackEmulator.backendUrl)
  expect(env.projectId).toBe(stackEmulator.projectId)
})

test('signs up through the page, then follows the link of the verification email', async ({ page, stackEmulator, runId }) => {
  const email = `playwright-${runId}@example.com`
  await page.goto('/')
  await page.getByLabel('email', { exact: true }).fill(email)
  await page.getByLabel('password', { exact: true }).fill('correct horse battery staple')
  await page.getByRole('button', { name: 'Sign up' }).click()
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Check your email')
  await expect(page.locator('#users')).toContainText(`${email} (unverified)`)
  const strangers = (await page.locator('#users li').allTextContents()).filter((user) => !user.includes(`-${runId}@`))
  expect(strangers).toEqual([])

  // The email Stack Auth sent links to the app's own /verify page, which verifies through the SDK.
  const message = await stackEmulator.mail.waitForMessage(email)
  const link = message.links.find((l) => l.startsWith(new URL('/verify?', page.url()).href))
  expect(link, `links in "${message.subject}": ${message.links.join(', ')}`).toBeDefined()
  await page.goto(link!)
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Email verified')
  await expect(page.locator('#users')).toContainText(`${email} (verified)`)
})

test('the dashboard answers in the browser', async ({ page, stackEmulator }) => {
  await page.goto(`${stackEmulator.dashboardUrl}/handler/sign-in`)
  await expect(page.locator('body')).toContainText(/sign in/i)
})
