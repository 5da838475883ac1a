/**
 * The driver contract: what the supervisor needs from a driver (`Driver`, `RunningInstance`).
 * Drivers know their engine, never Vitest, Playwright or leases.
 */
import { StackEmulatorError } from '../errors.js'
import type { Settings } from '../settings.js'
import type { PublishedKey } from '../stack/credentials.js'
import type { DriverName } from './names.js'

/** How the running emulator came up: restored, booted or started afresh, or attached to (external). */
export type InstanceOrigin = 'snapshot' | 'cold-boot' | 'attached'

export { DRIVER_NAMES, type DriverName } from './names.js'

/** What the driver gets: every value final. */
export interface DriverOptions {
  /** Which driver runs the instance. */
  kind: DriverName
  /** external: base URL per service of the emulator someone else runs. */
  urls?: Record<string, string>
  /** external: the internal project's publishable key, when its handshake file is out of reach. */
  internalKey?: string
  /** Host port per service of the image; 0 = the driver picks a free one. */
  ports: Record<string, number>
  memoryMb: number
  snapshot: boolean
  fresh: boolean
  bootTimeoutMs: number
}

/** A seeded snapshot's stored meta checked against what a suite asks for: why it does not fit, or undefined. */
export type SeededSnapshotCheck = (meta: unknown) => string | undefined

/** What the caller says of a stored seeded snapshot's meta, which the driver does not read itself. */
export interface SeededSnapshotPolicy {
  /** True when no suite can use it again (what it was taken for is gone). */
  retired(meta: unknown): boolean
  /** What it was taken for, for a log line (a project, a config file). */
  describe(meta: unknown): string
}

export type SeededSnapshotOpened = { opened: 'restored'; meta: unknown } | { opened: 'seeding' | 'missing'; reason: string }

/**
 * Seeded snapshots: a saved state with a suite's project and seed data that resets return to,
 * so keys stay valid across resets. Slots are named by the caller (one per config file).
 */
export interface SeededSnapshots {
  /** The seeded snapshot resets return to now, with what was stored in it; undefined: the plain ready state. */
  readonly current: { slot: string; meta: unknown } | undefined
  /**
   * Makes `slot` where resets return to. Saved before and accepted by `check`: the emulator is
   * reset into it. Else, with `stage`, it restarts ready to be seeded and saved ('seeding'), and
   * without, nothing changes ('missing'); the reason says why.
   */
  open(slot: string, check: SeededSnapshotCheck, stage: boolean): Promise<SeededSnapshotOpened>
  /**
   * Saves the seeded emulator as the open slot, with `meta`, and restarts from it. Then drops the
   * stored seeded snapshots no restore can use again, so that the cache does not grow with every config
   * file ever seeded: those the policy calls retired, and those taken over an earlier ready
   * snapshot; and the least recently used beyond the store's bound (said in one line, with
   * `describe`). None that a running emulator uses.
   */
  save(meta: unknown, policy: SeededSnapshotPolicy): Promise<void>
}

/** What every driver gets to start an instance; each takes its own manifest beside it (Driver). */
export interface DriverStartOptions extends DriverOptions {
  /** Start from this seeded snapshot when it exists and fits (else from the plain ready state). */
  seededSnapshot?: { slot: string; check: SeededSnapshotCheck }
  settings: Settings
  /** Folder for this instance's overlay, sockets and logs (mode 0700). */
  instanceDir: string
  /** One-line messages for the user (warnings, fallbacks). */
  log: (line: string) => void
  /** Phase changes during long waits. */
  progress: (phase: string) => void
}

export interface ResetResult {
  durationMs: number
  origin: InstanceOrigin
}

/**
 * Host files the guest reads through a share (images with a `hostShare`): the credential route
 * reads the app's config file at its absolute path, and the guest publishes its internal key.
 */
