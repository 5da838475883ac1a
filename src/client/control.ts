/** Operations on an instance without holding a lease: status, reset, stop (CLI and tests). */
import fs from 'node:fs/promises'
import { checkInstanceOwner, instancePaths, type InstancePaths } from '../instance/paths.js'
import { isProcessAlive } from '../instance/process-alive.js'
import { readSettings } from '../settings.js'
import { isHealthy } from '../stack/readiness.js'
import { loadManifest } from '../image/manifest.js'
import type { StatusResult, VmInfo } from '../supervisor/protocol.js'
import type { SupervisorConfig } from '../supervisor/config.js'
import { attachExisting } from './attach.js'

export interface InstanceStatus extends StatusResult {
  /** Every service answered its health check just now. */
  healthy: boolean
}

function pathsFor(name?: string): InstancePaths {
  const settings = readSettings()
  return instancePaths(settings.stateRoot, name ?? settings.name)
}

/** The instance's paths, once it is known not to be another user's. */
async function ownPathsFor(name?: string): Promise<InstancePaths> {
  const paths = pathsFor(name)
  await checkInstanceOwner(paths)
  return paths
}

const quiet = () => {}

/** undefined when no supervisor runs for that instance. */
export async function instanceStatus(name?: string, log: (line: string) => void = quiet): Promise<InstanceStatus | undefined> {
  const paths = await ownPathsFor(name)
  const attached = await attachExisting(paths, false, log)
  if (!attached) return undefined
  try {
    const status = await attached.connection.request<StatusResult>({ op: 'status' }, 5000)
    return { ...status, healthy: status.vm ? await servicesHealthy(paths, status.vm) : false }
  } finally {
    attached.connection.close()
  }
}

/**
 * Resets the instance. `lease`: on behalf of that lease (a test worker of the suite holding it),
 * so only the other suites holding the VM make it refuse.
 */
export async function resetInstance(name?: string, force = false, lease?: number): Promise<VmInfo | undefined> {
  const attached = await attachExisting(await ownPathsFor(name), false, quiet)
  if (!attached) return undefined
  try {
    return await attached.connection.request<VmInfo>({ op: 'reset', force, lease })
  } finally {
    attached.connection.close()
  }
}

/** The running instance's services' own output (see RunningInstance.serviceLogs); null when it has none, undefined when nothing runs. */
export async function instanceServiceLogs(name?: string): Promise<{ source: string; text: string } | null | undefined> {
  const attached = await attachExisting(await ownPathsFor(name), false, quiet)
  if (!attached) return undefined
  try {
    return await attached.connection.request<{ source: string; text: string } | null>({ op: 'logs' }, 30_000)
  } finally {
    attached.connection.close()
  }
}

/** Stops the instance even while leases are held; true when something was running. */
export async function stopInstance(name?: string, log: (line: string) => void = quiet): Promise<boolean> {
  const attached = await attachExisting(await ownPathsFor(name), false, log)
  if (!attached) return false
  const pid = attached.hello.supervisorPid
  await attached.connection.request({ op: 'stop' }, 5000).catch(() => {})
  attached.connection.close()
  const deadline = Date.now() + 15_000
  while (isProcessAlive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20))
  if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL') // what its driver runs dies with it (parent-death signal, lifeline)
  return true
}

export function instanceFiles(name?: string): InstancePaths {
  return pathsFor(name)
}

async function servicesHealthy(paths: InstancePaths, vm: VmInfo): Promise<boolean> {
  const config = JSON.parse(await fs.readFile(paths.supervisorConfig, 'utf8')) as SupervisorConfig
  const manifest = await loadManifest(config.manifestPath)
  const checks = manifest.services
    .filter((s) => s.health && vm.urls[s.name])
    .map((s) => isHealthy({ name: s.name, url: vm.urls[s.name] + s.health!.path, status: s.health!.status ?? 200 }, 2000))
  return (await Promise.all(checks)).every(Boolean)
}
