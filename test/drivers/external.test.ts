/** The external driver's errors (a bad URL, a remote that does not answer healthy), and the CLI's commands on its instance. */
import http from 'node:http'
import type net from 'node:net'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { acquire } from '../../src/client/acquire.js'
import { cliPath, useTempHome } from '../helpers.js'

useTempHome('se-ext-')

describe('external driver', () => {
  it('refuses a missing or malformed URL, naming the option', async () => {
    await expect(acquire({ name: 'nourl', driver: 'external', onLog: () => {} })).rejects.toMatchObject({
      code: 'BAD_OPTION',
      message: expect.stringMatching(/backend URL.*STACK_EMULATOR_BACKEND_URL/s),
    })
    await expect(acquire({ name: 'badurl', driver: 'external', urls: { backend: 'ftp:/x' }, onLog: () => {} })).rejects.toMatchObject({
      code: 'BAD_OPTION',
      message: expect.stringMatching(/not an http\(s\) URL/),
    })
  })

  it('names the unhealthy service of a remote that answers 503', async () => {
    const server = http.createServer((_req, res) => res.writeHead(503).end())
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
    try {
      await expect(
        acquire({ name: 'sick', driver: 'external', urls: { backend: url, dashboard: url }, bootTimeoutMs: 1500, onLog: () => {} }),
      ).rejects.toMatchObject({
        code: 'NOT_HEALTHY',
        message: expect.stringMatching(/external emulator is not healthy.*backend/s),
      })
    } finally {
      server.close()
    }
  })

  it('status, reset, logs and stop of its instance through the CLI: asked of the external driver, never of QEMU', async () => {
    const server = http.createServer((_req, res) => res.writeHead(200).end('ok'))
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
    try {
      await using emulator = await acquire({ name: 'ops', driver: 'external', urls: { backend: url, dashboard: url }, configFile: false, onLog: () => {} })
      const cli = (...args: string[]) => execa(process.execPath, [cliPath, ...args, '--name', emulator.name], { reject: false })
      const status = await cli('status', '--json')
      expect(status.exitCode, status.stderr).toBe(0)
      expect(JSON.parse(status.stdout)).toMatchObject({ running: true, healthy: true, vm: { driver: 'external', urls: { backend: url, dashboard: url } } })
      const reset = await cli('reset', '--force')
      expect(reset.exitCode).not.toBe(0)
      expect(reset.stderr).toMatch(/cannot be reset from here/)
      const logs = await cli('logs')
      expect([logs.exitCode, logs.stderr]).toEqual([
        0,
        `stack-emulator: instance "ops" has no console or services' output to read here; its supervisor's log: stack-emulator logs --supervisor --name ops`,
      ])
      expect((await cli('logs', '--supervisor')).exitCode).toBe(0) // its file, empty or not: this one logs nothing of its own
      const stopped = await cli('stop', '--json')
      expect(JSON.parse(stopped.stdout)).toEqual({ name: 'ops', stopped: true })
      expect((await cli('status')).exitCode).toBe(3)
      expect((await fetch(`${url}/health`)).status).toBe(200) // someone else's: left running
    } finally {
      server.close()
    }
  })
})
