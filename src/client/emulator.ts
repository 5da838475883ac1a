/** The handle acquire() returns: its type alone, so options (whose `seed` receives one) and acquire import it without a circle. */
import type { StackCredentials } from '../stack/environment.js'
import type { MailClient } from '../stack/mail.js'
import type { SignInHelpers } from '../stack/test-users.js'
import type { InstanceInfo } from '../supervisor/protocol.js'
import type { MintedProject } from './projects.js'

export interface EmulatorInfo {
  name: string
  /** Base URL per service ({ backend, dashboard, ... }). */
  services: Record<string, string>
  backendUrl: string
  dashboardUrl: string
  /** Environment variables for tests and apps (URLs and, with credentials, project id and keys). */
  env: Record<string, string>
  credentials: StackCredentials | undefined
  accel: string
  origin: InstanceInfo['origin']
  /** Which driver runs it. */
  driver: InstanceInfo['driver']
  /** What the driver runs, in its own terms: a process id, a container id, or a URL it attached to. */
  id: string
}

/** The sign-in helpers (`users.create()`, `sessionFor`, `signIn`, `authHeaders`) work in the app's project: its credentials. */
export interface Emulator extends EmulatorInfo, AsyncDisposable, SignInHelpers {
  /** True when the VM was reset before it was handed to this lease. */
  readonly wasReset: boolean
  /** This lease's id: test workers reset on its behalf (resetInstance's `lease`). */
  readonly lease: number
  /**
   * How this acquire went: its duration, whether it started the VM (else it attached), its phases
   * back to back (they add up to durationMs), and the VM start's own phases (inside "supervisor"
   * and "VM", which overlap it).
   */
  readonly startup: Startup
  /**
   * The mail helper: reads the image's Inbucket, where Stack Auth's emails (verification, password
   * reset, magic links) land. Its calls reject with code NO_SERVICE on an image without one.
   */
  readonly mail: MailClient
  /** Back to the clean `ready` state; refused while other suites hold the VM unless force. */
  reset(options?: { force?: boolean }): Promise<{ durationMs: number }>
  /** Ends the lease; safe to call twice. */
  release(): Promise<void>
  /** Resolves with the reason when the emulator is stopped under this lease's feet. */
  readonly lost: Promise<string>
  /**
   * A fresh Stack Auth project on this VM (isolation 'project', issue 25), minted from a copy of
   * the app's config file: its own id, keys, env and mail. Gone with the VM's next reset.
   */
  newProject(): Promise<MintedProject>
  /** Calls `listener` whenever the VM changes state (reset, restore): projects minted before are gone. Returns the unsubscribe. */
  onNewGeneration(listener: (generation: number) => void): () => void
}

export interface Startup {
  durationMs: number
  startedVm: boolean
  phases: Record<string, number>
  vmPhases: Record<string, number>
}
