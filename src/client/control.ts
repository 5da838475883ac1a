/** Operations on an instance without holding a lease: status, reset, stop (CLI and tests). */
import fs from 'node:fs/promises'
import { checkInstanceOwner, instancePaths, type InstancePaths } from '../instance/paths.js'
import { isProcessAlive } from '../instance/process-alive.js'
import { readSettings } from '../settings.js'
import { readJson } from '../files.js'
import { isHealthy } from '../stack/readiness.js'
import { driverFor } from '../drivers/registry.js'
import { healthTargets } from '../drivers/manifest.js'
import type { ServiceLogQuery, ServiceLogs } from '../drivers/types.js'
import type { HelloResult, LeaseInfo, StatusResult, InstanceInfo } from '../supervisor/protocol.js'
import type { InstanceState, SupervisorConfig } from '../supervisor/config.js'
import { attachExisting, clientInfo } from './attach.js'
import { instanceName } from './options.js'
import { SupervisorConnection } from './connection.js'
import { pollUntil } from '../poll.js'

export interface InstanceStatus extends StatusResult {
  /** Every service answered its health check just now. */
  healthy: boolean
}

function pathsFor(name?: string): InstancePaths {
  const settings = readSettings()
  return instancePaths(settings.stateRoot, instanceName(name, settings))
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
export async function resetInstance(name?: string, force = false, lease?: number): Promise<InstanceInfo | undefined> {
  const attached = await attachExisting(await ownPathsFor(name), false, quiet)
  if (!attached) return undefined
  try {
    return await attached.connection.request<InstanceInfo>({ op: 'reset', force, lease })
  } finally {
    attached.connection.close()
  }
}

/** The running instance's services' own output (see RunningInstance.serviceLogs); null when it has none, undefined when nothing runs. */
export async function instanceServiceLogs(name?: string, query?: ServiceLogQuery): Promise<ServiceLogs | null | undefined> {
  const attached = await attachExisting(await ownPathsFor(name), false, quiet)
  if (!attached) return undefined
  try {
    return await attached.connection.request<ServiceLogs | null>({ op: 'logs', query }, 30_000)
  } finally {
    attached.connection.close()
  }
}

/** True while a supervisor answers for the instance. */
export async function instanceRunning(name?: string): Promise<boolean> {
  const attached = await attachExisting(await ownPathsFor(name), false, quiet)
  attached?.connection.close()
  return attached !== undefined
}

/** Stops the instance even while leases are held; true when something was running. */
export async function stopInstance(name?: string, log: (line: string) => void = quiet): Promise<boolean> {
  const attached = await attachExisting(await ownPathsFor(name), false, log)
  if (!attached) return false
  const pid = attached.hello.supervisorPid
  await attached.connection.request({ op: 'stop' }, 5000).catch(() => {})
  attached.connection.close()
  await pollUntil(() => !isProcessAlive(pid), { timeoutMs: 15_000, intervalMs: 20 })
  if (isProcessAlive(pid)) process.kill(pid, 'SIGKILL') // what its driver runs dies with it (parent-death signal, lifeline)
  return true
}

export function instanceFiles(name?: string): InstancePaths {
  return pathsFor(name)
}

async function servicesHealthy(paths: InstancePaths, vm: InstanceInfo): Promise<boolean> {
  const config = JSON.parse(await fs.readFile(paths.supervisorConfig, 'utf8')) as SupervisorConfig
  const manifest = await driverFor(config.driver.kind).load(config.manifestPath)
  const checks = healthTargets(manifest.services, vm.urls).map((target) => isHealthy(target, 2000))
  return (await Promise.all(checks)).every(Boolean)
}

/** One instance as `stack-emulator ps` shows it. */
export interface InstanceListing {
  name: string
  /**
   * The supervisor's own state while one answers; `stopped` when none serves the instance;
   * `not answering` when one owns it but said nothing within seconds; `another user's`.
   */
  state: StatusResult['state'] | 'stopped' | 'not answering' | "another user's"
  driver: string | undefined
  image: string | undefined
  urls: Record<string, string>
  leases: LeaseInfo[]
  /** The supervisor's start (state.json), while it runs. */
  startedAt: string | undefined
  pid: number | undefined
  accel: string | undefined
  origin: InstanceInfo['origin'] | undefined
}

/**
 * Every instance under the state root, by its folder, each asked over its socket. Only looks:
 * unlike status, it neither cleans a dead supervisor's files nor stops one that does not answer.
 */
export async function listInstances(stateRoot = readSettings().stateRoot): Promise<InstanceListing[]> {
  const entries = await fs.readdir(stateRoot, { withFileTypes: true }).catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return []
    throw error
  })
  const names = entries
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .filter(isInstanceName)
    .sort()
  return Promise.all(names.map((name) => listing(instancePaths(stateRoot, name))))
}

const isInstanceName = (name: string) => {
  try {
    return Boolean(instancePaths('/', name))
  } catch {
    return false
  }
}

async function listing(paths: InstancePaths): Promise<InstanceListing> {
  const [stat, state, config] = await Promise.all([
    fs.lstat(paths.dir),
    readJson<InstanceState>(paths.state),
    readJson<SupervisorConfig>(paths.supervisorConfig),
  ])
  const base: InstanceListing = {
    name: paths.name,
    state: 'stopped',
    driver: config?.driver?.kind,
    image: undefined,
    urls: {},
    leases: [],
    startedAt: undefined,
    pid: undefined,
    accel: undefined,
    origin: undefined,
  }
  const uid = process.getuid?.()
  if (uid !== undefined && stat.uid !== uid) return { ...base, state: "another user's" }
  const status = await askStatus(paths)
  if (status) {
    return {
      ...base,
      state: status.state,
      driver: status.driver.kind,
      image: status.imageName,
      urls: status.vm?.urls ?? {},
      leases: status.leases,
      startedAt: state?.startedAt,
      pid: status.supervisorPid,
      accel: status.vm?.accel,
      origin: status.vm?.origin,
    }
  }
  const image = config ? (await readJson<{ name?: string }>(config.manifestPath))?.name : undefined
  if (state && isProcessAlive(state.pid)) return { ...base, state: 'not answering', image: state.imageName, startedAt: state.startedAt, pid: state.pid }
  return { ...base, image }
}

/** The supervisor's status over its socket, without a lease; undefined when it does not answer. */
async function askStatus(paths: InstancePaths): Promise<StatusResult | undefined> {
  let connection: SupervisorConnection | undefined
  try {
    connection = await SupervisorConnection.connect(paths.socket, 1000)
    await connection.request<HelloResult>({ op: 'hello', lease: false, client: clientInfo() }, 5000)
    return await connection.request<StatusResult>({ op: 'status' }, 5000)
  } catch {
    return undefined
  } finally {
    connection?.close()
  }
}

/** `stop --all`: stops every running instance of this user under the state root; the names it stopped. */
export async function stopAllInstances(log: (line: string) => void = quiet): Promise<string[]> {
  const running = (await listInstances()).filter((i) => i.state !== 'stopped' && i.state !== "another user's")
  const stopped = await Promise.all(running.map(async (i) => ((await stopInstance(i.name, log)) ? [i.name] : [])))
  return stopped.flat()
}
