/**
 * What the supervisor needs from a driver. Drivers know QEMU (or Docker), never Vitest,
 * Playwright or leases.
 */
import type { StackEmulatorError } from '../errors.js'
import type { ImageManifest } from '../image/manifest.js'
import type { Settings } from '../settings.js'

export type VmOrigin = 'snapshot' | 'cold-boot'

/** What the driver gets: every value final. */
export interface DriverOptions {
  /** Host port per service of the image; 0 = QEMU picks. */
  ports: Record<string, number>
  memoryMb: number
  snapshot: boolean
  fresh: boolean
  bootTimeoutMs: number
}

export interface DriverStartOptions extends DriverOptions {
  manifest: ImageManifest
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
  origin: VmOrigin
}

/**
 * Host files the guest reads through a share (images with a `hostShare`): the credential route
 * reads the app's config file at its absolute path, and the guest publishes its internal key.
 */
export interface SharedFiles {
  /** Makes `file` (absolute) visible to the guest at the same path. */
  expose(file: string): Promise<void>
  /** Copies back to the host every exposed file the guest changed. */
  syncBack(): Promise<void>
  /** Where the guest's internal project key appears on the host, for images that publish one. */
  readonly internalKeyFile: string | undefined
}

export interface RunningVm {
  readonly pid: number
  readonly accel: string
  readonly origin: VmOrigin
  /** Base URL per service, e.g. { backend: 'http://127.0.0.1:40123' }. Stable across resets. */
  readonly urls: Record<string, string>
  /** How long each phase of its start took, in ms, in order (QEMU launch, restore, first healthy probe, ...). */
  readonly startupPhases: Record<string, number>
  /** The share with the guest, when the image has one. */
  readonly shared?: SharedFiles
  /** Back to the clean `ready` state, on the same host ports. */
  reset(): Promise<ResetResult>
  /** Why the VM cannot serve right now (a full disk paused it), or undefined. */
  problem(): StackEmulatorError | undefined
  /** Stops the VM; safe to call twice. */
  stop(): Promise<void>
  /** Resolves when the VM stops by itself (crash, killed); not after stop(). */
  readonly died: Promise<string>
}
