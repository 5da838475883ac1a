import type net from 'node:net'
import { StackEmulatorError } from '../errors.js'
import { dropProjectCopies } from '../stack/project-copy.js'
import { ResetNotDone, type RunningInstance } from '../drivers/types.js'
import type { EmulatorManifest } from '../drivers/manifest.js'
import { isSameProcessAlive } from '../instance/process-alive.js'
import { HELLO_TIMEOUT_MS, type SupervisorConfig } from './config.js'
import { LeaseBook, type Lease } from './leases.js'
import {
  onLines,
  parseRequest,
  send,
  type AcquireResult,
  type Event,
  type HelloResult,
  type Request,
  type StatusResult,
  type InstanceInfo,
} from './protocol.js'
import { Credentials } from './credentials.js'
import { Endpoint } from './endpoint.js'
import { Seeding, type SeedWait } from './seeding.js'

type StartInstance = (hooks: { log: (line: string) => void; progress: (phase: string) => void }) => Promise<RunningInstance>

interface Connection {
  socket: net.Socket
  lease?: Lease
  /** The reason this connection's acquire last said it waits for (said once). */
  lastWait?: string
}

export class Supervisor {
  private readonly endpoint: Endpoint
  private helloTimer: NodeJS.Timeout | undefined
  private readonly connections = new Set<Connection>()
  private readonly leases = new LeaseBook()
  private vm: RunningInstance | undefined
  private instanceReady: Promise<RunningInstance>
  private queue: Promise<unknown> = Promise.resolve()
  private state: StatusResult['state'] = 'booting'
  private keepAlive = false
  private idleTimeoutMs = 0
  private idleSince: number | undefined
  private idleTimer: NodeJS.Timeout | undefined
  private lastResetMs: number | undefined
  private waiters: (() => void)[] = []
  private shuttingDown: Promise<void> | undefined
  /** Why it is shutting down, for the requests that come meanwhile and for status. */
  private stopReason: string | undefined
  /** Log lines so far, replayed to the first lease: its client may connect after the boot warned. */
  private readonly logHistory: string[] = []
  private readonly startedAfterMs: number
  private readonly credentials: Credentials
  private readonly seeding: Seeding

  constructor(
    private readonly config: SupervisorConfig,
    private readonly manifest: Pick<EmulatorManifest, 'name' | 'fingerprint' | 'credentials'>,
    startInstance: StartInstance,
    /** How the process ends once stopped (tests pass their own). */
    private readonly exit: () => void = () => process.exit(0),
  ) {
    // Milliseconds since this process started (Node's start-up and module loading).
    this.startedAfterMs = Math.round(performance.now())
    this.instanceReady = startInstance({
      log: (line) => this.broadcast({ event: 'log', line }),
      progress: (phase) => this.broadcast({ event: 'progress', phase }),
    })
    this.endpoint = new Endpoint(
      config.paths,
      manifest,
      (socket) => this.onConnection(socket),
      (line) => this.log(line),
    )
    this.credentials = new Credentials({
      manifest,
      instanceDir: config.paths.dir,
      instance: this.instanceReady,
      log: (line) => this.log(line),
      announce: (generation) => this.broadcast({ event: 'generation', generation }),
    })
    this.seeding = new Seeding({
      name: config.paths.name,
      driver: config.driver,
      leases: this.leases,
      credentials: this.credentials,
      instance: () => this.vm!,
      nextRelease: () => this.nextRelease(),
      changing: (change) => this.changing(change),
      say: (line) => this.broadcast({ event: 'log', line }),
      log: (line) => this.log(line),
      shutdown: (reason) => void this.shutdown(reason),
    })
    this.instanceReady.then(
      (vm) => {
        this.vm = vm
        this.state = 'ready'
        this.credentials.newState(this.vm)
        void vm.died.then((reason) => this.shutdown(`${reason}; the next acquire starts a new VM`))
      },
      (error: Error) => {
        this.log(`VM start failed: ${error.message}`)
        // Let pending acquires receive the error first, then go away so the next acquire retries.
        setTimeout(() => void this.shutdown('the VM failed to start'), 100)
      },
    )
  }

