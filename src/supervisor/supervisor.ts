/**
 * The supervisor: one detached process per instance that owns the VM and serves leases over a
 * unix socket. Only it drives the VM, and every VM operation goes through one queue, so a reset
 * and a stop can never interleave.
 */
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import net from 'node:net'
import { StackEmulatorError } from '../errors.js'
import { mintCredentials } from '../stack/credentials.js'
import type { StackCredentials } from '../stack/environment.js'
import type { RunningInstance } from '../drivers/types.js'
import type { ImageManifest } from '../image/manifest.js'
import { ensureInstanceDir } from '../instance/paths.js'
import { HELLO_TIMEOUT_MS, type InstanceState, type SupervisorConfig } from './config.js'
import { LeaseBook, type Lease } from './leases.js'
import { onLines, parseRequest, send, type AcquireResult, type CheckpointRequest, type Event, type HelloResult, type Request, type StatusResult, type VmInfo } from './protocol.js'
import { checkpointMisfit, checkpointRetired, checkpointSlot, type CheckpointMeta } from './checkpoint-policy.js'
import { sha256 } from '../digest.js'

type StartVm = (hooks: { log: (line: string) => void; progress: (phase: string) => void }) => Promise<RunningInstance>

interface Connection {
  socket: net.Socket
  lease?: Lease
}

/** How often the supervisor checks that its state file and socket are still its own. */
const REPAIR_INTERVAL_MS = 1000

export class Supervisor {
  private server: net.Server | undefined
  /** The inode of the socket we bound: a file at that path with another inode is not ours. */
  private socketInode: number | undefined
  private readonly nonce = crypto.randomBytes(8).toString('hex')
  private readonly startedAt = new Date().toISOString()
  private repairTimer: NodeJS.Timeout | undefined
  private repairing: Promise<void> | undefined
  private helloTimer: NodeJS.Timeout | undefined
  private readonly connections = new Set<Connection>()
  private readonly leases = new LeaseBook()
  private vm: RunningInstance | undefined
  private vmReady: Promise<RunningInstance>
  private queue: Promise<unknown> = Promise.resolve()
  private state: StatusResult['state'] = 'booting'
  private keepAlive = false
  private idleTimeoutMs = 0
  private idleSince: number | undefined
  private idleTimer: NodeJS.Timeout | undefined
  private lastResetMs: number | undefined
  private waiters: (() => void)[] = []
  private shuttingDown: Promise<void> | undefined
  /** Log lines so far, replayed to the first lease: its client may connect after the boot warned. */
  private readonly logHistory: string[] = []
  private readonly startedAfterMs: number
  private readonly minted = new Map<string, Promise<StackCredentials>>()
  /** A checkpoint being seeded by one lease; other acquirers wait for it. */
  private seeding: { lease: Lease; request: CheckpointRequest; done: Promise<void>; finish: () => void } | undefined

