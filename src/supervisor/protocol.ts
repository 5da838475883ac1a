/**
 * The supervisor's protocol: JSON lines over the instance's unix socket. A client sends
 * requests ({id, op, ...}); the supervisor answers ({id, ok, result | error}) and pushes
 * events ({event, ...}) for progress, log lines and a stop under the client's feet.
 * One connection that said `hello` with `lease: true` is one lease: it ends when the socket
 * closes, so a runner that dies releases its lease at once.
 */
import type net from 'node:net'
import type { VmOrigin } from '../drivers/types.js'

export type Isolation = 'suite' | 'exclusive' | 'none'

export interface ClientInfo {
  pid: number
  command: string
}

export interface LeaseOptions {
  isolation: Isolation
  /** Keep the VM after the last lease ends, for idleTimeoutMs (0 = until `stop`). */
  keepAlive: boolean
  idleTimeoutMs: number
}

export type Request =
  | { op: 'hello'; lease: boolean; client: ClientInfo }
  | ({ op: 'acquire' } & LeaseOptions)
  | { op: 'status' }
  | { op: 'reset'; force: boolean }
  | { op: 'stop' }

export interface VmInfo {
  urls: Record<string, string>
  pid: number
  accel: string
  origin: VmOrigin
  /** Milliseconds the last reset took, if any. */
  lastResetMs?: number
}

export interface HelloResult {
  supervisorPid: number
  imageFingerprint: string
  imageName: string
}

export interface LeaseInfo {
  id: number
  pid: number
  command: string
  since: string
}

export interface StatusResult extends HelloResult {
  name: string
  state: 'booting' | 'ready' | 'resetting' | 'stopping'
  vm?: VmInfo
  leases: LeaseInfo[]
  keepAlive: boolean
  idleSinceMs?: number
  idleTimeoutMs: number
  dirty: boolean
}

export interface AcquireResult extends VmInfo {
  /** True when the VM was reset before it was handed out. */
  reset: boolean
}

export type Event =
  | { event: 'progress'; phase: string }
  | { event: 'log'; line: string }
  | { event: 'stopped'; reason: string }

/** Reads JSON lines from a socket. */
export function onLines(socket: net.Socket, handler: (message: Record<string, unknown>) => void): void {
  let buffer = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    buffer += chunk
    let newline: number
    while ((newline = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + 1)
      if (!line.trim()) continue
      let message: Record<string, unknown>
      try {
        message = JSON.parse(line) as Record<string, unknown>
      } catch {
        socket.destroy()
        return
      }
      handler(message)
    }
  })
}

export function send(socket: net.Socket, message: object): void {
  if (!socket.destroyed && socket.writable) socket.write(JSON.stringify(message) + '\n')
}