  /**
   * Publishes the state file and socket (endpoint.ts). A client that spawned us must say hello
   * soon: if it died first, nobody would ever release our VM.
   */
  async listen(): Promise<void> {
    await this.endpoint.open()
    const awaitHello = () => {
      if (this.leases.size > 0) return
      const spawner = this.config.spawner
      if (spawner && isSameProcessAlive(spawner.pid, spawner.startTime)) this.helloTimer = setTimeout(awaitHello, 1000)
      else void this.shutdown(`no client said hello within ${HELLO_TIMEOUT_MS} ms of the start, and the one that started it is gone`)
    }
    this.helloTimer = setTimeout(awaitHello, HELLO_TIMEOUT_MS)
  }

  private onConnection(socket: net.Socket): void {
    const connection: Connection = { socket }
    this.connections.add(connection)
    socket.on('error', () => {})
    socket.on('close', () => this.onClose(connection))
    onLines(socket, (message) => {
      let parsed: ReturnType<typeof parseRequest>
      try {
        parsed = parseRequest(message)
      } catch (error) {
        const id = (message as { id?: unknown } | null)?.id
        return send(socket, { id: Number.isSafeInteger(id) ? id : null, ok: false, error: errorPayload(error as Error) })
      }
      this.handle(connection, parsed.request).then(
        (result) => send(socket, { id: parsed.id, ok: true, result }),
        (error: Error) => send(socket, { id: parsed.id, ok: false, error: errorPayload(error) }),
      )
    })
  }

  private async handle(connection: Connection, request: Request): Promise<unknown> {
    // While shutting down, only the questions of status and stop are answered.
    const wantsInstance =
      request.op === 'acquire' ||
      request.op === 'reset' ||
      request.op === 'credentials' ||
      request.op === 'project' ||
      (request.op === 'hello' && request.lease)
    if (this.shuttingDown && wantsInstance) {
      // Nothing retries a lease's request: its lease ends with this VM (a client's hello waits and starts anew).
      throw new StackEmulatorError(`The emulator is shutting down: ${this.stopReason}`, {
        code: 'SHUTTING_DOWN',
        fix: 'Its leases end with it; acquire again (a new test run, stack-emulator start) to start a new VM.',
      })
    }
    switch (request.op) {
      case 'hello':
        if (request.lease && !connection.lease) {
          connection.lease = this.leases.open(request.client)
          clearTimeout(this.helloTimer)
          this.cancelIdle()
        }
        return this.hello()
      case 'acquire':
        return this.acquire(connection, request)
      case 'status':
        return this.status()
      case 'reset':
        return this.reset(connection, request.force, request.lease)
      case 'saveSeededSnapshot':
        return this.enqueue(async () => {
          await this.seeding.save(connection.lease)
          return this.instanceInfo()
        })
      case 'credentials':
        return this.credentials.forConfig(request.configFile)
      case 'project':
        return this.credentials.project(request.configFile)
      case 'logs':
        return (await this.vm?.serviceLogs?.(request.query)) ?? null
      case 'stop':
        void this.shutdown(`stopped by request`)
        return { stopping: true }
    }
  }