  constructor(
    private readonly config: SupervisorConfig,
    private readonly manifest: Pick<ImageManifest, 'name' | 'fingerprint' | 'credentials'>,
    startVm: StartVm,
    /** How the process ends once stopped (tests pass their own). */
    private readonly exit: () => void = () => process.exit(0),
  ) {
    // Milliseconds since this process started (Node's start-up and module loading).
    this.startedAfterMs = Math.round(performance.now())
    this.vmReady = startVm({ log: (line) => this.broadcast({ event: 'log', line }), progress: (phase) => this.broadcast({ event: 'progress', phase }) })
    this.vmReady.then(
      (vm) => {
        this.vm = vm
        this.state = 'ready'
        this.rememberCheckpointKeys()
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
   * Writes state.json, then listens. In this order, a client that got an answer on the socket
   * (and so lets go of the instance lock) leaves state.json behind for the next one. A client
   * that spawned us must say hello soon: if it died first, nobody would ever release our VM.
   */
  async listen(): Promise<void> {
    await this.publish()
    this.helloTimer = setTimeout(() => {
      if (this.leases.size === 0) void this.shutdown(`no client said hello within ${HELLO_TIMEOUT_MS} ms of the start`)
    }, HELLO_TIMEOUT_MS)
    // The state file or socket deleted (a removed folder) or garbled: put them back, so clients
    // find the VM that runs instead of starting a second one.
    this.repairTimer = setInterval(() => {
      // One repair at a time: a slow disk must not have two of them rebind the socket at once.
      this.repairing ??= this.repair().finally(() => (this.repairing = undefined))
    }, REPAIR_INTERVAL_MS)
    this.repairTimer.unref()
  }

  private async publish(): Promise<void> {
    const { paths } = this.config
    await ensureInstanceDir(paths)
    const state: InstanceState = {
      pid: process.pid,
      nonce: this.nonce,
      socket: paths.socket,
      imageFingerprint: this.manifest.fingerprint,
      imageName: this.manifest.name,
      startedAt: this.startedAt,
    }
    const tmp = `${paths.state}.${process.pid}.tmp`
    await fs.writeFile(tmp, JSON.stringify(state, null, 2), { mode: 0o600 })
    await fs.rename(tmp, paths.state)
    // Closing a unix-socket server unlinks its path (libuv): close the old one before binding anew.
    this.server?.close()
    this.server = undefined
    // We own the instance (the ownership lock): any socket file there is a dead one's.
    await fs.rm(paths.socket, { force: true })
    const server = net.createServer((socket) => this.onConnection(socket))
    const umask = process.umask(0o177) // socket created 0600
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject)
        server.listen(paths.socket, resolve)
      })
    } finally {
      process.umask(umask)
    }
    this.server = server
    this.socketInode = (await fs.lstat(paths.socket)).ino
  }

  private async repair(): Promise<void> {
    if (this.shuttingDown) return
    const { paths } = this.config
    const [socket, state] = await Promise.all([fs.lstat(paths.socket).catch(() => undefined), fs.readFile(paths.state, 'utf8').catch(() => '')])
    if (socket?.ino === this.socketInode && state.includes(this.nonce)) return
    this.log(`the state file or socket in ${paths.dir} was removed or changed; writing them again`)
    await this.publish().catch((error: Error) => this.log(`could not write them again: ${error.message}`))
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
    const wantsVm = request.op === 'acquire' || request.op === 'reset' || request.op === 'credentials' || (request.op === 'hello' && request.lease)
    if (this.shuttingDown && wantsVm) {
      throw new StackEmulatorError('The emulator is shutting down', { code: 'SHUTTING_DOWN', fix: 'Retry; a new VM will be started.' })
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
      case 'checkpoint':
        return this.saveCheckpoint(connection)
      case 'credentials':
        return this.credentials(request.configFile)
      case 'logs':
        return (await this.vm?.serviceLogs?.()) ?? null
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
    await this.vmReady
    for (;;) {
      // A checkpoint being seeded restarts the VM when saved: nobody else gets it before that.
      while (this.seeding && this.seeding.lease !== lease) await this.seeding.done
      while (this.leases.mustWait(lease)) {
        const others = this.leases.othersHolding(lease)
        send(connection.socket, { event: 'progress', phase: `waiting for ${others.length} other suite(s) to finish (exclusive isolation; pids ${others.map((l) => l.client.pid).join(', ')})` })
        await new Promise<void>((resolve) => this.waiters.push(resolve))
        if (connection.socket.destroyed) throw new Error('client went away')
      }
      // Decide and reset inside the queue, so two acquirers cannot both decide to reset.
      const result = await this.enqueue(async (): Promise<AcquireResult | undefined> => {
        if (this.seeding && this.seeding.lease !== lease) return undefined // another began seeding meanwhile: wait for it
        const problem = this.vm?.problem()
        if (problem) throw problem
        // A driver that cannot reset (external) shares its emulator as isolation 'none' does.
        const reset = this.vm!.capabilities.reset && this.leases.needsReset(lease)
        if (reset) await this.resetVm()
        const seeding = options.checkpoint ? await this.openCheckpoint(lease, options.checkpoint) : false
        lease.acquired = true
        // Only a lease that got the VM keeps it alive: a `start` interrupted during the boot does not.
        if (options.keepAlive) {
          this.keepAlive = true
          this.idleTimeoutMs = options.idleTimeoutMs
        }
        return { ...this.vmInfo(), reset, lease: lease.id, seeding, startupPhases: { 'supervisor start': this.startedAfterMs, ...this.vm!.startupPhases } }
      })
      if (result) return result
    }
  }

  private async reset(connection: Connection, force: boolean, onBehalfOf: number | undefined): Promise<VmInfo> {
    await this.vmReady
    const lease = connection.lease ?? this.leases.byId(onBehalfOf)
    const others = this.leases.othersHolding(lease)
    if (others.length > 0 && !force) {
      throw new StackEmulatorError(
        `Refusing to reset: ${others.length} other suite(s) hold this VM (pids ${others.map((l) => l.client.pid).join(', ')})`,
        { code: 'RESET_REFUSED', fix: 'Wait for them to finish, use isolation "exclusive", or pass force (stack-emulator reset --force).' },
      )
    }
    return this.enqueue(async () => {
      await this.resetVm()
      return this.vmInfo()
    })
  }

  private async resetVm(): Promise<void> {
    // Its refusal, with the driver's words; the emulator stays as it is.
    if (!this.vm!.capabilities.reset) await this.vm!.reset()
    this.state = 'resetting'
    const result = await this.vm!.reset().catch((error: Error) => {
      // The old VM is gone and no new one came up: go away, so the next acquire starts afresh.
      void this.shutdown(`the reset failed (${error.message.split('\n')[0]})`)
      throw error
    })
    this.lastResetMs = result.durationMs
    this.rememberCheckpointKeys()
    this.leases.dirty = false
    this.state = 'ready'
    this.log(`reset in ${result.durationMs} ms`)
  }

  /**
   * Puts the VM at `request`'s checkpoint: already there, restored into it, or (when it has none
   * that fits) restarted to be seeded by this lease, which then mints, seeds and sends
   * `checkpoint`. A VM other suites hold is not restarted under them. True: this lease seeds.
   */
  private async openCheckpoint(lease: Lease, request: CheckpointRequest): Promise<boolean> {
    const checkpoints = this.vm!.checkpoints
    if (!checkpoints) return false
    const slot = checkpointSlot(request.configFile)
    const current = checkpoints.current
    if (current?.slot === slot && !checkpointMisfit(request, current.meta)) return false
    if (this.leases.othersHolding(lease).length > 0) return false
    this.state = 'resetting'
    const opened = await checkpoints.open(slot, (meta) => checkpointMisfit(request, meta), request.seeds).catch((error: Error) => {
      void this.shutdown(`opening the checkpoint failed (${error.message.split('\n')[0]})`)
      throw error
    })
    this.state = 'ready'
    if (opened.opened === 'missing') {
      // Nothing changed. Said when this suite would have taken it: its resets will mint new keys.
      if (request.seeds) this.broadcast({ event: 'log', line: `not taking a seeded snapshot for ${request.configFile}: ${opened.reason}` })
      return false
    }
    this.rememberCheckpointKeys()
    this.leases.dirty = false
    if (opened.opened === 'restored') return false
    this.broadcast({ event: 'log', line: `taking a seeded snapshot for ${request.configFile} (${opened.reason}); later runs and resets start from it` })
    let finish!: () => void
    const done = new Promise<void>((resolve) => (finish = resolve))
    this.seeding = { lease, request, done, finish }
    // Its client may have gone while the VM restarted: then nobody seeds, and nobody may wait on it.
    if (!this.leases.has(lease)) {
      this.endSeeding()
      return false
    }
    return true
  }

  /** From the seeding lease, once it minted and seeded: save, so resets return here with the same keys. */
  private async saveCheckpoint(connection: Connection): Promise<VmInfo> {
    const seeding = this.seeding
    if (!seeding || seeding.lease !== connection.lease) {
      throw new StackEmulatorError('This lease was not asked to seed a checkpoint', { code: 'PROTOCOL', fix: 'Send checkpoint only after an acquire answered seeding: true.' })
    }
    return this.enqueue(async () => {
      try {
        const { request } = seeding
        const credentials = await this.minted.get(request.configFile)
        if (!credentials) throw new StackEmulatorError('Mint the credentials before saving the checkpoint', { code: 'PROTOCOL' })
        const after = sha256(await fs.readFile(request.configFile).catch(() => Buffer.alloc(0)))
        const meta: CheckpointMeta = { configFile: request.configFile, configDigests: [...new Set([request.configDigest, after])], seedId: request.seedId, credentials }
        const started = performance.now()
        this.state = 'resetting'
        await this.vm!.checkpoints!.save(meta, checkpointRetired).then(
          () => this.log(`seeded snapshot saved and restored in ${Math.round(performance.now() - started)} ms`),
          (error: Error) => this.broadcast({ event: 'log', line: `saving the seeded snapshot failed (${error.message.split('\n')[0]}); resets go back to the plain snapshot and mint new keys` }),
        )
        this.state = 'ready'
        this.rememberCheckpointKeys()
      } finally {
        this.endSeeding()
      }
      return this.vmInfo()
    })
  }

  private endSeeding(): void {
    this.seeding?.finish()
    this.seeding = undefined
  }

  /**
   * After the VM changed state: credentials are those its checkpoint holds (the guest reads the
   * config file at run time too, so it is shared again), or none yet.
   */
  private rememberCheckpointKeys(): void {
    this.minted.clear()
    const vm = this.vm
    const meta = vm?.checkpoints?.current?.meta as CheckpointMeta | undefined
    if (!vm || !meta?.credentials) return
    const shared = (async () => {
      await vm.shared?.expose(meta.configFile)
      return meta.credentials
    })()
    shared.catch(() => this.minted.delete(meta.configFile)) // the next ask mints
    this.minted.set(meta.configFile, shared)
  }

  /**
   * Mints credentials through the image's route once per config file and VM state: suites that
   * share the VM share its project, and 16 of them at once cost the guest one mint, not 16.
   * A reset empties the cache (the project rows went with it).
   */
  private async credentials(configFile: string): Promise<StackCredentials> {
    await this.vmReady
    const route = this.manifest.credentials
    if (!route) throw new StackEmulatorError(`Image ${this.manifest.name} has no credential route`, { code: 'CREDENTIALS', fix: 'Pass configFile: false.' })
    let minted = this.minted.get(configFile)
    if (!minted) {
      minted = this.mint(route.service, route.path, configFile)
      minted.catch(() => this.minted.delete(configFile))
      this.minted.set(configFile, minted)
    }
    return minted
  }

  /** Through the share where the image has one: the guest reads the file there, and may write it. */
  private async mint(service: string, routePath: string, configFile: string): Promise<StackCredentials> {
    const vm = this.vm!
    await vm.shared?.expose(configFile)
    const credentials = await mintCredentials(vm.urls[service] + routePath, configFile, vm.shared?.internalKeyFile, vm.internalKey)
    await vm.shared?.syncBack()
    return credentials
  }

  private hello(): HelloResult {
    return { supervisorPid: process.pid, imageFingerprint: this.manifest.fingerprint, imageName: this.manifest.name, driver: this.config.driver }
  }

  private status(): StatusResult {
    return {
      ...this.hello(),
      name: this.config.paths.name,
      state: this.shuttingDown ? 'stopping' : this.state,
      vm: this.vm ? this.vmInfo() : undefined,
      leases: this.leases.list(),
      keepAlive: this.keepAlive,
      idleSinceMs: this.idleSince === undefined ? undefined : Date.now() - this.idleSince,
      idleTimeoutMs: this.idleTimeoutMs,
      dirty: this.leases.dirty,
      problem: this.vm?.problem()?.message,
      note: this.vm?.note,
    }
  }

  private vmInfo(): VmInfo {
    const vm = this.vm!
    return { urls: vm.urls, driver: vm.driver, id: vm.id, accel: vm.accel, origin: vm.origin, capabilities: vm.capabilities, lastResetMs: this.lastResetMs }
  }

  private onClose(connection: Connection): void {
    this.connections.delete(connection)
    if (!connection.lease) return
    if (this.seeding?.lease === connection.lease) this.endSeeding() // the VM is dirty now: the next reset drops what it seeded
    this.leases.close(connection.lease)
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
    this.shuttingDown ??= (async () => {
      const { paths } = this.config
      this.log(`stopping: ${reason}`)
      this.broadcast({ event: 'stopped', reason })
      clearInterval(this.repairTimer)
      clearTimeout(this.helloTimer)
      clearTimeout(this.idleTimer)
      // Only our own traces, recognised by identity: never a successor's. (Closing the server
      // unlinks the socket path, so it closes only while the socket there is still ours.)
      if ((await fs.readFile(paths.state, 'utf8').catch(() => '')).includes(this.nonce)) await fs.rm(paths.state, { force: true })
      if (await isSameFile(paths.socket, this.socketInode)) this.server?.close()
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
    if (event.event !== 'progress') this.log(event.event === 'log' ? event.line : event.reason)
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
async function isSameFile(file: string, inode: number | undefined): Promise<boolean> {
  const stat = await fs.lstat(file).catch(() => undefined)
  return inode !== undefined && stat?.ino === inode
}
