import fs from 'node:fs/promises'
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
  type SeededSnapshotRequest,
  type Event,
  type HelloResult,
  type Request,
  type StatusResult,
  type InstanceInfo,
} from './protocol.js'
import { seededSnapshotMisfit, seededSnapshotPolicy, seededSnapshotSlot, seedName, type SeededSnapshotMeta } from './seeded-snapshot-policy.js'
import { sha256 } from '../digest.js'
import { Credentials } from './credentials.js'
import { Endpoint } from './endpoint.js'

type StartInstance = (hooks: { log: (line: string) => void; progress: (phase: string) => void }) => Promise<RunningInstance>

interface Connection {
  socket: net.Socket
  lease?: Lease
  /** The reason this connection's acquire last said it waits for (said once). */
  lastWait?: string
}

/** A seeded snapshot being taken: by `seeder`, or, until one arrives, awaited by a client whose seed comes later. */
interface Seeding {
  request: SeededSnapshotRequest
  seeder?: Lease
  done: Promise<void>
  finish: () => void
  timer?: NodeJS.Timeout
}

/** Why an acquire waits, until when it asks again, and whether it is another seed's VM (else a seed running). */
interface SeedWait {
  wait: string
  until: Promise<void>
  conflict: boolean
}

/** Past the client's own seed timeout: the supervisor stops waiting for a client that may be paused. */
const SEED_SAVE_GRACE_MS = 5000

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
  /** A seeded snapshot being taken; other acquirers wait for it (seedWait). */
  private seeding: Seeding | undefined
  /** A seed left the VM half-made: it serves no seeded suite before a reset. */
  private tainted = false

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
        return this.saveSeededSnapshot(connection)
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
        const wait = this.seedWait(lease, request)
        if (wait) return wait
        // A driver that cannot reset (external) shares its emulator as isolation 'none' does.
        const reset = this.vm!.capabilities.reset && (this.leases.needsReset(lease) || (this.tainted && this.leases.othersHolding(lease).length === 0))
        if (reset) await this.resetInstance()
        const seeding = request ? await this.openSeededSnapshot(lease, request) : false
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
      await this.waitForSeed(connection, outcome, deadline, request)
    }
  }

  /**
   * Why `lease`, asking for `request`, must wait before it gets the VM; undefined when it need not.
   * A suite never gets the VM while another one seeds it, nor a VM that others hold with data its
   * seed did not make: it waits (bounded by its seedTimeoutMs), then fails naming both seeds.
   */
  private seedWait(lease: Lease, request: SeededSnapshotRequest | undefined): SeedWait | undefined {
    const seeding = this.seeding
    if (seeding) {
      if (seeding.seeder === lease) return undefined
      const same = request?.configFile === seeding.request.configFile && (!request.seedId || request.seedId === seeding.request.seedId)
      if (seeding.seeder)
        return {
          wait: `pid ${seeding.seeder.client.pid} to take the seeded snapshot of ${seeding.request.configFile} (${seedName(seeding.request.seedId)})`,
          until: seeding.done,
          conflict: !same,
        }
      // Opened by a client whose seed comes later (Playwright's webServer): it serves meanwhile.
      if (!same && request?.seedId) return this.heldBy(lease, `${seedName(seeding.request.seedId)} for ${seeding.request.configFile}`)
      if (same && request?.seedFrom === 'none')
        return {
          wait: `the suite that holds ${seedName(seeding.request.seedId)} to take the seeded snapshot of ${seeding.request.configFile}`,
          until: seeding.done,
          conflict: false,
        }
      return undefined
    }
    if (!request?.seedId || !this.vm?.seededSnapshots) return undefined
    if (this.tainted) return this.heldBy(lease, 'a seed that did not finish')
    const current = this.vm.seededSnapshots.current
    const fits = current?.slot === seededSnapshotSlot(request.configFile) && !seededSnapshotMisfit(request, current.meta)
    if (fits) return undefined
    const meta = current?.meta as SeededSnapshotMeta | undefined
    return this.heldBy(lease, meta ? `${seedName(meta.seedId)} for ${meta.configFile}` : 'no seeded snapshot')
  }

  /** Wait for the others to let go of the VM (then it can be restored for this suite); none: no wait. */
  private heldBy(lease: Lease, what: string): SeedWait | undefined {
    const others = this.leases.othersHolding(lease)
    if (others.length === 0) return undefined
    return {
      wait: `${others.length} other suite(s) (pids ${others.map((l) => l.client.pid).join(', ')}) holding it with ${what}`,
      until: this.nextRelease(),
      conflict: true,
    }
  }

  /** One line per reason, then waits for it to change, at most until `deadline`: then a clear error. */
  private async waitForSeed(connection: Connection, wait: SeedWait, deadline: number, request: SeededSnapshotRequest | undefined): Promise<void> {
    const left = deadline - Date.now()
    if (left <= 0) {
      const name = this.config.paths.name
      throw wait.conflict
        ? new StackEmulatorError(
            `Instance "${name}" cannot serve this suite (${seedName(request?.seedId ?? '')}${request ? ` for ${request.configFile}` : ''}): it waited ${Math.round((request?.seedTimeoutMs ?? 0) / 1000)} s for ${wait.wait}`,
            {
              code: 'SEED_CONFLICT',
              fix: `Give suites with different seeds their own instance (name option, --name), or give a seed that changed a new seedVersion so both agree; or wait for the others to finish (seedTimeoutMs).`,
            },
          )
        : new StackEmulatorError(`Instance "${name}" waited ${Math.round((request?.seedTimeoutMs ?? 0) / 1000)} s for ${wait.wait}`, {
            code: 'SEED_TIMEOUT',
            fix: 'Make the seed faster, or raise seedTimeoutMs.',
          })
    }
    const line = Number.isFinite(left) ? `waiting for ${wait.wait} (up to ${Math.ceil(left / 1000)} s)` : `waiting for ${wait.wait}`
    if (connection.lastWait !== wait.wait) send(connection.socket, { event: 'progress', phase: line })
    connection.lastWait = wait.wait
    let timer: NodeJS.Timeout | undefined
    await Promise.race([wait.until, Number.isFinite(left) ? new Promise((resolve) => (timer = setTimeout(resolve, left))) : new Promise(() => {})])
    clearTimeout(timer)
    if (connection.socket.destroyed) throw new Error('client went away')
  }

  /** Resolves at the next lease's end. */
  private nextRelease(): Promise<void> {
    return new Promise<void>((resolve) => this.waiters.push(resolve))
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
    this.endSeeding(false) // a reset drops a seed in progress: its save is refused
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
    this.tainted = false
    this.state = 'ready'
    this.log(`reset in ${result.durationMs} ms`)
  }

  /**
   * Puts the VM at `request`'s seeded snapshot: already there, restored into it, or (when it has
   * none that fits) restarted to be seeded, by this lease (true: it mints, seeds, then sends
   * `saveSeededSnapshot`) or, for a client whose seed comes later, by the next lease that brings it.
   * A VM other suites hold is never restarted under them (seedWait saw to that for seeded suites).
   */
  private async openSeededSnapshot(lease: Lease, request: SeededSnapshotRequest): Promise<boolean> {
    const seededSnapshots = this.vm!.seededSnapshots
    if (!seededSnapshots) {
      if (!request.seedId) return false
      throw new StackEmulatorError(
        `The ${this.config.driver.kind} driver${this.config.driver.snapshot ? '' : ' without snapshots'} cannot keep a seed: it has no seeded snapshots to reset to`,
        {
          code: 'SEED_UNSUPPORTED',
          fix: 'Drop the seed option (create the data in the tests themselves), or use the qemu driver with snapshots (the default).',
        },
      )
    }
    const pending = this.seeding
    if (pending && (!request.seedId || (request.seedId === pending.request.seedId && request.configFile === pending.request.configFile))) {
      // Opened by a client whose seed comes later: the first lease that brings the seed runs it.
      if (pending.seeder || request.seedFrom !== 'self' || !request.seedId) return false
      this.broadcast({
        event: 'log',
        line: `taking the seeded snapshot for ${request.configFile} (${seedName(request.seedId)}) on the VM its app already uses; later runs and resets start from it`,
      })
      this.startSeeder(pending, lease)
      return true
    }
    // Awaited for another seed by clients that are gone: what they left is dropped below.
    if (pending) this.endSeeding(true)
    const slot = seededSnapshotSlot(request.configFile)
    const current = seededSnapshots.current
    if (current?.slot === slot && !seededSnapshotMisfit(request, current.meta)) return false
    // Only a suite without a seed gets here while others hold the VM: it mints a project of its own.
    if (this.leases.othersHolding(lease).length > 0) return false
    this.state = 'resetting'
    await this.endpoint.repairNow()
    const opened = await seededSnapshots
      .open(slot, (meta) => seededSnapshotMisfit(request, meta), request.seedFrom !== 'none')
      .catch((error: Error) => {
        void this.shutdown(`opening the seeded snapshot failed (${error.message.split('\n')[0]})`)
        throw error
      })
    this.state = 'ready'
    if (opened.opened === 'missing') return this.noSnapshot(request, opened.reason)
    this.tainted = false
    this.credentials.newState(this.vm)
    this.leases.dirty = false
    if (opened.opened === 'restored') return false
    let finish!: () => void
    const seeding: Seeding = { request, done: new Promise<void>((resolve) => (finish = resolve)), finish }
    this.seeding = seeding
    // Its client may have gone while the VM restarted: then nobody seeds, and nobody may wait on it.
    if (!this.leases.has(lease)) {
      this.endSeeding(false)
      return false
    }
    if (request.seedFrom === 'later') {
      this.broadcast({
        event: 'log',
        line: `no seeded snapshot for ${request.configFile} (${opened.reason}): it is taken when the suite with ${seedName(request.seedId)} arrives (its globalSetup); this VM serves meanwhile, with the same keys after`,
      })
      return false
    }
    this.broadcast({ event: 'log', line: `taking a seeded snapshot for ${request.configFile} (${opened.reason}); later runs and resets start from it` })
    this.startSeeder(seeding, lease)
    return true
  }

  /** No seeded snapshot can be had: fine for a suite without a seed (its keys change at resets), an error for one with. */
  private noSnapshot(request: SeededSnapshotRequest, reason: string): false {
    if (!request.seedId) {
      if (request.seedFrom === 'self') this.broadcast({ event: 'log', line: `not taking a seeded snapshot for ${request.configFile}: ${reason}` })
      return false
    }
    throw request.seedFrom === 'none'
      ? new StackEmulatorError(`No seeded snapshot of ${request.configFile} with ${seedName(request.seedId)}: ${reason}`, {
          code: 'SEED_MISSING',
          fix: "The run's globalSetup takes it before the workers start: keep the plugin's (or Playwright's) globalSetup, and check its output for why it did not.",
        })
      : new StackEmulatorError(`Cannot take the seeded snapshot of ${request.configFile} with ${seedName(request.seedId)}: ${reason}`, {
          code: 'SEED_UNSAVED',
          fix: 'Give the snapshot cache room (STACK_EMULATOR_CACHE_DIR, df -h) and write access, or drop the seed option.',
        })
  }

  /** `lease` runs the seed now: bounded by its seedTimeoutMs, after which others stop waiting for it. */
  private startSeeder(seeding: Seeding, lease: Lease): void {
    seeding.seeder = lease
    seeding.timer = setTimeout(() => {
      if (this.seeding !== seeding) return
      this.broadcast({
        event: 'log',
        line: `the seed of pid ${lease.client.pid} did not finish within ${Math.round(seeding.request.seedTimeoutMs / 1000)} s (seedTimeoutMs): its seeded snapshot is not taken`,
      })
      this.endSeeding(true)
    }, seeding.request.seedTimeoutMs + SEED_SAVE_GRACE_MS)
    seeding.timer.unref()
  }

  /** From the seeding lease, once it minted and seeded: save, so resets return here with the same keys. */
  private async saveSeededSnapshot(connection: Connection): Promise<InstanceInfo> {
    const seeding = this.seeding
    if (!seeding?.seeder || seeding.seeder !== connection.lease) {
      throw new StackEmulatorError('This lease was not asked to take a seeded snapshot', {
        code: 'PROTOCOL',
        fix: 'Send saveSeededSnapshot only after an acquire answered seeding: true.',
      })
    }
    clearTimeout(seeding.timer)
    return this.enqueue(async () => {
      let saved = false
      try {
        const { request } = seeding
        const minted = await this.credentials.mintedFor(request.configFile)
        if (!minted) throw new StackEmulatorError('Mint the credentials before saving the seeded snapshot', { code: 'PROTOCOL' })
        // The file as the guest minted for, before and after (it may write it): an edit while the seed ran is not recorded as fitting.
        const meta: SeededSnapshotMeta = {
          configFile: request.configFile,
          configDigests: [...new Set([request.configDigest, minted.digest])],
          seedId: request.seedId,
          credentials: minted.credentials,
        }
        const started = performance.now()
        this.state = 'resetting'
        await this.endpoint.repairNow()
        await this.vm!.seededSnapshots!.save(meta, seededSnapshotPolicy).catch((error: Error) => {
          // The VM is back where resets return; its keys and the seed's data are gone with the failed save.
          this.leases.dirty = true
          throw error
        })
        saved = true
        this.log(`seeded snapshot saved and restored in ${Math.round(performance.now() - started)} ms`)
        const now = sha256(await fs.readFile(request.configFile).catch(() => Buffer.alloc(0)))
        if (!meta.configDigests.includes(now))
          this.broadcast({ event: 'log', line: `${request.configFile} changed while the seed ran: the next run takes its seeded snapshot again` })
      } finally {
        this.state = 'ready'
        this.credentials.newState(this.vm)
        this.endSeeding(!saved)
      }
      return this.instanceInfo()
    })
  }

  /** Seeding is over; `tainted`: it left data in the VM that fits no suite, so the VM is reset before it serves one with a seed. */
  private endSeeding(tainted: boolean): void {
    if (!this.seeding) return
    clearTimeout(this.seeding.timer)
    this.seeding.finish()
    this.seeding = undefined
    if (tainted) {
      this.tainted = true
      this.leases.dirty = true
    }
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
    // Its seed did not finish (or the seed it waited for never came): the next reset drops what it left.
    if (this.seeding && (this.seeding.seeder === connection.lease || (!this.seeding.seeder && this.leases.othersHolding(undefined).length === 0)))
      this.endSeeding(true)
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
