/** What tests get from both integrations: the Vitest `inject('stackEmulator')` and the Playwright fixture. */
import type { Emulator } from '../client/acquire.js'

export interface StackEmulatorContext {
  /** The instance name: `resetInstance(name)` and the CLI's `--name` act on this VM. */
  name: string
  backendUrl: string
  dashboardUrl: string
  /** Base URL per service. */
  services: Record<string, string>
  projectId: string
  publishableClientKey: string
  secretServerKey: string
  superSecretAdminKey: string
  /** The environment variables also set in process.env. */
  env: Record<string, string>
}

export function contextOf(emulator: Emulator): StackEmulatorContext {
  const c = emulator.credentials
  return {
    name: emulator.name,
    backendUrl: emulator.backendUrl,
    dashboardUrl: emulator.dashboardUrl,
    services: emulator.services,
    projectId: c?.projectId ?? '',
    publishableClientKey: c?.publishableClientKey ?? '',
    secretServerKey: c?.secretServerKey ?? '',
    superSecretAdminKey: c?.superSecretAdminKey ?? '',
    env: emulator.env,
  }
}

/** The one line a run prints about the emulator: how it came up and how long it took. */
export function summaryLine(emulator: Emulator): string {
  const { durationMs, startedVm } = emulator.startup
  if (startedVm) return `VM "${emulator.name}" ready in ${durationMs} ms (${emulator.origin === 'snapshot' ? 'from snapshot' : 'cold boot'}, ${emulator.accel})`
  return `attached to the running VM "${emulator.name}" in ${durationMs} ms${emulator.wasReset ? ' (reset first)' : ''}`
}
