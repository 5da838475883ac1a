/**
 * A small QMP client: one unix socket, JSON lines, commands matched to replies by id,
 * asynchronous events delivered to listeners. Only the supervisor's driver uses it. The guest
 * agent speaks the same protocol without the greeting (`connectAgent`).
 */
import net from 'node:net'
import { EventEmitter } from 'node:events'
import { StackEmulatorError } from '../../errors.js'

export interface QmpEvent {
  event: string
  data?: Record<string, unknown>
  timestamp?: { seconds: number; microseconds: number }
}

interface Pending {
  resolve: (value: unknown) => void
  reject: (error: Error) => void
  timer: NodeJS.Timeout
  command: string
}

export class QmpClient extends EventEmitter<{ event: [QmpEvent]; close: [] }> {
  private buffer = ''
  private nextId = 1
  private readonly pending = new Map<string, Pending>()
  private closed = false

  private constructor(
    private readonly socket: net.Socket,
    private readonly label: 'QMP' | 'guest agent' = 'QMP',
  ) {
    super()
    socket.setEncoding('utf8')
    socket.on('data', (chunk: string) => this.onData(chunk))
    socket.on('close', () => this.onClose())
    socket.on('error', () => {}) // surfaced through 'close' and the pending rejections
  }

  /** Connects, reads the greeting and leaves capabilities negotiation mode. */
  static async connect(socketPath: string, timeoutMs = 5000): Promise<QmpClient> {
    const client = new QmpClient(await connectSocket(socketPath))
    try {
      await client.waitGreeting(timeoutMs)
      await client.execute('qmp_capabilities', undefined, timeoutMs)
      return client
    } catch (error) {
      client.close()
      throw error
    }
  }

  /**
   * The guest agent's channel (qemu-guest-agent): no greeting, and the agent may hold a previous
   * client's half-read request, so a 0xFF byte resets its parser and a guest-sync with a fresh id
   * proves the channel answers before anything else is sent.
   */
  static async connectAgent(socketPath: string, timeoutMs = 5000): Promise<QmpClient> {
    const client = new QmpClient(await connectSocket(socketPath), 'guest agent')
    try {
      client.socket.write(Buffer.from([0xff]))
      const token = Math.floor(Math.random() * 2 ** 31)
      const echoed = await client.execute<number>('guest-sync', { id: token }, timeoutMs)
      if (echoed !== token) throw qmpError(`the guest agent answered guest-sync with ${echoed}, not ${token}`)
      return client
    } catch (error) {
      client.close()
      throw error
    }
  }

  private greeting: Promise<void> | undefined
  private greetingResolve: (() => void) | undefined

  private waitGreeting(timeoutMs: number): Promise<void> {
    this.greeting ??= new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(qmpError('no QMP greeting', timeoutMs)), timeoutMs)
      this.greetingResolve = () => {
        clearTimeout(timer)
        resolve()
      }
    })
    return this.greeting
  }

  execute<T = unknown>(command: string, args?: Record<string, unknown>, timeoutMs = 10_000): Promise<T> {
    if (this.closed) return Promise.reject(qmpError(`${this.label} socket closed before "${command}"`, undefined, this.label))
    const id = String(this.nextId++)
    const message = JSON.stringify(args ? { execute: command, arguments: args, id } : { execute: command, id })
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id)
        reject(qmpError(`${this.label} command "${command}" got no reply`, timeoutMs, this.label))
      }, timeoutMs)
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject, timer, command })
      this.socket.write(`${message}\n`)
    })
  }

  /** Runs an HMP command (info usernet, hostfwd_add, hostfwd_remove) through QMP. */
  hmp(commandLine: string, timeoutMs?: number): Promise<string> {
    return this.execute<string>('human-monitor-command', { 'command-line': commandLine }, timeoutMs)
  }

  close(): void {
    this.socket.destroy()
  }

  private onData(chunk: string): void {
    this.buffer += chunk
    for (let newline = this.buffer.indexOf('\n'); newline >= 0; newline = this.buffer.indexOf('\n')) {
      const line = this.buffer.slice(0, newline).trim()
      this.buffer = this.buffer.slice(newline + 1)
      // The agent prefixes some answers with the 0xFF it was sent.
      const json = line.replace(/^\uFFFD|^\xFF/, '')
      if (json) this.onMessage(JSON.parse(json) as Record<string, unknown>)
    }
  }

  private onMessage(message: Record<string, unknown>): void {
    if ('QMP' in message) {
      if (this.greetingResolve) this.greetingResolve()
      else this.greeting = Promise.resolve()
      return
    }
    if ('event' in message) {
      this.emit('event', message as unknown as QmpEvent)
      return
    }
    const id = String(message.id)
    const pending = this.pending.get(id)
    if (!pending) return
    this.pending.delete(id)
    clearTimeout(pending.timer)
    if ('error' in message) {
      const error = message.error as { class?: string; desc?: string }
      pending.reject(qmpError(`${this.label} command "${pending.command}" failed: ${error.desc ?? error.class}`, undefined, this.label))
    } else {
      pending.resolve(message.return)
    }
  }

  private onClose(): void {
    this.closed = true
    for (const [id, pending] of this.pending) {
      clearTimeout(pending.timer)
      pending.reject(qmpError(`${this.label} socket closed before "${pending.command}" answered`, undefined, this.label))
      this.pending.delete(id)
    }
    this.emit('close')
  }
}

function connectSocket(socketPath: string): Promise<net.Socket> {
  return new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(socketPath)
    s.once('connect', () => resolve(s))
    s.once('error', reject)
  })
}

function qmpError(what: string, timeoutMs?: number, label: 'QMP' | 'guest agent' = 'QMP'): StackEmulatorError {
  const after = timeoutMs === undefined ? '' : ` within ${timeoutMs} ms`
  return new StackEmulatorError(`${what}${after}`, {
    code: 'QMP',
    fix:
      label === 'QMP'
        ? 'QEMU stopped answering its monitor; see the serial console log (stack-emulator logs).'
        : 'The guest agent (qemu-guest-agent) in the VM did not answer; see the serial console log (stack-emulator logs).',
  })
}
