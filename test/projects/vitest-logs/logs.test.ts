import { expect, inject, test } from 'vitest'

const marker = process.env.LOG_MARKER ?? 'local'

test('passes: its report gets no logs', () => {
  expect(inject('stackEmulator')!.backendUrl).toMatch(/^http:/)
})

test('fails on purpose after a backend request', async () => {
  const emulator = inject('stackEmulator')!
  const response = await fetch(`${emulator.backendUrl}/api/v1/users?marker=${marker}`, {
    headers: { 'x-stack-project-id': emulator.projectId, 'x-stack-access-type': 'server', 'x-stack-secret-server-key': emulator.secretServerKey },
  })
  expect(response.status).toBe(200)
  expect(response.status, 'fails on purpose: the report should carry the request above').toBe(418)
})
