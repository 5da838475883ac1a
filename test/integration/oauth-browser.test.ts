/**
 * "Sign in with GitHub" as a user's e2e test clicks it (issue 26): a Playwright run in Debian's
 * chromium against the fixture VM, whose config enables the shared github provider; the app
 * (test/projects/playwright-oauth) calls the browser SDK's signInWithOAuth and callOAuthCallback,
 * the mock provider's page signs in the e-mail typed into it.
 */
import fs from 'node:fs'
import net from 'node:net'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, expect, it } from 'vitest'
import { acquire } from '../../src/client/acquire.js'
import { stopInstance } from '../../src/client/control.js'
import { leftoversUnder, root, useTempHome } from '../helpers.js'

const home = useTempHome('se-oauth-')
const CONFIG = `export const config = {
  auth: { oauth: { providers: { github: { type: 'github', isShared: true, allowSignIn: true, allowConnectedAccounts: true } } } },
}
`

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
    server.on('error', reject)
  })

afterAll(async () => {
  await stopInstance('pw-oauth')
  expect(await leftoversUnder(home)).toEqual([])
})

// One fixed port, as a user's config gives it: its snapshot is captured once per cache, not per run.
const MOCK_OAUTH_PORT = 28114

it('signInWithOAuth("github") → the mock provider\'s sign-in page → callback → the app is signed in as that e-mail, on a VM restored from the snapshot of that port', async () => {
  const project = path.join(root, 'test/projects/playwright-oauth')
  const configFile = path.join(fs.mkdtempSync(path.join(home, 'app-')), 'stack.config.ts')
  fs.writeFileSync(configFile, CONFIG)
  const result = await execa(
    path.join(root, 'node_modules/.bin/playwright'),
    ['test', '--config', path.join(project, 'playwright.config.ts'), '--reporter', 'line'],
    {
      cwd: project,
      env: { PW_INSTANCE: 'pw-oauth', PW_CONFIG_FILE: configFile, APP_PORT: String(await freePort()), MOCK_OAUTH_PORT: String(MOCK_OAUTH_PORT) },
      reject: false,
      all: true,
    },
  )
  // The first start on this port may capture its snapshot (a cold boot); then a VM restored from
  // it knows the port: the mock's discovery names it.
  expect(result.exitCode, result.all).toBe(0)
  expect(result.all).toMatch(/1 passed/)
  await stopInstance('pw-oauth')
  const restored = await acquire({ name: 'pw-oauth', configFile: false, ports: { 'mock-oauth': MOCK_OAUTH_PORT }, onLog: () => {} })
  try {
    expect(restored.origin).toBe('snapshot')
    const discovery = (await (await fetch(`${restored.services['mock-oauth']}/.well-known/openid-configuration`)).json()) as { authorization_endpoint: string }
    expect(discovery.authorization_endpoint).toBe(`http://localhost:${MOCK_OAUTH_PORT}/auth`)
  } finally {
    await restored.release()
  }
})
