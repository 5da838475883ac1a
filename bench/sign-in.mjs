// signInMs (issue 27): a signed-in first page load of the example app through the helpers
// (users.create, the session's cookies, one page load) beside the same through the app's own
// pages (sign up, then sign in, as a visitor), each from a fresh browser context. Chromium is
// Debian's; the app runs with the emulator's env, as `stack-emulator exec` would start it.
import { execa } from 'execa'
import net from 'node:net'
import path from 'node:path'
import { chromium } from '@playwright/test'
import { acquire, stopInstance } from '../dist/index.js'
import { pollUntil } from '../dist/poll.js'
import { signInBrowser } from '../dist/integrations/playwright/sign-in.js'

const freePort = () =>
  new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address()
      server.close(() => resolve(port))
    })
  })

export async function measureSignIn({ root, runs, say }) {
  const emulator = await acquire({ name: 'sign-in', onLog: () => {} })
  const port = await freePort()
  const url = `http://127.0.0.1:${port}`
  const app = execa(process.execPath, [path.join(root, 'examples/users-app/server.mjs')], { env: { ...emulator.env, PORT: String(port) }, reject: false })
  const browser = await chromium.launch({ executablePath: '/usr/bin/chromium', args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking'] })
  try {
    await pollUntil(
      () =>
        fetch(`${url}/env`).then(
          (r) => r.ok,
          () => false,
        ),
      { timeoutMs: 30_000, intervalMs: 100, timeoutError: () => new Error('the example app did not start') },
    )
    const signedInPage = async (setUp) => {
      const context = await browser.newContext({ baseURL: url })
      const page = await context.newPage()
      const started = performance.now()
      const email = await setUp(context, page)
      await page.goto('/')
      await page.locator('#me').getByText(`Signed in as ${email}`).waitFor()
      const ms = performance.now() - started
      await context.close()
      return ms
    }
    const helper = []
    const ui = []
    for (let i = 0; i < runs; i++) {
      helper.push(
        await signedInPage(async (context) => {
          const user = await emulator.users.create()
          await signInBrowser(context, user.projectId, await emulator.sessionFor(user), { url })
          return user.email
        }),
      )
      ui.push(
        await signedInPage(async (_context, page) => {
          const email = `ui-${i}-${Date.now()}@example.com`
          await page.goto('/')
          await page.getByLabel('email', { exact: true }).fill(email)
          await page.getByLabel('password', { exact: true }).fill('correct horse battery staple')
          await page.getByRole('button', { name: 'Sign up' }).click()
          await page.getByRole('heading', { name: 'Check your email' }).waitFor()
          await page.getByLabel('sign-in email').fill(email)
          await page.getByLabel('sign-in password').fill('correct horse battery staple')
          await page.getByRole('button', { name: 'Sign in' }).click()
          return email
        }),
      )
      say(`signed-in first page ${i + 1}/${runs}: helpers ${helper.at(-1).toFixed(0)} ms, the app's pages ${ui.at(-1).toFixed(0)} ms`)
    }
    return { helper, ui }
  } finally {
    await browser.close()
    app.kill()
    await app
    await emulator.release()
    await stopInstance('sign-in')
  }
}
