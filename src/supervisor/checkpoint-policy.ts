/**
 * What the supervisor stores in a checkpoint and when a stored one fits a suite: the same config
 * file (one slot per file), unchanged since (or changed only by the guest at the mint), and the
 * same seed; and when one can be dropped. The rules, in one place.
 */
import { existsSync } from 'node:fs'
import { sha256 } from '../digest.js'
import type { StackCredentials } from '../stack/environment.js'
import type { CheckpointRequest } from './protocol.js'

export interface CheckpointMeta {
  configFile: string
  /** The file's digest before the mint and after it (the guest may write it). */
  configDigests: string[]
  seedId: string
  credentials: StackCredentials
}

export function checkpointSlot(configFile: string): string {
  return sha256(configFile).slice(0, 16)
}

/** A checkpoint whose config file is gone can never fit again (a temporary project's, say). */
export function checkpointRetired(meta: unknown): boolean {
  const configFile = (meta as Partial<CheckpointMeta> | undefined)?.configFile
  return typeof configFile === 'string' && !existsSync(configFile)
}

/** Why the stored meta does not fit `request`, in words for the log line; undefined when it does. */
export function checkpointMisfit(request: CheckpointRequest, meta: unknown): string | undefined {
  const m = meta as Partial<CheckpointMeta> | undefined
  if (!m || !Array.isArray(m.configDigests) || typeof m.seedId !== 'string' || !m.credentials) return 'it was taken by another version'
  if (m.configFile !== request.configFile) return `it belongs to ${m.configFile}`
  if (m.seedId !== request.seedId) return request.seedId ? 'the seed changed' : 'it holds a seed this suite has not'
  if (!m.configDigests.includes(request.configDigest)) return `${request.configFile} changed`
  return undefined
}
