import { expect, test } from 'stack-emulator/playwright'

test('the webServer, the globalSetup and the fixture use the configured instance', async ({ request, stackEmulator }) => {
  expect(stackEmulator.name).toBe(process.env.PW_INSTANCE)
  const env = await (await request.get('/env')).json()
  expect(env.apiUrl).toBe(stackEmulator.backendUrl)
  expect(process.env.STACK_API_URL).toBe(stackEmulator.backendUrl) // set by the globalSetup
})
