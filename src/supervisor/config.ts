/** What a client hands the supervisor it spawns (written to supervisor.json). */
import type { InstancePaths } from '../instance/paths.js'
import type { Settings } from '../settings.js'

export interface SupervisorConfig {
  paths: InstancePaths
  manifestPath: string
  settings: Settings
  driver: {
    ports?: Record<string, number>
    memoryMb?: number
    snapshot?: boolean
    fresh?: boolean
    bootTimeoutMs?: number
  }
}

export interface InstanceState {
  pid: number
  socket: string
  imageFingerprint: string
  imageName: string
  startedAt: string
}
