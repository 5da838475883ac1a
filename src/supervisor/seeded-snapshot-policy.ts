/**
 * What the supervisor stores in a seeded snapshot and when a stored one
 * fits a suite: the same config file (one slot per file), unchanged since (or changed only by the
 * guest at the mint), and the same seed (a suite without one takes any); and when one can be
 * dropped. The rules, in one place.
 */
import { existsSync } from 'node:fs'
import { sha256 } from '../digest.js'
import type { SeededSnapshotPolicy } from '../drivers/types.js'
import type { StackCredentials } from '../stack/environment.js'
import { generatedConfigProject } from '../stack/project-config.js'
import type { SeededSnapshotRequest } from './protocol.js'

export interface SeededSnapshotMeta {
  configFile: string
  /** The file's digest before the mint and after it (the guest may write it). */
  configDigests: string[]
  seedId: string
  credentials: StackCredentials
}

export function seededSnapshotSlot(configFile: string): string {
  return sha256(configFile).slice(0, 16)
}

/**
 * A seeded snapshot whose config file is gone can never fit again (a temporary project's, say); nor
 * one of a generated config whose project folder is gone.
 */
export function seededSnapshotRetired(meta: unknown): boolean {
  const configFile = (meta as Partial<SeededSnapshotMeta> | undefined)?.configFile
  if (typeof configFile !== 'string') return false
  const project = generatedConfigProject(configFile)
  return !existsSync(configFile) || (project !== undefined && !existsSync(project))
}

/** What a seeded snapshot was taken for, in log lines: its project (for a generated config) or its config file. */
export function seededSnapshotOwner(meta: unknown): string {
  const configFile = (meta as Partial<SeededSnapshotMeta> | undefined)?.configFile
  if (typeof configFile !== 'string') return 'a seeded snapshot of another version'
  const project = generatedConfigProject(configFile)
  return project ? `the project at ${project}` : configFile
}

/** The rules above, as the driver asks for them when it saves a seeded snapshot. */
export const seededSnapshotPolicy: SeededSnapshotPolicy = { retired: seededSnapshotRetired, describe: seededSnapshotOwner }

/** Why the stored meta does not fit `request`, in words for the log line; undefined when it does. */
export function seededSnapshotMisfit(request: SeededSnapshotRequest, meta: unknown): string | undefined {
  const m = meta as Partial<SeededSnapshotMeta> | undefined
  if (!m || !Array.isArray(m.configDigests) || typeof m.seedId !== 'string' || !m.credentials) return 'it was taken by another version'
  if (m.configFile !== request.configFile) return `it belongs to ${m.configFile}`
  // A suite without a seed uses what the file's snapshot holds; it never replaces a seeded one.
  if (request.seedId && m.seedId !== request.seedId) return m.seedId ? 'the seed changed' : 'it holds no seed'
  if (!m.configDigests.includes(request.configDigest)) return `${request.configFile} changed`
  return undefined
}

/** A seed's identity for messages: `seed v2`, or `no seed`. */
export function seedName(seedId: string): string {
  return seedId ? `seed ${seedId}` : 'no seed'
}
