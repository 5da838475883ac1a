/**
 * Seeded snapshots, as the supervisor takes and serves them: which suite waits for which seed
 * (bounded, with the error naming both), which lease seeds, opening the seeded snapshot that fits
 * a suite (restored, or staged to be seeded), saving it with the credentials minted for it, and
 * what a seed that did not finish leaves behind (`tainted`: the VM is reset before it serves a
 * seeded suite). The handshake's other half is the client's (client/acquire.ts).
 */
import fs from 'node:fs/promises'
import type net from 'node:net'
import { sha256 } from '../digest.js'
import type { RunningInstance } from '../drivers/types.js'
import { StackEmulatorError } from '../errors.js'
import type { Credentials } from './credentials.js'
import type { Lease, LeaseBook } from './leases.js'
import { send, type SeededSnapshotRequest } from './protocol.js'
import { seededSnapshotMisfit, seededSnapshotPolicy, seededSnapshotSlot, seedName, type SeededSnapshotMeta } from './seeded-snapshot-policy.js'

/** What seeding asks of the supervisor. */
export interface SeedingHost {
  /** The instance's name, for errors. */
  readonly name: string
  readonly driver: { kind: string; snapshot?: boolean }
  readonly leases: LeaseBook
  readonly credentials: Credentials
  /** The running instance (seeding starts only once it runs). */
  instance(): RunningInstance
  /** Resolves at the next lease's end. */
  nextRelease(): Promise<void>
  /** Runs a change of the VM's state: status says resetting meanwhile, and the endpoint is checked first. */
  changing<T>(change: () => Promise<T>): Promise<T>
  /** A line every client sees. */
  say(line: string): void
  /** A line in the supervisor's log. */
  log(line: string): void
  shutdown(reason: string): void
}

/** Why an acquire waits, until when it asks again, and whether it is another seed's VM (else a seed running). */
export interface SeedWait {
  wait: string
  until: Promise<void>
  conflict: boolean
}

/** The connection of an acquire that waits: told why once per reason. */
export interface WaitingConnection {
  socket: net.Socket
  /** The reason this connection's acquire last said it waits for (said once). */
  lastWait?: string
}

/** A seeded snapshot being taken: by `seeder`, or, until one arrives, awaited by a client whose seed comes later. */
interface SeedInProgress {
  request: SeededSnapshotRequest
  seeder?: Lease
  done: Promise<void>
  finish: () => void
  timer?: NodeJS.Timeout
}

/** Past the client's own seed timeout: the supervisor stops waiting for a client that may be paused. */
const SEED_SAVE_GRACE_MS = 5000

export class Seeding {
  private inProgress: SeedInProgress | undefined
  /** A seed left the VM half-made: it serves no seeded suite before a reset. */
  tainted = false

  constructor(private readonly host: SeedingHost) {}

  /** A lease closed: its seed did not finish (or the seed it waited for never came), so the next reset drops what it left. */
  leaseClosed(lease: Lease): void {
    const seeding = this.inProgress
    if (seeding && (seeding.seeder === lease || (!seeding.seeder && this.host.leases.othersHolding(undefined).length === 0))) this.end(true)
  }

  /**
   * Why `lease`, asking for `request`, must wait before it gets the VM; undefined when it need not.
   * A suite never gets the VM while another one seeds it, nor a VM that others hold with data its
   * seed did not make: it waits (bounded by its seedTimeoutMs), then fails naming both seeds.
   */
  wait(lease: Lease, request: SeededSnapshotRequest | undefined): SeedWait | undefined {
    const seeding = this.inProgress
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
    const seededSnapshots = this.host.instance().seededSnapshots
    if (!request?.seedId || !seededSnapshots) return undefined
    if (this.tainted) return this.heldBy(lease, 'a seed that did not finish')
    const current = seededSnapshots.current
    const fits = current?.slot === seededSnapshotSlot(request.configFile) && !seededSnapshotMisfit(request, current.meta)
    if (fits) return undefined
    const meta = current?.meta as SeededSnapshotMeta | undefined
    return this.heldBy(lease, meta ? `${seedName(meta.seedId)} for ${meta.configFile}` : 'no seeded snapshot')
  }

  /** Wait for the others to let go of the VM (then it can be restored for this suite); none: no wait. */
  private heldBy(lease: Lease, what: string): SeedWait | undefined {
    const others = this.host.leases.othersHolding(lease)
    if (others.length === 0) return undefined
    return {
      wait: `${others.length} other suite(s) (pids ${others.map((l) => l.client.pid).join(', ')}) holding it with ${what}`,
      until: this.host.nextRelease(),
      conflict: true,
    }
  }

