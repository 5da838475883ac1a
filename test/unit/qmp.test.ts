/**
 * The QMP client against a small QMP peer on a real unix socket: greeting and capabilities,
 * replies matched by id, errors, events, timeouts, and a socket that closes under a command.
 * (QEMU itself speaks to it in every integration test.)
 */
import fs from 'node:fs'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { QmpClient, type QmpEvent } from '../../src/drivers/qemu/qmp.js'

/** A QMP peer: greets, then answers each command with `answer(command)` (undefined = never). */
async function peer(answer: (command: { execute: string; arguments?: unknown }, socket: net.Socket) => object | undefined) {
  const socketPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'se-qmp-')), 'qmp.sock')
  const server = net.createServer((socket) => {
    socket.write('{"QMP": {"version": {"qemu": {"major": 7}}, "capabilities": []}}\r\n')
    let buffer = ''
    socket.on('data', (chunk) => {
      buffer += chunk.toString()
      let newline: number
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const command = JSON.parse(buffer.slice(0, newline))
        buffer = buffer.slice(newline + 1)
        const reply = command.execute === 'qmp_capabilities' ? { return: {} } : answer(command, socket)
        if (reply) socket.write(`${JSON.stringify({ ...reply, id: command.id })}\r\n`)
      }
    })
  })
  await new Promise<void>((resolve) => server.listen(socketPath, resolve))
  return { socketPath, close: () => server.close() }
}

describe('QmpClient', () => {
  it('negotiates, matches replies to commands by id, and delivers events', async () => {
    const p = await peer((command, socket) => {
      if (command.execute === 'query-status') {
        socket.write('{"event": "RESUME", "data": {}}\r\n')
        return { return: { status: 'running' } }
      }
      return { return: `echo ${JSON.stringify(command.arguments)}` }
    })
    const qmp = await QmpClient.connect(p.socketPath)
    const events: QmpEvent[] = []
    qmp.on('event', (e) => events.push(e))
    const [status, echoed] = await Promise.all([qmp.execute('query-status'), qmp.hmp('info usernet')])
    expect(status).toEqual({ status: 'running' })
    expect(echoed).toBe('echo {"command-line":"info usernet"}')
    expect(events.map((e) => e.event)).toEqual(['RESUME'])
    qmp.close()
    p.close()
  })

  it("rejects with QEMU's description when a command fails", async () => {
    const p = await peer(() => ({ error: { class: 'GenericError', desc: 'Device hostfs-dev not found' } }))
    const qmp = await QmpClient.connect(p.socketPath)
    await expect(qmp.execute('device_del', { id: 'hostfs-dev' })).rejects.toMatchObject({
      code: 'QMP',
      message: expect.stringMatching(/QMP command "device_del" failed: Device hostfs-dev not found/),
    })
    qmp.close()
    p.close()
  })

  it('times out a command that gets no reply, and rejects pending ones when the socket closes', async () => {
    const p = await peer((command, socket) => {
      if (command.execute === 'quit') socket.destroy()
      return undefined
    })
    const qmp = await QmpClient.connect(p.socketPath)
    await expect(qmp.execute('query-migrate', undefined, 100)).rejects.toThrow(/"query-migrate" got no reply within 100 ms/)
    await expect(qmp.execute('quit')).rejects.toThrow(/socket closed before "quit" answered/)
    await expect(qmp.execute('query-status')).rejects.toThrow(/socket closed before "query-status"/)
    p.close()
  })

  it('gives up on a peer that never greets', async () => {
    const socketPath = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'se-qmp-')), 'silent.sock')
    const server = net.createServer(() => {})
    await new Promise<void>((resolve) => server.listen(socketPath, resolve))
    await expect(QmpClient.connect(socketPath, 200)).rejects.toThrow(/no QMP greeting within 200 ms/)
    server.close()
  })
})
