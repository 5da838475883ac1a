/**
 * The mail client over real HTTP, against a small server that answers as Inbucket's REST API
 * does (shapes from Inbucket's docs: a list of summaries, a message with `body: { text, html }`).
 * The client against the VM's Inbucket is in test/integration/sdk.test.ts.
 */
import http from 'node:http'
import type { AddressInfo } from 'node:net'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { mailClient, mailFor } from '../../src/stack/mail.js'

interface Stored {
  mailbox: string
  id: string
  from: string
  to: string[]
  subject: string
  'posix-millis': number
  body: { text: string; html: string }
}

let messages: Stored[] = []
const requests: string[] = []
let server: http.Server
let url: string

/** What Inbucket would store for a message to `to`, in the mailbox Inbucket files it under. */
function deliver(to: string, subject: string, body: Partial<Stored['body']> = {}, at = Date.now(), from = '<noreply@example.com>'): Stored {
  const message = {
    mailbox: to.split('@')[0]!.split('+')[0]!.toLowerCase(),
    id: `${at}-${messages.length}`,
    from,
    to: [`<${to}>`],
    subject,
    'posix-millis': at,
    body: { text: body.text ?? '', html: body.html ?? '' },
  }
  messages.push(message)
  return message
}

beforeAll(async () => {
  server = http.createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`)
    const [, mailbox, id] = /^\/api\/v1\/mailbox\/([^/]+)(?:\/([^/]+))?$/.exec(req.url ?? '') ?? []
    const inBox = messages.filter((m) => m.mailbox === decodeURIComponent(mailbox ?? ''))
    const json = (value: unknown) => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(value))
    if (!mailbox) return res.writeHead(404).end()
    if (req.method === 'DELETE') {
      messages = messages.filter((m) => !inBox.includes(m) || (id !== undefined && m.id !== decodeURIComponent(id)))
      return json('OK')
    }
    if (id === undefined)
      return json(inBox.map(({ body: _body, ...summary }) => ({ ...summary, date: new Date(summary['posix-millis']).toISOString(), size: 1, seen: false })))
    const message = inBox.find((m) => m.id === decodeURIComponent(id))
    return message ? json({ ...message, date: new Date(message['posix-millis']).toISOString(), header: {} }) : res.writeHead(404).end()
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`
})

afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())))

beforeEach(() => {
  messages = []
  requests.length = 0
})

describe('waitForMessage', () => {
  it('returns a message that is already there, with its text, HTML and links', async () => {
    deliver('ada@example.com', 'Verify your email', {
      text: 'Go to http://localhost:3107/verify?code=a1&x=1.',
      html: '<a href="http://localhost:3107/verify?code=a1&amp;x=1">Verify</a>',
    })
    const message = await mailClient(url).waitForMessage('ada@example.com')
    expect(message).toMatchObject({
      subject: 'Verify your email',
      from: '<noreply@example.com>',
      to: ['<ada@example.com>'],
      links: ['http://localhost:3107/verify?code=a1&x=1'],
    })
    expect(message.date).toBeInstanceOf(Date)
    expect(message.html).toContain('<a href=')
    expect(requests[0]).toBe('GET /api/v1/mailbox/ada')
  })

  it('waits for a message that arrives later', async () => {
    setTimeout(() => deliver('ada@example.com', 'Late'), 300)
    const started = Date.now()
    expect((await mailClient(url).waitForMessage('ada@example.com')).subject).toBe('Late')
    expect(Date.now() - started).toBeGreaterThanOrEqual(250)
  })

  it('picks the oldest fitting message, by subject, after a given one, or since a time', async () => {
    const t = Date.now()
    const first = deliver('ada@example.com', 'Verify your email', {}, t - 3000)
    deliver('ada@example.com', 'Reset your password', {}, t - 2000)
    deliver('ada@example.com', 'Verify your email', {}, t - 1000)
    const mail = mailClient(url)
    expect((await mail.waitForMessage('ada@example.com')).id).toBe(first.id)
    expect((await mail.waitForMessage('ada@example.com', { subject: /password/ })).subject).toBe('Reset your password')
    expect((await mail.waitForMessage('ada@example.com', { after: first.id, subject: 'Verify' })).date.getTime()).toBe(t - 1000)
    expect((await mail.waitForMessage('ada@example.com', { since: new Date(t - 1500) })).date.getTime()).toBe(t - 1000)
  })

  it('only takes mail to the address itself, not to others filed in the same mailbox', async () => {
    deliver('ada@example.org', 'Not yours')
    deliver('ada+other@example.com', 'Not yours either')
    const mail = mailClient(url)
    await expect(mail.waitForMessage('ada@example.com', { timeoutMs: 200 })).rejects.toMatchObject({ code: 'TIMEOUT' })
    deliver('Ada+signup@Example.com', 'Yours')
    expect((await mail.waitForMessage('ada+signup@example.com', { timeoutMs: 1000 })).subject).toBe('Yours')
  })

  it('times out with a TIMEOUT error naming the address, the mailbox URL and the subjects it saw', async () => {
    deliver('ada@example.com', 'Welcome')
    const error = await mailClient(url)
      .waitForMessage('ada@example.com', { subject: 'Verify', timeoutMs: 250 })
      .catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'TIMEOUT' })
    const message = (error as Error).message
    expect(message).toContain('No mail to ada@example.com with a subject matching "Verify" arrived within 250 ms')
    expect(message).toContain(`mailbox: ${url}api/v1/mailbox/ada`)
    expect(message).toContain('subjects seen there for this address: "Welcome"')
  })

  it('says so when Inbucket cannot be reached at all', async () => {
    const error = await mailClient('http://127.0.0.1:9/')
      .waitForMessage('ada@example.com', { timeoutMs: 200 })
      .catch((e: unknown) => e)
    expect(error).toMatchObject({ code: 'TIMEOUT' })
    expect((error as Error).message).toMatch(/last error: Could not reach Inbucket/)
  })

  it('refuses an "after" id that is not in the mailbox at once, and a bad timeout', async () => {
    deliver('ada@example.com', 'Welcome')
    await expect(mailClient(url).waitForMessage('ada@example.com', { after: 'gone' })).rejects.toMatchObject({ code: 'BAD_OPTION' })
    await expect(mailClient(url).waitForMessage('ada@example.com', { timeoutMs: -1 })).rejects.toMatchObject({ code: 'BAD_OPTION' })
  })
})

