import { expect, test } from 'stack-emulator/playwright'

const marker = process.env.LOG_MARKER ?? 'local'

test('passes: its report gets no logs', async ({ stackEmulator }) => {
  expect(stackEmulator.backendUrl).toMatch(/^http:/)
})

test('fails on purpose after a backend request from the page', async ({ page, stackEmulator }) => {
  await page.goto(stackEmulator.dashboardUrl)
  const url = `${stackEmulator.backendUrl}/api/v1/users?marker=${marker}`
  const headers = { 'x-stack-project-id': stackEmulator.projectId, 'x-stack-access-type': 'server', 'x-stack-secret-server-key': stackEmulator.secretServerKey }
  const status = await page.evaluate(async ([u, h]) => (await fetch(u, { headers: h })).status, [url, headers] as const)
  expect(status).toBe(200)
  expect(status, 'fails on purpose: the report should carry the request above').toBe(418)
})
