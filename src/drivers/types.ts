/**
 * What the supervisor needs from a driver. Drivers know QEMU (or Docker), never Vitest,
 * Playwright or leases.
 */
import type { ImageManifest } from '../image/manifest.js'
import type { Settings } from '../settings.js'

export type VmOrigin = 'snapshot' | 'cold-boot'

export interface DriverStartOptions {
  manifest: ImageManifest
  settings: Settings
  /** Folder for this instance's overlay, sockets and logs (mode 0700). */
  instanceDir: string
  /** Host port per service name; 0 lets QEMU pick. Defaults come from the manifest. */
  ports?: Record<string, number>
  memoryMb?: number
  /** Start from (and capture) the `ready` snapshot. @default true */
  snapshot?: boolean
  /** Without snapshots: throw away the instance's overlay before booting. */
  fresh?: boolean
  bootTimeoutMs?: number
  /** One-line messages for the user (warnings, fallbacks). */
  log: (line: string) => void
  /** Phase changes during long waits. */
  progress: (phase: string) => void
}

export interface ResetResult {
  durationMs: number
  origin: VmOrigin
}

export interface RunningVm {
  readonly pid: number
  readonly accel: string
  readonly origin: VmOrigin
  /** Base URL per service, e.g. { backend: 'http://127.0.0.1:40123' }. Stable across resets. */
  readonly urls: Record<string, string>
  /** Back to the clean `ready` state, on the same host ports. */
  reset(): Promise<ResetResult>
  /** Stops the VM; safe to call twice. */
  stop(): Promise<void>
  /** Resolves when the VM stops by itself (crash, killed); not after stop(). */
  readonly died: Promise<string>
}
