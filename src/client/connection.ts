/** A client's connection to a supervisor: requests matched by id, events to listeners. */
import net from 'node:net'
import { EventEmitter } from 'node:events'
import { StackEmulatorError, errorFromJSON, type StackEmulatorErrorJSON } from '../errors.js'
import { onLines, send, type Event, type Request } from '../supervisor/protocol.js'

export class SupervisorConnection extends EventEmitter<{ event: [Event]; close: [] }> {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  closed = false

  private constructor(private readonly socket: net.Socket) {
    super()
    onLines(socket, (line) => {
      if (line === null || typeof line !== 'object') return
      const message = line as Record<string, unknown>
      if ('event' in message) return void this.emit('event', message as unknown as Event)
      const pending = this.pending.get(message.id as number)
      if (!pending) return
      this.pending.delete(message.id as number)
      if (message.ok) pending.resolve(message.result)
      else pending.reject(errorFromJSON(message.error as StackEmulatorErrorJSON))
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      this.closed = true
      for (const pending of this.pending.values()) {
        pending.reject(new StackEmulatorError('The emulator supervisor closed the connection', {
          code: 'LEASE_LOST', fix: 'It was stopped (stack-emulator stop) or crashed; see supervisor.log in the instance folder.',
        }))
      }
      this.pending.clear()
      this.emit('close')
    })
  }

  static connect(socketPath: string, timeoutMs = 2000): Promise<SupervisorConnection> {
    return new Promise((resolve, reject) => {
      const socket = net.connect(socketPath)
      const timer = setTimeout(() => {
        socket.destroy()
        reject(new Error(`no answer from ${socketPath} within ${timeoutMs} ms`))
      }, timeoutMs)
      socket.once('connect', () => {
        clearTimeout(timer)
        resolve(new SupervisorConnection(socket))
      })
      socket.once('error', (error) => {
        clearTimeout(timer)
        reject(error)
      })
    })
  }

  request<T>(request: Request, timeoutMs?: number): Promise<T> {
    if (this.closed) return Promise.reject(new StackEmulatorError('The lease was lost: the emulator was stopped', { code: 'LEASE_LOST', fix: 'Acquire again.' }))
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      const timer = timeoutMs === undefined ? undefined : setTimeout(() => {
        this.pending.delete(id)
        reject(new StackEmulatorError(`The supervisor did not answer "${request.op}" within ${timeoutMs} ms`, { code: 'TIMEOUT' }))
      }, timeoutMs)
      this.pending.set(id, {
        resolve: (v) => (clearTimeout(timer), resolve(v as T)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      })
      send(this.socket, { id, ...request })
    })
  }

  close(): void {
    this.socket.end()
    this.socket.destroy()
  }
}
