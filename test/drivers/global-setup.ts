/**
 * The Docker driver's tests need an engine: a DOCKER_HOST already set is used as it is;
 * otherwise the tests start one of their own (scripts/docker-engine.sh: Debian's docker.io, its
 * own data root and socket, installed when missing, which needs root) and stop it afterwards.
 * The mapped-ports path needs a second engine, with a bridge: STACK_EMULATOR_TEST_BRIDGE_DOCKER_HOST
 * when set, else one of their own (`docker-engine.sh start bridge`). Its failure to start fails
 * only the test that needs it, with the reason.
 */
import { execa } from 'execa'
import path from 'node:path'
import type { TestProject } from 'vitest/node'

declare module 'vitest' {
  export interface ProvidedContext {
    bridgeEngine: { dockerHost: string } | { error: string }
  }
}

const script = path.join(import.meta.dirname, '../../scripts/docker-engine.sh')

async function engine(mode: 'host' | 'bridge'): Promise<{ dockerHost: string } | { error: string }> {
  const started = await execa('bash', [script, 'start', mode], { reject: false })
  if (started.exitCode === 0) return { dockerHost: started.stdout.trim() }
  return { error: `bash ${script} start ${mode} failed (exit ${started.exitCode}):\n${started.stderr}` }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stops: string[] = []
  if (!process.env.DOCKER_HOST) {
    const started = await engine('host')
    if ('error' in started)
      throw new Error(`The Docker driver's tests could not start a Docker engine: ${started.error}\nStart one and set DOCKER_HOST, or run as root.`)
    process.env.DOCKER_HOST = started.dockerHost
    stops.push('host')
    process.stderr.write(`[drivers] Docker engine at ${process.env.DOCKER_HOST}\n`)
  }
  const preset = process.env.STACK_EMULATOR_TEST_BRIDGE_DOCKER_HOST
  const bridge = preset ? { dockerHost: preset } : await engine('bridge')
  if (!preset && 'dockerHost' in bridge) stops.push('bridge')
  if ('dockerHost' in bridge) process.stderr.write(`[drivers] Docker engine with a bridge at ${bridge.dockerHost}\n`)
  project.provide(
    'bridgeEngine',
    'dockerHost' in bridge
      ? bridge
      : { error: `${bridge.error}\nSet STACK_EMULATOR_TEST_BRIDGE_DOCKER_HOST to an engine with a bridge network, or run as root.` },
  )
  return async () => {
    for (const mode of stops) await execa('bash', [script, 'stop', mode], { reject: false })
  }
}
