/**
 * The Docker engine through testcontainers (an optional dependency, loaded only by this driver):
 * Ryuk off (it cannot be pulled here, and the supervisor owns the container as it owns a VM),
 * and a clear error that names how to start an engine when none answers.
 */
import { StackEmulatorError } from '../../errors.js'

export type Testcontainers = typeof import('testcontainers')
export type RuntimeClient = Awaited<ReturnType<Testcontainers['getContainerRuntimeClient']>>

export async function loadTestcontainers(): Promise<Testcontainers> {
  // Read by testcontainers when it first talks to the engine.
  process.env.TESTCONTAINERS_RYUK_DISABLED = 'true'
  // A local engine's ports are on this machine. Inside a container (/.dockerenv) testcontainers
  // would look for the bridge network's gateway, and without a bridge start an alpine container
  // (which cannot be pulled here) to find one. Set the variable to choose otherwise.
  const dockerHost = process.env.DOCKER_HOST
  if (process.env.TESTCONTAINERS_HOST_OVERRIDE === undefined && (!dockerHost || dockerHost.startsWith('unix:'))) {
    process.env.TESTCONTAINERS_HOST_OVERRIDE = '127.0.0.1'
  }
  try {
    return await import('testcontainers')
  } catch (cause) {
    throw new StackEmulatorError('The Docker driver needs the testcontainers package, which is not installed', {
      code: 'DOCKER_UNAVAILABLE',
      fix: 'npm install --save-dev testcontainers@^11.14.0',
      cause,
    })
  }
}

export async function connectEngine(tc: Testcontainers): Promise<RuntimeClient> {
  try {
    return await tc.getContainerRuntimeClient()
  } catch (cause) {
    const where = process.env.DOCKER_HOST ? `at DOCKER_HOST=${process.env.DOCKER_HOST}` : 'on this machine (/var/run/docker.sock)'
    throw new StackEmulatorError(`No Docker engine answers ${where}`, {
      code: 'DOCKER_UNAVAILABLE',
      fix: 'Start one (systemctl start docker, or: dockerd --iptables=false --bridge=none --host unix:///run/stack-emulator-docker.sock &) and point DOCKER_HOST at its socket (DOCKER_HOST=unix:///run/stack-emulator-docker.sock); install it with apt-get install docker.io.',
      cause,
    })
  }
}

/** A local engine's published ports are this machine's: they go on 127.0.0.1 only. */
export function isLocal(client: RuntimeClient): boolean {
  return ['127.0.0.1', 'localhost', '::1'].includes(client.info.containerRuntime.host)
}

/** Engines started with --bridge=none have no bridge network: containers then share the host's. */
export async function hasBridge(client: RuntimeClient): Promise<boolean> {
  const networks = (await client.container.dockerode.listNetworks()) as { Name: string }[]
  return networks.some((n) => n.Name === 'bridge')
}
