import { mergeTests } from '@playwright/test'
import { test as emulatorTest, expect } from 'stack-emulator/playwright'
import { test as base } from '@playwright/test'

// A user fixture of the app's own, merged with the emulator's.
const appTest = base.extend<{ runId: string }>({ runId: process.env.EXAMPLE_RUN_ID ?? 'local' })
const test = mergeTests(emulatorTest, appTest)

test('the web server and the fixture see the same emulator', async ({ request, stackEmulator }) => {
  const env = await (await request.get('/env')).json()
  expect(env.apiUrl).toBe(stackEmulator.backendUrl)
  expect(env.projectId).toBe(stackEmulator.projectId)
})

test('signs a user up through the page', async ({ page, runId }) => {
  await page.goto('/')
  await page.getByLabel('email').fill(`playwright-${runId}@example.com`)
  await page.getByRole('button', { name: 'Sign up' }).click()
  await expect(page.locator('#users')).toContainText(`playwright-${runId}@example.com`)
  const strangers = (await page.locator('#users li').allTextContents()).filter((email) => !email.includes(`-${runId}@`))
  expect(strangers).toEqual([])
})

test('the dashboard answers in the browser', async ({ page, stackEmulator }) => {
  await page.goto(`${stackEmulator.dashboardUrl}/handler/sign-in`)
  await expect(page.locator('body')).toContainText(/sign in/i)
})
