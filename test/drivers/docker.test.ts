/** The Docker driver's own promises: instances side by side, nothing left after stop, a clear error without an engine. */
import { execa } from 'execa'
import { afterAll, describe, expect, it } from 'vitest'
import { acquire } from '../../src/client/acquire.js'
import { stopInstance } from '../../src/client/control.js'
import { cliPath, eventually, useTempHome } from '../helpers.js'
import { containersOf, dockerEnv } from './docker.js'

const home = useTempHome('se-docker-')
Object.assign(process.env, dockerEnv)

afterAll(async () => {
  for (const name of ['one', 'two', 'cli']) await stopInstance(name)
  expect(await eventually(async () => (await containersOf(home)).length === 0, 15_000)).toBe(true)
})

describe('docker driver', () => {
  it('runs two instances side by side on different ports', async () => {
    const [one, two] = await Promise.all([
      acquire({ name: 'one', driver: 'docker', onLog: () => {} }),
      acquire({ name: 'two', driver: 'docker', onLog: () => {} }),
    ])
    expect(one.id).not.toBe(two.id)
    expect(new Set([...Object.values(one.services), ...Object.values(two.services)]).size).toBe(10)
    for (const e of [one, two]) expect((await fetch(`${e.backendUrl}/health?db=1`)).status).toBe(200)
    expect(await containersOf(home)).toHaveLength(2)
    await Promise.all([one.release(), two.release()])
    expect(await eventually(async () => (await containersOf(home)).length === 0, 15_000)).toBe(true)
  })

  it('stack-emulator start --driver docker, then stop: the container is gone', async () => {
    const env = { ...process.env }
    const started = await execa(process.execPath, [cliPath, 'start', '--name', 'cli', '--driver', 'docker', '--json'], { env, reject: false })
    expect(started.exitCode, started.stderr).toBe(0)
    expect(JSON.parse(started.stdout)).toMatchObject({ driver: 'docker' })
    expect(await containersOf(home)).toHaveLength(1)
    const stopped = await execa(process.execPath, [cliPath, 'stop', '--name', 'cli'], { env, reject: false })
    expect(stopped.exitCode, stopped.stderr).toBe(0)
    expect(await eventually(async () => (await containersOf(home)).length === 0, 15_000)).toBe(true)
  })

  it('without a Docker engine, says how to start one', async () => {
    const saved = process.env.DOCKER_HOST
    process.env.DOCKER_HOST = `unix://${home}/no-engine.sock`
    try {
      await expect(acquire({ name: 'none', driver: 'docker', onLog: () => {} })).rejects.toMatchObject({
        code: 'DOCKER_UNAVAILABLE',
        message: expect.stringMatching(/No Docker engine answers at DOCKER_HOST=.*Start one .*dockerd/s),
      })
    } finally {
      process.env.DOCKER_HOST = saved
    }
  })
})
