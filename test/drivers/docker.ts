/** Docker helpers for the driver tests: the engine the tests use, and the containers of a test's instances. */
import { connectEngine, loadTestcontainers } from '../../src/drivers/docker/engine.js'

/** CI starts its own engine on this socket (.ci/run); a DOCKER_HOST already set wins. */
export const dockerEnv = { DOCKER_HOST: process.env.DOCKER_HOST ?? 'unix:///run/stack-emulator-docker.sock', TESTCONTAINERS_RYUK_DISABLED: 'true' }

/** Containers (running or not) of the instances under `home`. */
export async function containersOf(home: string): Promise<string[]> {
  const client = await connectEngine(await loadTestcontainers())
  const all = await client.container.dockerode.listContainers({ all: true, filters: { label: ['stack-emulator.instance'] } })
  return all.filter((c) => c.Labels['stack-emulator.instance']?.startsWith(home)).map((c) => c.Id)
}
