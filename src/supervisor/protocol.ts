/**
 * The supervisor's protocol: JSON lines over the instance's unix socket. A client sends
 * requests ({id, op, ...}); the supervisor answers ({id, ok, result | error}) and pushes
 * events ({event, ...}) for progress, log lines and a stop under the client's feet.
 * One connection that said `hello` with `lease: true` is one lease: it ends when the socket
 * closes, so a runner that dies releases its lease at once.
 */
import type net from 'node:net'
import type { DriverOptions } from '../drivers/types.js'
import type { Capabilities, DriverName, ServiceLogQuery, InstanceOrigin } from '../drivers/types.js'
import { StackEmulatorError } from '../errors.js'
import type { StackCredentials } from '../stack/environment.js'

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

/**
 * What a suite's project is minted for. Resets return to a seeded snapshot taken once its credentials
 * were minted and its seed ran, as long as the file and the seed stay the same.
 */
export interface SeededSnapshotRequest {
  /** The app's config file (absolute path): one seeded snapshot slot per file. */
  configFile: string
  /** sha256 of its contents when the suite started. */
  configDigest: string
  /** The seed's identity: its `seedVersion`, else a digest of its source; '' without a seed (any seeded snapshot of the file serves it). */
  seedId: string
  /**
   * Who runs the seed when no seeded snapshot fits: this client ('self': it has the seed function, or
   * there is no seed), a client of the same run that comes later ('later': the app Playwright's
   * webServer starts under `exec`, before the globalSetup that holds the seed), or nobody: one
   * must have been saved ('none': a test worker's own VM).
   */
  seedFrom: SeedSource
  /** Longest the seed may run, and longest this suite waits for another's seed or for a VM held with another seed. */
  seedTimeoutMs: number
}

export type SeedSource = 'self' | 'later' | 'none'
export const SEED_SOURCES: readonly SeedSource[] = ['self', 'later', 'none']

export type Request =
  | { op: 'hello'; lease: boolean; client: ClientInfo }
  | ({ op: 'acquire'; seededSnapshot?: SeededSnapshotRequest } & LeaseOptions)
  | { op: 'status' }
  /** `lease`: reset on behalf of that lease (a test worker of the suite that holds it), which is not one of the "others". */
  | { op: 'reset'; force: boolean; lease?: number }
  /** From the lease told to seed (AcquireResult.seeding): save the VM as its seeded snapshot now. */
  | { op: 'saveSeededSnapshot' }
  /** The project id and keys for an app's config file (absolute path), minted once per VM state. */
  | { op: 'credentials'; configFile: string }
  /**
   * A fresh project (isolation 'project', issue 25): the supervisor copies the app's config file
   * (absolute path) to a file of the project's own and mints credentials for the copy. Never cached.
   */
  | { op: 'project'; configFile: string }
  | { op: 'stop' }
  /** The services' output (RunningInstance.serviceLogs): a time window, what followed a cursor, the last lines. */
  | { op: 'logs'; query?: ServiceLogQuery }

export interface InstanceInfo {
  urls: Record<string, string>
  driver: DriverName
  /** What the driver runs, in its own terms: a process id, a container id, or a URL it attached to. */
  id: string
  accel: string
  capabilities: Capabilities
  origin: InstanceOrigin
  /** Milliseconds the last reset took, if any. */
  lastResetMs?: number
}

export interface HelloResult {
  supervisorPid: number
  imageFingerprint: string
  imageName: string
  /** The options the VM runs with, so a client asking for others is refused. */
  driver: DriverOptions
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
  vm?: InstanceInfo
  leases: LeaseInfo[]
  keepAlive: boolean
  idleSinceMs?: number
  idleTimeoutMs: number
  dirty: boolean
  /** Why the VM cannot serve right now (a full disk paused it). */
  problem?: string
  /** RunningInstance.note */
  note?: string
}

export interface AcquireResult extends InstanceInfo {
  /** True when the VM was reset before it was handed out. */
  reset: boolean
  /** This lease's id (a reset on its behalf names it). */
  lease: number
  /**
   * The VM has no seeded snapshot for this suite yet and this lease takes it: mint, run the seed, then
   * send `saveSeededSnapshot`. Other suites asking meanwhile wait for it.
   */
  seeding?: boolean
  /** The VM start's phases in ms (supervisor start, the driver's launch, restore, ...), for the bench and `--json`. */
  startupPhases: Record<string, number>
}

/** A project minted by the `project` op. */
export interface MintedProjectResult extends StackCredentials {
  /** Its config file, a copy of the app's under the instance folder (the guest reads it through the share). */
  configFile: string
  /** "Local Emulator: <copy's file name>", as the route names it: the From name of its mail. */
  displayName: string
  /** The VM state it was minted in (see the `generation` event). */
  generation: number
}

export type Event =
  | { event: 'progress'; phase: string }
  /** The VM changed state (reset, restore, seeded snapshot): projects of an older generation are gone. */
  | { event: 'generation'; generation: number }
  | { event: 'log'; line: string }
  | { event: 'stopped'; reason: string }

/** A line longer than this closes the connection: no client sends one, and it would cost memory. */
export const MAX_LINE_BYTES = 64 * 1024

/** Reads JSON lines from a socket; closes it on a line that is too long or is not JSON. */
export function onLines(socket: net.Socket, handler: (message: unknown) => void): void {
  let buffer = ''
  socket.setEncoding('utf8')
  socket.on('data', (chunk: string) => {
    buffer += chunk
    for (let newline = buffer.indexOf('\n'); newline >= 0; newline = buffer.indexOf('\n')) {
      const line = buffer.slice(0, newline)
      buffer = buffer.slice(newline + 1)
      if (!line.trim()) continue
      let message: unknown
      try {
        message = JSON.parse(line)
      } catch {
        return void socket.destroy()
      }
      handler(message)
    }
    if (buffer.length > MAX_LINE_BYTES) socket.destroy()
  })
}