export interface SharedFiles extends PublishedKey {
  /**
   * Makes `file` (absolute; a config file, not a link) visible to the guest at the same path.
   * `track: false`: never copied back (a per-test project's copy, issue 25: syncBack stays O(1) in them).
   */
  expose(file: string, options?: { track?: boolean }): Promise<void>
  /** Copies back to the host every exposed file the guest changed. */
  syncBack(): Promise<void>
  /** Removes the guest's view of the host folder `folder` (per-test copies of a VM state that is gone). */
  forget?(folder: string): Promise<void>
}

/** What a driver can do; asked, never assumed. */
export interface Capabilities {
  /** Starts from a captured ready state. */
  snapshots: boolean
  /** Can go back to the clean state; when false, reset() rejects with code RESET_UNSUPPORTED. */
  reset: boolean
  /** Sets the emulator's clock after a restore. */
  clock: boolean
  /** Starts and stops what it runs (false: someone else runs it). */
  lifecycle: boolean
}

/** Which part of the services' output to read (RunningInstance.serviceLogs). */
export interface ServiceLogQuery {
  /** Only lines logged from this time on (ms since the epoch): needs a source with timestamps. */
  sinceMs?: number
  /** Only lines logged until this time (ms since the epoch). */
  untilMs?: number
  /** Only what came after an earlier answer: its `cursor` (following). */
  cursor?: string
  /** At most this many lines, the last ones. */
  maxLines?: number
}

export interface ServiceLogs {
  /** Where the lines were read: a file on the host, or the unit's journal in the guest. */
  source: string
  text: string
  /** Give it back as `cursor` for only what comes after. */
  cursor?: string
  /** False when sinceMs/untilMs asked for a window that this source cannot tell (no timestamps): text is all of it. */
  windowed?: boolean
}

/** One running emulator, whatever runs it. */
export interface RunningInstance {
  readonly driver: DriverName
  /** What it runs, in the driver's own terms: a process id, a container id, the remote backend's URL. */
  readonly id: string
  /** How it runs, in a word or two (tcg, kvm, container, remote). */
  readonly accel: string
  readonly capabilities: Capabilities
  readonly origin: InstanceOrigin
  /** Base URL per service, e.g. { backend: 'http://127.0.0.1:40123' }. Stable across resets. */
  readonly urls: Record<string, string>
  /** How long each phase of its start took, in ms, in order. */
  readonly startupPhases: Record<string, number>
  /** Files the emulator reads from the host (the config file), when it has such a route. */
  readonly shared?: SharedFiles
  /** The internal project's key to mint credentials with, when no shared file publishes it. */
  readonly internalKey?: string
  /** Present when the driver can save seeded states (QEMU restored from a snapshot). */
  readonly seededSnapshots?: SeededSnapshots
  /** Rejects with ResetNotDone when it left the emulator as it was and serving; any other rejection left it stopped. */
  reset(): Promise<ResetResult>
  /**
   * The services' own output, where the driver can read it: a file they write through the share,
   * else their unit's journal in the guest. undefined when it has none.
   */
  serviceLogs?(query?: ServiceLogQuery): Promise<ServiceLogs | undefined>
  problem(): StackEmulatorError | undefined
  /** A standing condition worth a line in `status`, such as why it cold-boots. */
  readonly note?: string
  /** Stops what the driver started; safe to call twice. */
  stop(): Promise<void>
  /** Resolves when it stops by itself (crash, killed); not after stop(). */
  readonly died: Promise<string>
}

/**
 * A driver, with its own manifest `M`: the QEMU one an image manifest, the others a service
 * manifest (drivers/service-manifest.ts). The rest of the code reaches it through the registry.
 */
export interface Driver<M> {
  readonly name: DriverName
  start(options: DriverStartOptions & { manifest: M }): Promise<RunningInstance>
}

/** A reset that was not done and left the emulator serving as it was (a host port taken meanwhile): the supervisor keeps it. */
export class ResetNotDone extends StackEmulatorError {}
