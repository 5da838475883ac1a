/** The external driver's errors: a bad URL, a remote that does not answer healthy. */
import http from 'node:http'
import type net from 'node:net'
import { describe, expect, it } from 'vitest'
import { acquire } from '../../src/client/acquire.js'
import { useTempHome } from '../helpers.js'

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
})