export function send(socket: net.Socket, message: object): void {
  if (!socket.destroyed && socket.writable) socket.write(`${JSON.stringify(message)}\n`)
}

const ISOLATIONS: readonly Isolation[] = ['suite', 'exclusive', 'none']

/**
 * Checks a request from the socket field by field: the supervisor owns a VM that suites depend
 * on, so no message may crash it or slip through half-understood.
 */
export function parseRequest(message: unknown): { id: number; request: Request } {
  const fail = (what: string): never => {
    throw new StackEmulatorError(`Bad request: ${what}`, { code: 'PROTOCOL', fix: 'Use a client of the same stack-emulator version.' })
  }
  if (message === null || typeof message !== 'object' || Array.isArray(message)) fail('not an object')
  const m = message as Record<string, unknown>
  const id = m.id
  if (!Number.isSafeInteger(id)) fail('"id" must be an integer')
  const bool = (key: string) => (typeof m[key] === 'boolean' ? (m[key] as boolean) : fail(`"${key}" must be true or false`))
  switch (m.op) {
    case 'hello': {
      const client = m.client as Record<string, unknown> | null
      if (!client || typeof client !== 'object' || !Number.isSafeInteger(client.pid) || typeof client.command !== 'string') {
        fail('"client" must be { pid, command }')
      }
      return {
        id: id as number,
        request: { op: 'hello', lease: bool('lease'), client: { pid: client!.pid as number, command: (client!.command as string).slice(0, 200) } },
      }
    }
    case 'acquire': {
      if (!ISOLATIONS.includes(m.isolation as Isolation)) fail(`"isolation" must be one of ${ISOLATIONS.join(', ')}`)
      const idle = m.idleTimeoutMs
      if (!Number.isInteger(idle) || (idle as number) < 0 || (idle as number) > 2 ** 31 - 1) fail('"idleTimeoutMs" must be an integer from 0 to 2147483647')
      return {
        id: id as number,
        request: {
          op: 'acquire',
          isolation: m.isolation as Isolation,
          keepAlive: bool('keepAlive'),
          idleTimeoutMs: idle as number,
          seededSnapshot: seededSnapshotRequest(m.seededSnapshot, fail),
        },
      }
    }
    case 'reset':
      if (m.lease !== undefined && !Number.isSafeInteger(m.lease)) fail('"lease" must be an integer')
      return { id: id as number, request: { op: 'reset', force: bool('force'), lease: m.lease as number | undefined } }
    case 'credentials':
    case 'project': {
      const file = m.configFile
      if (typeof file !== 'string' || !file.startsWith('/') || file.length > 4096) fail('"configFile" must be an absolute path')
      return { id: id as number, request: { op: m.op, configFile: file as string } }
    }
    case 'logs':
      return { id: id as number, request: { op: 'logs', query: logQuery(m.query, fail) } }
    case 'status':
    case 'stop':
    case 'saveSeededSnapshot':
      return { id: id as number, request: { op: m.op } }
    default:
      return fail(`unknown op ${JSON.stringify(m.op)?.slice(0, 40)}`)
  }
}

function logQuery(value: unknown, fail: (what: string) => never): ServiceLogQuery | undefined {
  if (value === undefined) return undefined
  const q = value as Record<string, unknown> | null
  const time = (v: unknown) => v === undefined || (Number.isSafeInteger(v) && (v as number) >= 0)
  if (
    !q ||
    typeof q !== 'object' ||
    !time(q.sinceMs) ||
    !time(q.untilMs) ||
    !(q.cursor === undefined || (typeof q.cursor === 'string' && q.cursor.length <= 4096)) ||
    !(q.maxLines === undefined || (Number.isSafeInteger(q.maxLines) && (q.maxLines as number) >= 1))
  ) {
    fail('"query" must be { sinceMs?, untilMs? (ms since the epoch), cursor? (from an earlier answer), maxLines? (at least 1) }')
  }
  return {
    sinceMs: q!.sinceMs as number | undefined,
    untilMs: q!.untilMs as number | undefined,
    cursor: q!.cursor as string | undefined,
    maxLines: q!.maxLines as number | undefined,
  }
}

function seededSnapshotRequest(value: unknown, fail: (what: string) => never): SeededSnapshotRequest | undefined {
  if (value === undefined) return undefined
  const c = value as Record<string, unknown> | null
  const text = (v: unknown, max: number) => typeof v === 'string' && v.length <= max
  if (
    !c ||
    typeof c !== 'object' ||
    !text(c.configFile, 4096) ||
    !(c.configFile as string).startsWith('/') ||
    !text(c.configDigest, 128) ||
    !text(c.seedId, 128) ||
    !SEED_SOURCES.includes(c.seedFrom as SeedSource) ||
    !Number.isSafeInteger(c.seedTimeoutMs) ||
    (c.seedTimeoutMs as number) < 1
  ) {
    fail('"seededSnapshot" must be { configFile (absolute), configDigest, seedId, seedFrom, seedTimeoutMs }')
  }
  return {
    configFile: c!.configFile as string,
    configDigest: c!.configDigest as string,
    seedId: c!.seedId as string,
    seedFrom: c!.seedFrom as SeedSource,
    seedTimeoutMs: c!.seedTimeoutMs as number,
  }
}
