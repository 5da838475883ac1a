/**
 * The Docker driver on an engine with a bridge (issue 14): each service published on its own
 * host port, on 127.0.0.1 only, and the container told the ports its URLs name.
 */
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest'
import { acquire } from '../../src/client/acquire.js'
import { stopInstance } from '../../src/client/control.js'
import { connectEngine, hasBridge, loadTestcontainers } from '../../src/drivers/docker/engine.js'
import { eventually, useTempHome } from '../helpers.js'
import { containersOf } from './docker.js'

const home = useTempHome('se-docker-bridge-')

beforeAll(async () => {
  const engine = inject('bridgeEngine')
  if ('error' in engine) throw new Error(`No Docker engine with a bridge for this test: ${engine.error}`)
  // This file's own process and the supervisors it spawns talk to the bridged engine.
  Object.assign(process.env, { DOCKER_HOST: engine.dockerHost, TESTCONTAINERS_RYUK_DISABLED: 'true' })
  expect(await hasBridge(await connectEngine(await loadTestcontainers())), `${engine.dockerHost} has no bridge network`).toBe(true)
})

afterAll(async () => {
  for (const name of ['mapped-one', 'mapped-two']) await stopInstance(name)
  expect(await eventually(async () => (await containersOf(home)).length === 0, 15_000)).toBe(true)
})

describe('docker driver, bridge networking', () => {
  it('maps each service to its own port on 127.0.0.1, for two instances side by side', async () => {
    const [one, two] = await Promise.all(['mapped-one', 'mapped-two'].map((name) => acquire({ name, driver: 'docker', onLog: () => {} })))
    expect(one!.accel).toBe('container')
    const urls = [...Object.values(one!.services), ...Object.values(two!.services)]
    expect(new Set(urls).size).toBe(10)
    for (const url of urls) expect(new URL(url).hostname).toBe('127.0.0.1')
    for (const e of [one!, two!]) {
      expect((await fetch(`${e.backendUrl}/health?db=1`)).status).toBe(200)
      expect(e.credentials?.projectId).toBeTruthy()
    }

    const dockerode = (await connectEngine(await loadTestcontainers())).container.dockerode
    for (const e of [one!, two!]) {
      const inspected = await dockerode.getContainer(e.id).inspect()
      // Published, not host networking: every binding on 127.0.0.1, on the port its URL names.
      expect(inspected.HostConfig.NetworkMode).not.toBe('host')
      const bindings = Object.entries(inspected.NetworkSettings.Ports ?? {}).flatMap(([, b]) => b ?? [])
      expect(bindings.length).toBeGreaterThanOrEqual(5)
      for (const b of bindings) expect(b.HostIp).toBe('127.0.0.1')
      expect(bindings.map((b) => Number(b.HostPort)).sort()).toEqual(
        Object.values(e.services)
          .map((u) => Number(new URL(u).port))
          .sort(),
      )
      // The container is told the host port its browser URLs name, not its own.
      expect(inspected.Config.Env).toContain(`STACK_EMULATOR_BACKEND_HOST_PORT=${new URL(e.backendUrl).port}`)
    }

    const { durationMs } = await one!.reset({ force: true })
    expect(durationMs).toBeGreaterThan(0)
    expect((await fetch(`${one!.backendUrl}/health?db=1`)).status).toBe(200)
    await Promise.all([one!.release(), two!.release()])
  })
})
