/** The Docker driver's port decision: what the container is told and what the engine publishes. */
import { describe, expect, it } from 'vitest'
import { containerPorts } from '../../src/drivers/docker/driver.js'

const manifest = {
  container: { bindEnv: 'FIXTURE_BIND' },
  services: [
    { name: 'backend', guestPort: 8102, portEnv: 'BACKEND_PORT' },
    { name: 'mock-oauth', guestPort: 8114 },
  ],
}
const hostPorts = { backend: 40001, 'mock-oauth': 40002 }

describe('containerPorts', () => {
  it('with a bridge: services keep their ports inside, each published on its host port, the container told the host ports', () => {
    expect(containerPorts(manifest, hostPorts, true)).toEqual({
      env: { BACKEND_PORT: '8102', STACK_EMULATOR_BACKEND_HOST_PORT: '40001', STACK_EMULATOR_MOCK_OAUTH_HOST_PORT: '40002' },
      published: [
        { container: 8102, host: 40001 },
        { container: 8114, host: 40002 },
      ],
    })
  })

  it('with host networking: services listen on the host ports, on 127.0.0.1, and nothing is published', () => {
    expect(containerPorts(manifest, hostPorts, false)).toEqual({
      env: { FIXTURE_BIND: '127.0.0.1', BACKEND_PORT: '40001', STACK_EMULATOR_BACKEND_HOST_PORT: '40001', STACK_EMULATOR_MOCK_OAUTH_HOST_PORT: '40002' },
      published: undefined,
    })
  })
})