  private async acquire(connection: Connection, options: Extract<Request, { op: 'acquire' }>): Promise<AcquireResult> {
    const lease = connection.lease
    if (!lease) throw new StackEmulatorError('acquire needs a lease connection', { code: 'SUPERVISOR' })
    lease.isolation = options.isolation
    // Only the first lease (its client started us) hears what was said before it connected:
    // every later suite would repeat the same lines (the accelerator verdict) in one run.
    if (lease.id === 1) for (const line of this.logHistory) send(connection.socket, { event: 'log', line })
    await this.instanceReady
    const request = options.seededSnapshot
    // A client without a config file waits for a seed in progress as long as it runs (the seeder is bounded itself).
    const deadline = request ? Date.now() + request.seedTimeoutMs : Infinity
    // Not a poll: each wait below is on an event (a release, a seed's end), raced against `deadline`.
    for (;;) {
      while (this.leases.mustWait(lease)) {
        const others = this.leases.othersHolding(lease)
        send(connection.socket, {
          event: 'progress',
          phase: `waiting for ${others.length} other suite(s) to finish (exclusive isolation; pids ${others.map((l) => l.client.pid).join(', ')})`,
        })
        await this.nextRelease()
        if (connection.socket.destroyed) throw new Error('client went away')
      }
      // Decide and reset inside the queue, so two acquirers cannot both decide to reset.
      const outcome = await this.enqueue(async (): Promise<AcquireResult | SeedWait> => {
        const problem = this.vm?.problem()
        if (problem) throw problem
        const wait = this.seeding.wait(lease, request)
        if (wait) return wait
        // A driver that cannot reset (external) shares its emulator as isolation 'none' does.
        const reset = this.vm!.capabilities.reset && (this.leases.needsReset(lease) || (this.seeding.tainted && this.leases.othersHolding(lease).length === 0))
        if (reset) await this.resetInstance()
        const seeding = request ? await this.seeding.open(lease, request) : false
        // A client that left meanwhile (killed mid-acquire) neither holds the VM nor keeps it alive.
        if (!this.leases.has(lease)) throw new Error('client went away')
        lease.acquired = true
        // Only a lease that got the VM keeps it alive: a `start` interrupted during the boot does not.
        if (options.keepAlive) {
          this.keepAlive = true
          this.idleTimeoutMs = options.idleTimeoutMs
        }
        return {
          ...this.instanceInfo(),
          reset,
          lease: lease.id,
          seeding,
          startupPhases: { 'supervisor start': this.startedAfterMs, ...this.vm!.startupPhases },
        }
      })
      if (!('wait' in outcome)) return outcome
      await this.seeding.waitFor(connection, outcome, deadline, request)
    }
  }

  /** Resolves at the next lease's end. */
  private nextRelease(): Promise<void> {
    return new Promise<void>((resolve) => this.waiters.push(resolve))
  }

  /** The VM changes state under `change`: status says resetting meanwhile; the endpoint is checked first (clients must find us after). */
  private async changing<T>(change: () => Promise<T>): Promise<T> {
    this.state = 'resetting'
    try {
      await this.endpoint.repairNow()
      return await change()
    } finally {
      this.state = 'ready'
    }
  }

  private async reset(connection: Connection, force: boolean, onBehalfOf: number | undefined): Promise<InstanceInfo> {
    await this.instanceReady
    const lease = connection.lease ?? this.leases.byId(onBehalfOf)
    const others = this.leases.othersHolding(lease)
    if (others.length > 0 && !force) {
      throw new StackEmulatorError(`Refusing to reset: ${others.length} other suite(s) hold this VM (pids ${others.map((l) => l.client.pid).join(', ')})`, {
        code: 'RESET_REFUSED',
        fix: 'Wait for them to finish, use isolation "exclusive", or pass force (stack-emulator reset --force).',
      })
    }
    return this.enqueue(async () => {
      await this.resetInstance()
      return this.instanceInfo()
    })
  }

  private async resetInstance(): Promise<void> {
    // Its refusal, with the driver's words; the emulator stays as it is.
    if (!this.vm!.capabilities.reset) await this.vm!.reset()
    this.seeding.end(false) // a reset drops a seed in progress: its save is refused
    this.state = 'resetting'
    await this.endpoint.repairNow()
    const result = await this.vm!.reset().catch((error: Error) => {
      if (error instanceof ResetNotDone) {
        this.state = 'ready' // it serves on as it was
        this.log(error.message)
        throw error
      }
      // The old VM is gone and no new one came up: go away, so the next acquire starts afresh.
      void this.shutdown(`the reset failed (${error.message.split('\n')[0]})`)
      throw error
    })
    this.lastResetMs = result.durationMs
    this.credentials.newState(this.vm)
    this.leases.dirty = false
    this.seeding.tainted = false
    this.state = 'ready'
    this.log(`reset in ${result.durationMs} ms`)
  }

