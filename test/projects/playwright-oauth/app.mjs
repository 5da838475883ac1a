// A tiny single-page app that signs in with Stack Auth's browser SDK (bundled here with Vite):
// "Sign in with GitHub" calls signInWithOAuth('github'); the OAuth callback page calls
// callOAuthCallback(); the signed-in page shows who is signed in. The emulator's keys and URLs
// come from the environment (`stack-emulator exec`, through stackEmulatorWebServer).
import http from 'node:http'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'vite'

const here = path.dirname(fileURLToPath(import.meta.url))
const port = Number(process.env.PORT ?? 3195)
const output = await build({
  configFile: false,
  logLevel: 'warn',
  root: here,
  define: { 'process.env.NODE_ENV': '"production"' },
  build: { write: false, minify: false, lib: { entry: path.join(here, 'sdk-entry.js'), formats: ['es'], fileName: 'sdk' } },
})
const files = new Map([output].flat()[0].output.map((chunk) => [`/${chunk.fileName}`, chunk.code]))

const options = {
  projectId: process.env.STACK_PROJECT_ID,
  publishableClientKey: process.env.STACK_PUBLISHABLE_CLIENT_KEY,
  baseUrl: process.env.STACK_API_URL,
  tokenStore: 'cookie',
  urls: { oauthCallback: '/handler/oauth-callback', afterSignIn: '/signed-in', signIn: '/' },
}
const page = (script, body) => `<!doctype html><html><head><title>OAuth app</title></head><body>${body}
<script type="module">
import { StackClientApp } from '/sdk.js'
const app = new StackClientApp(${JSON.stringify(options)})
${script}
</script></body></html>`

const pages = {
  '/': page(
    `document.querySelector('#github').addEventListener('click', () => app.signInWithOAuth('github'))`,
    '<h1>Sign in</h1><button id="github">Sign in with GitHub</button>',
  ),
  '/handler/oauth-callback': page(
    `app.callOAuthCallback().catch((e) => { document.querySelector('#error').textContent = String(e.errorCode ?? e.message ?? e) })`,
    '<p>Signing in...</p><p id="error"></p>',
  ),
  '/signed-in': page(
    `const user = await app.getUser()
document.querySelector('#me').textContent = user ? 'Signed in as ' + user.primaryEmail : 'Not signed in'
document.querySelector('#providers').textContent = user ? user.oauthProviders.map((p) => p.id).join(',') : ''`,
    '<p id="me"></p><p id="providers"></p>',
  ),
}

http
  .createServer((req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`)
    if (files.has(url.pathname)) res.writeHead(200, { 'content-type': 'text/javascript' }).end(files.get(url.pathname))
    else if (url.pathname === '/env') res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ apiUrl: process.env.STACK_API_URL }))
    else if (pages[url.pathname]) res.writeHead(200, { 'content-type': 'text/html' }).end(pages[url.pathname])
    else res.writeHead(404).end('not found')
  })
  .listen(port, '127.0.0.1', () => console.log(`oauth app on http://127.0.0.1:${port}`))
