/**
 * Mints the project id and keys for an app's stack.config.ts through Stack Auth's
 * local-emulator route. The same file gives the same project for one VM lifetime.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { httpRequest } from '../http.js'
import { StackEmulatorError } from '../errors.js'
import { pollUntil } from '../poll.js'
import type { StackCredentials } from './environment.js'
import { ensureGeneratedConfig, projectRoot } from './project-config.js'

/**
 * The app's config file: an explicit one, ./stack.config.ts, or the one generated for the
 * project `cwd` is in (project-config.ts), under `stateRoot`.
 */
export async function resolveConfigFile(configFile: string | undefined, cwd: string, stateRoot: string): Promise<string> {
  if (configFile) return path.resolve(cwd, configFile)
  const local = path.join(cwd, 'stack.config.ts')
  if (
    await fs.access(local).then(
      () => true,
      () => false,
    )
  )
    return local
  return ensureGeneratedConfig(stateRoot, projectRoot(cwd))
}

/** How Stack Auth's CLI waits for the internal key: 60 s, polling from 50 ms, doubling, at most 2 s apart. */
const KEY_WAIT_MS = 60_000

/**
 * Where the guest publishes the internal key: the VM's share (drivers/host-share.ts), read from
 * its root without following a link the guest made, never by a plain path.
 */
export interface PublishedKey {
  /** Where the key appears on the host, for messages; undefined when the image publishes none. */
  readonly internalKeyFile: string | undefined
  /** The key, or undefined while the guest has not published it yet. */
  readInternalKey(): Promise<string | undefined>
}

/**
 * Mints credentials as Stack Auth's CLI does: the internal project's publishable key, which the
 * guest publishes into the VM folder (`published`), opens the route as a client of project
 * `internal`; the body names the config file by its absolute path.
 */
export async function mintCredentials(routeUrl: string, configFile: string, published?: PublishedKey, internalKey?: string): Promise<StackCredentials> {
  const key = internalKey ?? (published?.internalKeyFile ? await waitForInternalKey(published, published.internalKeyFile) : undefined)
  const headers = key ? { 'x-stack-project-id': 'internal', 'x-stack-access-type': 'client', 'x-stack-publishable-client-key': key } : undefined
  let response: { status: number; text: string }
  try {
    response = await httpRequest(routeUrl, { method: 'POST', json: { absolute_file_path: configFile }, headers, timeoutMs: 15_000 })
  } catch (cause) {
    throw new StackEmulatorError(`Could not reach the credential route ${routeUrl}`, {
      code: 'CREDENTIALS',
      fix: 'Check that the backend is healthy (stack-emulator status), or pass configFile: false.',
      cause,
    })
  }
  if (response.status !== 200) {
    throw new StackEmulatorError(`The credential route refused ${configFile}: HTTP ${response.status} ${describeError(response.text)}`, {
      code: 'CREDENTIALS',
      fix: 'Check the config file (it must exist and export a config), or pass configFile: false.',
    })
  }
  let body: Record<string, unknown>
  try {
    body = JSON.parse(response.text) as Record<string, unknown>
  } catch {
    body = {}
  }
  const credentials = {
    projectId: body.project_id,
    publishableClientKey: body.publishable_client_key,
    secretServerKey: body.secret_server_key,
    superSecretAdminKey: body.super_secret_admin_key,
  }
  const missing = Object.entries(credentials)
    .filter(([, v]) => typeof v !== 'string' || !v)
    .map(([k]) => k)
  if (missing.length > 0) {
    throw new StackEmulatorError(`The credential route ${routeUrl} answered without ${missing.join(', ')}`, { code: 'CREDENTIALS' })
  }
  const override = body.branch_config_override_string
  return { ...(credentials as Omit<StackCredentials, 'branchConfigOverride'>), ...(typeof override === 'string' ? { branchConfigOverride: override } : {}) }
}

async function waitForInternalKey(published: PublishedKey, file: string): Promise<string> {
  return pollUntil(async () => (await published.readInternalKey()) || undefined, {
    timeoutMs: KEY_WAIT_MS,
    intervalMs: (tries) => Math.min(50 * 2 ** (tries - 1), 2000),
    timeoutError: () =>
      new StackEmulatorError(`The emulator did not publish its internal key (${file}) within ${KEY_WAIT_MS / 1000} s`, {
        code: 'CREDENTIALS',
        fix: 'See the console log (stack-emulator logs): the guest writes the key once its services start.',
      }),
  })
}

/** A Stack known error's code and message, or the start of the body. */
function describeError(text: string): string {
  try {
    const body = JSON.parse(text) as { code?: unknown; error?: unknown }
    if (typeof body.code === 'string') return `${body.code}: ${String(body.error ?? '')}`.trim()
  } catch {
    // not JSON
  }
  return text.slice(0, 200).replace(/\s+/g, ' ')
}
