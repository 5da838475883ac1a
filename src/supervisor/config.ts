/** What a client hands the supervisor it spawns (written to supervisor.json), and what it leaves behind. */
import type { DriverOptions } from '../drivers/types.js'
import type { InstancePaths } from '../instance/paths.js'
import type { Settings } from '../settings.js'
import type { SeededSnapshotRequest } from './protocol.js'

export interface SupervisorConfig {
  paths: InstancePaths
  manifestPath: string
  settings: Settings
  driver: DriverOptions
  /** The spawning suite's seeded snapshot: the VM starts from it when it exists and fits. */
  seededSnapshot?: SeededSnapshotRequest
  /** The client that spawned it: the supervisor waits for its hello while it lives (paused too). */
  spawner?: { pid: number; startTime: string | undefined }
}

/** state.json: who serves the instance, for status and for finding a hung supervisor. */
export interface InstanceState {
  pid: number
  /** Tells this supervisor's files from a successor's. */
  nonce: string
  socket: string
  imageFingerprint: string
  imageName: string
  startedAt: string
}

/** A supervisor that finds its instance already owned exits with this code, touching nothing. */
export const ALREADY_OWNED_EXIT_CODE = 75

/**
 * A supervisor whose spawner died before saying hello stops its VM after this long; one whose
 * spawner still lives (a debugger paused it, a throttled container) waits for it.
 */
export const HELLO_TIMEOUT_MS = 5_000
