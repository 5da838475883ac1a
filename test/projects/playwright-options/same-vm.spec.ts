import { expect, test } from 'stack-emulator/playwright'
import { userEmails } from '../vitest-isolation/users.js'

test('the webServer, the globalSetup and the fixture use the configured instance and the seeded project', async ({ request, stackEmulator }) => {
  expect(stackEmulator.name).toBe(process.env.PW_INSTANCE)
  const env = await (await request.get('/env')).json()
  expect(env.apiUrl).toBe(stackEmulator.backendUrl)
  expect(process.env.STACK_API_URL).toBe(stackEmulator.backendUrl) // set by the globalSetup
  // The app's keys are the seeded snapshot's: it lists the seed's user.
  expect(env.projectId).toBe(stackEmulator.projectId)
  expect(await userEmails(stackEmulator.backendUrl, stackEmulator)).toEqual(['seeded@example.com'])
  expect(await (await request.get('/')).text()).toContain('seeded@example.com (unverified)')
})
