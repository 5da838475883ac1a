/** A client's connection to a supervisor: requests matched by id, events to listeners. */
import net from 'node:net'
import { EventEmitter } from 'node:events'
import { StackEmulatorError, errorFromJSON, type StackEmulatorErrorJSON } from '../errors.js'
import { onLines, send, type Event, type Request } from '../supervisor/protocol.js'

export class SupervisorConnection extends EventEmitter<{ event: [Event]; close: [] }> {
  private nextId = 1
  private readonly pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>()
  closed = false
  /** Why the supervisor said it stopped (its `stopped` event), for the requests that fail after. */
  private stoppedBecause: string | undefined
  private releasedHere = false

  private constructor(private readonly socket: net.Socket) {
    super()
    onLines(socket, (line) => {
      if (line === null || typeof line !== 'object') return
      const message = line as Record<string, unknown>
      if ('event' in message) {
        const event = message as unknown as Event
        if (event.event === 'stopped') this.stoppedBecause = event.reason
        return void this.emit('event', event)
      }
      const pending = this.pending.get(message.id as number)
      if (!pending) return
      this.pending.delete(message.id as number)
      if (message.ok) pending.resolve(message.result)
      else pending.reject(errorFromJSON(message.error as StackEmulatorErrorJSON))
    })
    socket.on('error', () => {})
    socket.on('close', () => {
      this.closed = true
      for (const pending of this.pending.values()) pending.reject(this.lostError())
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
    if (this.closed) return Promise.reject(this.lostError())
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      const timer =
        timeoutMs === undefined
          ? undefined
          : setTimeout(() => {
              this.pending.delete(id)
              reject(new StackEmulatorError(`The supervisor did not answer "${request.op}" within ${timeoutMs} ms`, { code: 'TIMEOUT' }))
            }, timeoutMs)
      this.pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer)
          resolve(v as T)
        },
        reject: (e) => {
          clearTimeout(timer)
          reject(e)
        },
      })
      send(this.socket, { id, ...request })
    })
  }

  /** The lease is gone with the connection: why, when the supervisor said, and what starts a new VM. */
  private lostError(): StackEmulatorError {
    if (this.stoppedBecause) {
      return new StackEmulatorError(`The lease was lost: the emulator was stopped (${this.stoppedBecause})`, {
        code: 'LEASE_LOST',
        fix: 'Nothing retries it: acquire again (a new test run, stack-emulator start) to start a new VM.',
      })
    }
    if (this.releasedHere) return new StackEmulatorError('This lease was released', { code: 'LEASE_LOST', fix: 'Acquire again.' })
    return new StackEmulatorError('The lease was lost: the emulator supervisor closed the connection', {
      code: 'LEASE_LOST',
      fix: 'It was stopped (stack-emulator stop) or crashed; see supervisor.log in the instance folder. Acquire again to start a new VM.',
    })
  }

  close(): void {
    this.releasedHere = true
    this.socket.end()
    this.socket.destroy()
  }
}