describe('messages, delete and clear', () => {
  it('lists every message to the address, oldest first, deletes one, and clears the mailbox', async () => {
    const t = Date.now()
    deliver('bob@example.com', 'Second', {}, t)
    const first = deliver('bob@example.com', 'First', {}, t - 10)
    const mail = mailClient(url)
    expect((await mail.messages('bob@example.com')).map((m) => m.subject)).toEqual(['First', 'Second'])
    await mail.delete('bob@example.com', first.id)
    expect((await mail.messages('bob@example.com')).map((m) => m.subject)).toEqual(['Second'])
    await mail.clear('bob@example.com')
    expect(await mail.messages('bob@example.com')).toEqual([])
    expect(requests).toContain(`DELETE /api/v1/mailbox/bob/${encodeURIComponent(first.id)}`)
    expect(requests).toContain('DELETE /api/v1/mailbox/bob')
  })
})

describe('a project\'s mail helper (isolation "project")', () => {
  const a = 'Local Emulator: stack.config.aaaa.ts'
  const b = 'Local Emulator: stack.config.bbbb.ts'
  const sender = (project: string) => `"${project}" <noreply@example.com>`

  it('sees only the mail its project sent, even to an address that another project mails too', async () => {
    const t = Date.now()
    deliver('ada@example.com', 'Verify (a)', {}, t, sender(a))
    deliver('ada@example.com', 'Verify (b)', {}, t + 1, sender(b))
    expect((await mailFor({ inbucket: url }, { project: a }).messages('ada@example.com')).map((m) => m.subject)).toEqual(['Verify (a)'])
    expect((await mailFor({ inbucket: url }, { project: b }).waitForMessage('ada@example.com')).subject).toBe('Verify (b)')
    expect(await mailClient(url).messages('ada@example.com')).toHaveLength(2) // the run's helper sees all
  })

  it("waits past another project's message, and clear deletes only its own", async () => {
    deliver('ada@example.com', 'Verify (b)', {}, Date.now(), sender(b))
    const mail = mailClient(url, { project: a })
    setTimeout(() => deliver('ada@example.com', 'Verify (a)', {}, Date.now(), sender(a)), 100)
    expect((await mail.waitForMessage('ada@example.com', { timeoutMs: 2000 })).subject).toBe('Verify (a)')
    requests.length = 0
    await mail.clear('ada@example.com')
    expect(requests.filter((r) => r.startsWith('DELETE'))).toHaveLength(1)
    expect(messages.map((m) => m.subject)).toEqual(['Verify (b)'])
  })
})

describe('mailFor', () => {
  it('uses the inbucket service of the emulator', () => {
    expect(mailFor({ backend: 'http://127.0.0.1:1', inbucket: 'http://127.0.0.1:2' }).url).toBe('http://127.0.0.1:2')
  })

  it('without one, every call says that the image has no inbucket service', async () => {
    const mail = mailFor({ backend: 'http://127.0.0.1:1', dashboard: 'http://127.0.0.1:2' })
    await expect(mail.waitForMessage('ada@example.com')).rejects.toMatchObject({
      code: 'NO_SERVICE',
      message: expect.stringContaining('no "inbucket" service (its services: backend, dashboard)'),
    })
    await expect(mail.messages('ada@example.com')).rejects.toMatchObject({ code: 'NO_SERVICE' })
  })
})
