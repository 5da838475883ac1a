// A tiny web app: a sign-up form and the list of users, backed by the Stack Auth backend.
import http from 'node:http'
import { listUsers, signUp } from './users.mjs'

const port = Number(process.env.PORT ?? 3107)
const escape = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c])

const page = (users) => `<!doctype html><html><head><title>Users</title></head><body>
<h1>Sign up</h1>
<form method="post" action="/signup"><input name="email" aria-label="email"><button type="submit">Sign up</button></form>
<h2>Users</h2><ul id="users">${users.map((u) => `<li>${escape(u.primary_email)}</li>`).join('')}</ul>
</body></html>`

http.createServer(async (req, res) => {
  try {
    if (req.method === 'POST' && req.url === '/signup') {
      let body = ''
      for await (const chunk of req) body += chunk
      await signUp(new URLSearchParams(body).get('email'))
      res.writeHead(303, { location: '/' }).end()
    } else if (req.url === '/env') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ apiUrl: process.env.STACK_API_URL, projectId: process.env.STACK_PROJECT_ID }))
    } else {
      res.writeHead(200, { 'content-type': 'text/html' }).end(page(await listUsers()))
    }
  } catch (error) {
    res.writeHead(500, { 'content-type': 'text/plain' }).end(String(error))
  }
}).listen(port, '127.0.0.1', () => console.log(`users app on http://127.0.0.1:${port}`))
