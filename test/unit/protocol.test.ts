/** The supervisor's message checks: every malformed request is refused by name, never half-read. */
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import fs from 'node:fs'
import { describe, expect, it } from 'vitest'
import { MAX_LINE_BYTES, onLines, parseRequest } from '../../src/supervisor/protocol.js'

describe('parseRequest', () => {
  it('accepts each known op with its fields', () => {
    expect(parseRequest({ id: 1, op: 'hello', lease: true, client: { pid: 5, command: 'vitest' } })).toEqual({
      id: 1,
      request: { op: 'hello', lease: true, client: { pid: 5, command: 'vitest' } },
    })
    expect(parseRequest({ id: 2, op: 'acquire', isolation: 'exclusive', keepAlive: false, idleTimeoutMs: 0 }).request).toEqual({
      op: 'acquire',
      isolation: 'exclusive',
      keepAlive: false,
      idleTimeoutMs: 0,
    })
    expect(parseRequest({ id: 3, op: 'reset', force: true }).request).toEqual({ op: 'reset', force: true })
    expect(parseRequest({ id: 4, op: 'status', extra: 'ignored' }).request).toEqual({ op: 'status' })
    expect(parseRequest({ id: 5, op: 'logs' }).request).toEqual({ op: 'logs' })
    expect(parseRequest({ id: 6, op: 'logs', query: { sinceMs: 1, untilMs: 2, maxLines: 3, cursor: 'c', extra: 1 } }).request).toEqual({
      op: 'logs',
      query: { sinceMs: 1, untilMs: 2, maxLines: 3, cursor: 'c' },
    })
  })

  it.each([
    [null, /not an object/],
    [42, /not an object/],
    [[1], /not an object/],
    [{ op: 'status' }, /"id" must be an integer/],
    [{ id: '1', op: 'status' }, /"id" must be an integer/],
    [{ id: 1, op: 'format' }, /unknown op "format"/],
    [{ id: 1 }, /unknown op/],
    [{ id: 1, op: 'hello', lease: true }, /"client" must be/],
    [{ id: 1, op: 'hello', client: { pid: 1, command: 'x' } }, /"lease" must be true or false/],
    [{ id: 1, op: 'acquire', isolation: 'x', keepAlive: true, idleTimeoutMs: 0 }, /"isolation" must be one of suite, exclusive, none/],
    [{ id: 1, op: 'acquire', isolation: 'suite', keepAlive: true, idleTimeoutMs: 2 ** 31 }, /"idleTimeoutMs" must be an integer from 0/],
    [{ id: 1, op: 'reset', force: 'yes' }, /"force" must be true or false/],
    [{ id: 1, op: 'logs', query: { sinceMs: -1 } }, /"query" must be/],
    [{ id: 1, op: 'logs', query: { maxLines: 0 } }, /"query" must be/],
    [{ id: 1, op: 'logs', query: { cursor: 'x'.repeat(5000) } }, /"query" must be/],
    [{ id: 1, op: 'logs', query: 'all' }, /"query" must be/],
  ])('refuses %j', (message, reason) => {
    expect(() => parseRequest(message)).toThrow(reason)
    try {
      parseRequest(message)
    } catch (error) {
      expect((error as { code: string }).code).toBe('PROTOCOL')
    }
  })

  it('keeps a long client command to 200 characters', () => {
    const { request } = parseRequest({ id: 1, op: 'hello', lease: false, client: { pid: 1, command: 'x'.repeat(5000) } })
    expect(request.op === 'hello' && request.client.command.length).toBe(200)
  })
})

describe('onLines', () => {
  it('delivers each line and closes the connection on a line over the limit', async () => {
    const socketPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'se-lines-')), 's.sock')
    const received: unknown[] = []
    const closed = new Promise<void>((resolve) => {
      const server = net.createServer((socket) => {
        onLines(socket, (m) => received.push(m))
        socket.on('close', () => (server.close(), resolve()))
      })
      server.listen(socketPath)
    })
    await new Promise((r) => setTimeout(r, 50))
    const client = net.connect(socketPath)
    client.on('error', () => {})
    client.write('{"a":1}\n\n[2]\n')
    await new Promise((r) => setTimeout(r, 50))
    client.write('x'.repeat(MAX_LINE_BYTES + 10))
    await closed
    expect(received).toEqual([{ a: 1 }, [2]])
  })
})
