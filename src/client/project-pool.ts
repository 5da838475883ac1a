/**
 * Projects minted ahead (isolation 'project', issue 25): one pool per test worker keeps up to
 * `ahead` projects minted (and seeded) in the background, so that a test asking for one takes it
 * at once. Pure: the mint is a function given to it, so the bound, the concurrency, a failed mint
 * and the draining are tested without a VM (test/unit/project-pool.test.ts).
 *
 * The bound: at most `ahead` projects waiting unused, and at most `ahead + waiting takers` mints
 * in flight (with `ahead` 0, one mint per take, started by it). A project is handed out once.
 */
import { StackEmulatorError } from '../errors.js'

export interface ProjectPoolOptions<T> {
  /** Mints (and seeds) one project. */
  mint: () => Promise<T>
  /** Projects kept minted ahead, 0 for none (each take mints its own). */
  ahead: number
  /** Called with each minted project the pool drops unused (drain, close): nothing to undo on the VM, for the log. */
  dropped?: (project: T) => void
}

interface Taker<T> {
  resolve: (project: T) => void
  reject: (error: unknown) => void
}

export class ProjectPool<T> {
  private readonly ready: T[] = []
  private readonly takers: Taker<T>[] = []
  private readonly inFlight = new Set<Promise<void>>()
  /** A background mint's failure, handed to the next take (then minting resumes). */
  private failure: unknown
  /** Bumped by drain(): a mint started before it is dropped when it lands. */
  private generation = 0
  private closed = false

  constructor(private readonly options: ProjectPoolOptions<T>) {
    if (!Number.isInteger(options.ahead) || options.ahead < 0) throw new TypeError(`ahead must be an integer, 0 or more, not ${String(options.ahead)}`)
  }

  /** Projects minted and not handed out yet. */
  get readyCount(): number {
    return this.ready.length
  }
  /** Mints under way. */
  get mintingCount(): number {
    return this.inFlight.size
  }

  /** Starts minting ahead (a pool with `ahead` 0 mints only when asked). */
  start(): this {
    this.refill()
    return this
  }

  /** A project no one else got: a ready one, else the next mint's. A background failure is thrown here once. */
  take(): Promise<T> {
    if (this.closed) return Promise.reject(closedError())
    if (this.failure !== undefined) {
      const failure = this.failure
      this.failure = undefined
      this.refill()
      return Promise.reject(failure)
    }
    const project = this.ready.shift()
    if (project !== undefined) {
      this.refill()
      return Promise.resolve(project)
    }
    return new Promise<T>((resolve, reject) => {
      this.takers.push({ resolve, reject })
      this.refill()
    })
  }

  /**
   * Drops what was minted before now (the VM was reset or restored: those projects are gone).
   * Takers waiting keep waiting, for projects minted after the drain.
   */
  drain(): void {
    this.generation++
    for (const project of this.ready.splice(0)) this.options.dropped?.(project)
    this.failure = undefined
    this.refill()
  }

  /** Stops minting; waiting takers are refused; resolves once no mint is under way. Safe to call twice. */
  async close(): Promise<void> {
    if (!this.closed) {
      this.closed = true
      for (const project of this.ready.splice(0)) this.options.dropped?.(project)
      for (const taker of this.takers.splice(0)) taker.reject(closedError())
    }
    while (this.inFlight.size > 0) await Promise.allSettled([...this.inFlight])
  }

  private refill(): void {
    if (this.closed || this.failure !== undefined) return
    // Mints from before a drain still count against the bound: a reset cannot make the pool
    // start more than `ahead` extra mints at once.
    while (this.ready.length + this.inFlight.size < this.options.ahead + this.takers.length) this.mintOne()
  }

  private mintOne(): void {
    const generation = this.generation
    const flight: Promise<void> = Promise.resolve()
      .then(() => this.options.mint())
      .then(
        (project) => this.landed(project, generation),
        (error: unknown) => this.failed(error, generation),
      )
      .finally(() => {
        this.inFlight.delete(flight)
        this.refill()
      })
    this.inFlight.add(flight)
  }

  private landed(project: T, generation: number): void {
    if (this.closed || generation !== this.generation) return void this.options.dropped?.(project)
    const taker = this.takers.shift()
    if (taker) taker.resolve(project)
    else this.ready.push(project)
  }

  private failed(error: unknown, generation: number): void {
    if (this.closed || generation !== this.generation) return // its project would have been dropped anyway
    const taker = this.takers.shift()
    if (taker) {
      taker.reject(error)
      return
    }
    // Nobody waits: the next take says why, and until then no mint is retried (a broken route
    // must not be hammered in the background).
    this.failure = error
  }
}

function closedError(): StackEmulatorError {
  return new StackEmulatorError('The project pool is closed: its worker released the emulator', {
    code: 'LEASE_LOST',
    fix: 'Take projects only while the emulator is held (inside the test run).',
  })
}
