// A tiny web app: a sign-up form, a sign-in form, the page a verification email links to, who is
// signed in, and the list of users, all through Stack Auth's SDK (users.mjs).
import http from 'node:http'
import { listUsers, signedInUser, signIn, signUp, verifyEmail } from './users.mjs'

const port = Number(process.env.PORT ?? 3107)
const escapeHtml = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c])

const page = (heading, users, me) => `<!doctype html><html><head><title>Users</title></head><body>
<h1>${escapeHtml(heading)}</h1>
<p id="me">${me ? `Signed in as ${escapeHtml(me.email)}` : 'Not signed in'}</p>
<form method="post" action="/signup">
  <input name="email" aria-label="email"> <input name="password" type="password" aria-label="password">
  <button type="submit">Sign up</button>
</form>
<form method="post" action="/signin">
  <input name="email" aria-label="sign-in email"> <input name="password" type="password" aria-label="sign-in password">
  <button type="submit">Sign in</button>
</form>
<h2>Users</h2><ul id="users">${users.map((u) => `<li>${escapeHtml(u.email)} (${u.verified ? 'verified' : 'unverified'})</li>`).join('')}</ul>
</body></html>`

const html = async (req, res, status, heading) =>
  res.writeHead(status, { 'content-type': 'text/html' }).end(page(heading, await listUsers(), await signedInUser(req.headers.cookie)))
const form = async (req) => {
  let body = ''
  for await (const chunk of req) body += chunk
  return new URLSearchParams(body)
}

http
  .createServer(async (req, res) => {
    const url = new URL(req.url, `http://${req.headers.host}`)
    try {
      if (req.method === 'POST' && url.pathname === '/signup') {
        const fields = await form(req)
        // The verification email links back to this app's own page.
        await signUp(fields.get('email'), fields.get('password'), new URL('/verify', url).href)
        res.writeHead(303, { location: '/?signed-up' }).end()
      } else if (req.method === 'POST' && url.pathname === '/signin') {
        const fields = await form(req)
        res.writeHead(303, { location: '/', 'set-cookie': await signIn(fields.get('email'), fields.get('password')) }).end()
      } else if (url.pathname === '/verify') {
        await verifyEmail(url.searchParams.get('code') ?? '')
        await html(req, res, 200, 'Email verified')
      } else if (url.pathname === '/env') {
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ apiUrl: process.env.STACK_API_URL, projectId: process.env.STACK_PROJECT_ID }))
      } else {
        await html(req, res, 200, url.searchParams.has('signed-up') ? 'Check your email' : 'Sign up')
      }
    } catch (error) {
      // A known error of the SDK (taken address, bad code: it has an errorCode) is the visitor's to read.
      res.writeHead(error.errorCode ? 400 : 500, { 'content-type': 'text/plain' }).end(String(error.message ?? error))
    }
  })
  .listen(port, '127.0.0.1', () => console.log(`users app on http://127.0.0.1:${port}`))
