import { describe, expect, it } from 'vitest'
import { parseCli } from '../../src/cli/args.js'
import { emulatorEnv } from '../../src/stack/environment.js'

describe('parseCli', () => {
  it('maps flags to options and keeps what follows --', () => {
    const parsed = parseCli(['exec', '--name', 'ci', '--port', 'backend=26701', '--no-snapshot', '--', 'npm', 'test', '--json'])
    expect(parsed.command).toEqual(['exec'])
    expect(parsed.rest).toEqual(['npm', 'test', '--json'])
    expect(parsed.json).toBe(false)
    expect(parsed.options).toMatchObject({ name: 'ci', ports: { backend: 26701 }, snapshot: false })
  })

  it('rejects unknown options and malformed values with a message that names the fix', () => {
    expect(() => parseCli(['start', '--bogus'])).toThrow(/Unknown option '--bogus'.*--help/)
    expect(() => parseCli(['start', '--port', '26701'])).toThrow(/--port expects <service>=<port>/)
    expect(() => parseCli(['start', '--memory', 'lots'])).toThrow(/--memory expects a whole number/)
  })
})

describe('emulatorEnv', () => {
  it('uses the names Stack Auth SDKs read, and keeps secret keys out of public prefixes', () => {
    const credentials = { projectId: 'p1', publishableClientKey: 'pck_1', secretServerKey: 'ssk_1', superSecretAdminKey: 'sak_1' }
    const env = emulatorEnv({ backend: 'http://127.0.0.1:1', dashboard: 'http://127.0.0.1:2' }, credentials)
    expect(env).toMatchObject({
      STACK_API_URL: 'http://127.0.0.1:1', NEXT_PUBLIC_STACK_API_URL: 'http://127.0.0.1:1', VITE_STACK_API_URL: 'http://127.0.0.1:1',
      EXPO_PUBLIC_STACK_API_URL: 'http://127.0.0.1:1', STACK_PROJECT_ID: 'p1', NEXT_PUBLIC_STACK_PROJECT_ID: 'p1',
      VITE_STACK_PUBLISHABLE_CLIENT_KEY: 'pck_1', STACK_SECRET_SERVER_KEY: 'ssk_1', STACK_SUPER_SECRET_ADMIN_KEY: 'sak_1',
      STACK_EMULATOR_BACKEND_URL: 'http://127.0.0.1:1', STACK_EMULATOR_DASHBOARD_URL: 'http://127.0.0.1:2',
    })
    expect(env.NEXT_PUBLIC_STACK_SECRET_SERVER_KEY).toBeUndefined()
  })
})