  /** One line per reason, then waits for it to change, at most until `deadline`: then a clear error. */
  async waitFor(connection: WaitingConnection, wait: SeedWait, deadline: number, request: SeededSnapshotRequest | undefined): Promise<void> {
    const left = deadline - Date.now()
    if (left <= 0) {
      const name = this.host.name
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

  /**
   * Puts the VM at `request`'s seeded snapshot: already there, restored into it, or (when it has
   * none that fits) restarted to be seeded, by this lease (true: it mints, seeds, then sends
   * `saveSeededSnapshot`) or, for a client whose seed comes later, by the next lease that brings it.
   * A VM other suites hold is never restarted under them (wait() saw to that for seeded suites).
   */
  async open(lease: Lease, request: SeededSnapshotRequest): Promise<boolean> {
    const seededSnapshots = this.host.instance().seededSnapshots
    if (!seededSnapshots) {
      if (!request.seedId) return false
      throw new StackEmulatorError(
        `The ${this.host.driver.kind} driver${this.host.driver.snapshot ? '' : ' without snapshots'} cannot keep a seed: it has no seeded snapshots to reset to`,
        {
          code: 'SEED_UNSUPPORTED',
          fix: 'Drop the seed option (create the data in the tests themselves), or use the qemu driver with snapshots (the default).',
        },
      )
    }
    const pending = this.inProgress
    if (pending && (!request.seedId || (request.seedId === pending.request.seedId && request.configFile === pending.request.configFile))) {
      // Opened by a client whose seed comes later: the first lease that brings the seed runs it.
      if (pending.seeder || request.seedFrom !== 'self' || !request.seedId) return false
      this.host.say(
        `taking the seeded snapshot for ${request.configFile} (${seedName(request.seedId)}) on the VM its app already uses; later runs and resets start from it`,
      )
      this.startSeeder(pending, lease)
      return true
    }
    // Awaited for another seed by clients that are gone: what they left is dropped below.
    if (pending) this.end(true)
    const slot = seededSnapshotSlot(request.configFile)
    const current = seededSnapshots.current
    if (current?.slot === slot && !seededSnapshotMisfit(request, current.meta)) return false
    // Only a suite without a seed gets here while others hold the VM: it mints a project of its own.
    if (this.host.leases.othersHolding(lease).length > 0) return false
    const opened = await this.host
      .changing(() => seededSnapshots.open(slot, (meta) => seededSnapshotMisfit(request, meta), request.seedFrom !== 'none'))
      .catch((error: Error) => {
        this.host.shutdown(`opening the seeded snapshot failed (${error.message.split('\n')[0]})`)
        throw error
      })
    if (opened.opened === 'missing') return this.noSnapshot(request, opened.reason)
    this.tainted = false
    this.host.credentials.newState(this.host.instance())
    this.host.leases.dirty = false
    if (opened.opened === 'restored') return false
    let finish!: () => void
    const seeding: SeedInProgress = { request, done: new Promise<void>((resolve) => (finish = resolve)), finish }
    this.inProgress = seeding
    // Its client may have gone while the VM restarted: then nobody seeds, and nobody may wait on it.
    if (!this.host.leases.has(lease)) {
      this.end(false)
      return false
    }
    if (request.seedFrom === 'later') {
      this.host.say(
        `no seeded snapshot for ${request.configFile} (${opened.reason}): it is taken when the suite with ${seedName(request.seedId)} arrives (its globalSetup); this VM serves meanwhile, with the same keys after`,
      )
      return false
    }
    this.host.say(`taking a seeded snapshot for ${request.configFile} (${opened.reason}); later runs and resets start from it`)
    this.startSeeder(seeding, lease)
    return true
  }

  /** No seeded snapshot can be had: fine for a suite without a seed (its keys change at resets), an error for one with. */
  private noSnapshot(request: SeededSnapshotRequest, reason: string): false {
    if (!request.seedId) {
      if (request.seedFrom === 'self') this.host.say(`not taking a seeded snapshot for ${request.configFile}: ${reason}`)
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
  private startSeeder(seeding: SeedInProgress, lease: Lease): void {
    seeding.seeder = lease
    seeding.timer = setTimeout(() => {
      if (this.inProgress !== seeding) return
      this.host.say(
        `the seed of pid ${lease.client.pid} did not finish within ${Math.round(seeding.request.seedTimeoutMs / 1000)} s (seedTimeoutMs): its seeded snapshot is not taken`,
      )
      this.end(true)
    }, seeding.request.seedTimeoutMs + SEED_SAVE_GRACE_MS)
    seeding.timer.unref()
  }

  /**
   * From the seeding lease, once it minted and seeded: save, so resets return here with the same
   * keys. Runs in the supervisor's queue.
   */
  async save(lease: Lease | undefined): Promise<void> {
    const seeding = this.inProgress
    if (!seeding?.seeder || seeding.seeder !== lease) {
      throw new StackEmulatorError('This lease was not asked to take a seeded snapshot', {
        code: 'PROTOCOL',
        fix: 'Send saveSeededSnapshot only after an acquire answered seeding: true.',
      })
    }
    clearTimeout(seeding.timer)
    let saved = false
    try {
      const { request } = seeding
      const minted = await this.host.credentials.mintedFor(request.configFile)
      if (!minted) throw new StackEmulatorError('Mint the credentials before saving the seeded snapshot', { code: 'PROTOCOL' })
      // The file as the guest minted for, before and after (it may write it): an edit while the seed ran is not recorded as fitting.
      const meta: SeededSnapshotMeta = {
        configFile: request.configFile,
        configDigests: [...new Set([request.configDigest, minted.digest])],
        seedId: request.seedId,
        credentials: minted.credentials,
      }
      const started = performance.now()
      await this.host.changing(() =>
        this.host
          .instance()
          .seededSnapshots!.save(meta, seededSnapshotPolicy)
          .catch((error: Error) => {
            // The VM is back where resets return; its keys and the seed's data are gone with the failed save.
            this.host.leases.dirty = true
            throw error
          }),
      )
      saved = true
      this.host.log(`seeded snapshot saved and restored in ${Math.round(performance.now() - started)} ms`)
      const now = sha256(await fs.readFile(request.configFile).catch(() => Buffer.alloc(0)))
      if (!meta.configDigests.includes(now)) this.host.say(`${request.configFile} changed while the seed ran: the next run takes its seeded snapshot again`)
    } finally {
      this.host.credentials.newState(this.host.instance())
      this.end(!saved)
    }
  }

  /** Seeding is over; `tainted`: it left data in the VM that fits no suite, so the VM is reset before it serves one with a seed. */
  end(tainted: boolean): void {
    if (!this.inProgress) return
    clearTimeout(this.inProgress.timer)
    this.inProgress.finish()
    this.inProgress = undefined
    if (tainted) {
      this.tainted = true
      this.host.leases.dirty = true
    }
  }
}
