/**
 * The supervisor and QEMU get what they read, not the client's whole environment (issue 22): a
 * token or cloud key set for the test run never reaches /proc/<pid>/environ of what outlives it.
 */
import fs from 'node:fs'
import http from 'node:http'
import type net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { childEnvironment } from '../../src/child-env.js'
import { acquire } from '../../src/client/acquire.js'
import { QemuProcess } from '../../src/drivers/qemu/process.js'
import { eventually, supervisorProcesses, useTempHome } from '../helpers.js'

const home = useTempHome('se-env-')
const SECRETS = { GITHUB_TOKEN: 'ghp_not-for-the-supervisor', AWS_SECRET_ACCESS_KEY: 'not-for-qemu', NODE_OPTIONS: '--inspect' }
const environ = (file: string) =>
  Object.fromEntries(
    fs
      .readFileSync(file, 'utf8')
      .split('\0')
      .filter(Boolean)
      .map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]),
  )

afterEach(() => {
  for (const name of Object.keys(SECRETS)) delete process.env[name]
})

describe('the environment of what the package starts', () => {
  it('keeps the settings, PATH, HOME, locale and proxies; drops the rest', () => {
    const env = {
      ...SECRETS,
      PATH: '/bin',
      HOME: '/h',
      LC_ALL: 'C',
      STACK_EMULATOR_DRIVER: 'qemu',
      https_proxy: 'http://127.0.0.1:3128',
      DOCKER_HOST: 'unix:///d',
      SSH_AUTH_SOCK: '/s',
    }
    expect(childEnvironment(env)).toEqual({
      PATH: '/bin',
      HOME: '/h',
      LC_ALL: 'C',
      STACK_EMULATOR_DRIVER: 'qemu',
      https_proxy: 'http://127.0.0.1:3128',
      DOCKER_HOST: 'unix:///d',
    })
  })

  it('the supervisor: no token in its /proc/<pid>/environ', async () => {
    Object.assign(process.env, SECRETS)
    // An external "emulator" that answers 503: the supervisor stays up, probing, until the boot timeout.
    const server = http.createServer((_req, res) => res.writeHead(503).end())
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    const url = `http://127.0.0.1:${(server.address() as net.AddressInfo).port}`
    try {
      const acquiring = acquire({ name: 'env', driver: 'external', urls: { backend: url, dashboard: url }, bootTimeoutMs: 4000, onLog: () => {} }).catch(
        (error: Error) => error,
      )
      expect(await eventually(() => supervisorProcesses(home).length === 1, 4000, 20)).toBe(true)
      const env = environ(`/proc/${supervisorProcesses(home)[0]!.pid}/environ`)
      expect(env.STACK_EMULATOR_HOME).toBe(home)
      expect(env.PATH).toBe(process.env.PATH)
      for (const name of Object.keys(SECRETS)) expect(env, name).not.toHaveProperty(name)
      expect(await acquiring).toMatchObject({ code: 'NOT_HEALTHY' })
    } finally {
      server.close()
    }
  })

  it('QEMU: started with the same short list', async () => {
    Object.assign(process.env, SECRETS)
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'se-env-qemu-'))
    const fake = path.join(dir, 'qemu')
    fs.writeFileSync(fake, '#!/bin/sh\ncat /proc/$$/environ > "$1"\nexit 3\n', { mode: 0o755 })
    const out = path.join(dir, 'environ')
    await expect(
      QemuProcess.launch({ binary: fake, argv: [out], qmpSocket: path.join(dir, 'qmp.sock'), consoleLog: path.join(dir, 'console.log') }),
    ).rejects.toMatchObject({ code: 'BOOT_FAILED' })
    const env = environ(out)
    expect(env.PATH).toBe(process.env.PATH)
    for (const name of Object.keys(SECRETS)) expect(env, name).not.toHaveProperty(name)
    fs.rmSync(dir, { recursive: true, force: true })
  })
})