  private hello(): HelloResult {
    return { supervisorPid: process.pid, imageFingerprint: this.manifest.fingerprint, imageName: this.manifest.name, driver: this.config.driver }
  }

  private status(): StatusResult {
    return {
      ...this.hello(),
      name: this.config.paths.name,
      state: this.shuttingDown ? 'stopping' : this.state,
      vm: this.vm ? this.instanceInfo() : undefined,
      leases: this.leases.list(),
      keepAlive: this.keepAlive,
      idleSinceMs: this.idleSince === undefined ? undefined : Date.now() - this.idleSince,
      idleTimeoutMs: this.idleTimeoutMs,
      dirty: this.leases.dirty,
      problem: this.stopReason ? `stopping: ${this.stopReason}` : this.vm?.problem()?.message,
      note: this.vm?.note,
    }
  }

  private instanceInfo(): InstanceInfo {
    const vm = this.vm!
    return { urls: vm.urls, driver: vm.driver, id: vm.id, accel: vm.accel, origin: vm.origin, capabilities: vm.capabilities, lastResetMs: this.lastResetMs }
  }

  private onClose(connection: Connection): void {
    this.connections.delete(connection)
    if (!connection.lease) return
    this.leases.close(connection.lease)
    this.seeding.leaseClosed(connection.lease)
    for (const wake of this.waiters.splice(0)) wake()
    if (this.leases.size > 0 || this.shuttingDown) return
    if (!this.keepAlive) {
      void this.shutdown('the last lease was released')
    } else {
      this.idleSince = Date.now()
      if (this.idleTimeoutMs > 0) {
        this.idleTimer = setTimeout(() => void this.shutdown(`idle for ${this.idleTimeoutMs} ms`), this.idleTimeoutMs)
      }
    }
  }

  private cancelIdle(): void {
    clearTimeout(this.idleTimer)
    this.idleTimer = undefined
    this.idleSince = undefined
  }

  /**
   * Stops the VM and exits. Until the process is gone it still owns the instance (the ownership
   * lock), so no second supervisor starts over its files. A VM still booting is not waited for:
   * it dies with this process (parent-death signal).
   */
  shutdown(reason: string): Promise<void> {
    this.stopReason ??= reason
    this.shuttingDown ??= (async () => {
      const { paths } = this.config
      this.endpoint.stopRepairs()
      this.log(`stopping: ${reason}`)
      this.broadcast({ event: 'stopped', reason })
      // Before the socket goes, while no successor can be minting into the folder.
      await dropProjectCopies(paths.dir).catch(() => {})
      clearTimeout(this.helloTimer)
      clearTimeout(this.idleTimer)
      await this.endpoint.close()
      if (this.vm) await this.enqueue(async () => this.vm?.stop()).catch((error: Error) => this.log(`stopping the VM: ${error.message}`))
      for (const c of this.connections) c.socket.end()
      setTimeout(this.exit, 50).unref()
    })()
    return this.shuttingDown
  }

  private enqueue<T>(operation: () => Promise<T>): Promise<T> {
    const result = this.queue.then(operation)
    this.queue = result.catch(() => {})
    return result
  }

  private broadcast(event: Event): void {
    if (event.event === 'log') {
      this.logHistory.push(event.line)
      if (this.logHistory.length > 20) this.logHistory.shift()
    }
    if (event.event === 'log') this.log(event.line)
    else if (event.event === 'stopped') this.log(event.reason)
    for (const c of this.connections) send(c.socket, event)
  }

  private log(line: string): void {
    process.stdout.write(`${new Date().toISOString()} ${line}\n`)
  }
}

function errorPayload(error: Error): ReturnType<StackEmulatorError['toJSON']> {
  return error instanceof StackEmulatorError ? error.toJSON() : { code: 'SUPERVISOR', message: error.message }
}

/** True while `file` is still the one we made (same inode), not a successor's. */
