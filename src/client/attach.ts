/**
 * Boot-or-reuse, under the instance lock: attach to the live supervisor or start one. Who owns
 * the instance is decided by the ownership lock (instance/lock.ts), never by files: a deleted
 * or garbled state file cannot make us start a second VM, and we remove stale files only when
 * no supervisor owns the instance.
 */
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { childEnvironment } from '../child-env.js'
import { StackEmulatorError } from '../errors.js'
import { isOwned } from '../instance/lock.js'
import type { InstancePaths } from '../instance/paths.js'
import { isProcessAlive, processStartTime } from '../instance/process-alive.js'
import { packageRoot } from '../package-root.js'
import { ALREADY_OWNED_EXIT_CODE, type InstanceState, type SupervisorConfig } from '../supervisor/config.js'
import type { ClientInfo, HelloResult } from '../supervisor/protocol.js'
import { SupervisorConnection } from './connection.js'
import { pollUntil } from '../poll.js'

export interface Attached {
  connection: SupervisorConnection
  hello: HelloResult
  /** True when this client started the supervisor (and so the VM). */
  spawned?: boolean
}

/** How long an owned but silent supervisor gets to answer (it re-creates a deleted socket within a second). */
const UNREACHABLE_GRACE_MS = 10_000
const SPAWN_TIMEOUT_MS = 15_000

export function clientInfo(): ClientInfo {
  return {
    pid: process.pid,
    command: process.argv
      .map((a) => path.basename(a))
      .join(' ')
      .slice(0, 200),
  }
}

/** Connects to the running supervisor; undefined (after cleaning stale files) when none owns the instance. */
export async function attachExisting(paths: InstancePaths, lease: boolean, log: (line: string) => void): Promise<Attached | undefined> {
  const attached = await tryHello(paths, lease)
  if (attached) return attached
  const state = await readState(paths)
  const statePid = typeof state === 'object' ? state.pid : undefined
  if (!(await isOwned(paths, statePid))) {
    if (state === 'garbled') log(`Found an unreadable state file ${paths.state}; removing it.`)
    else if (state) log(`Found the state of a supervisor that is gone (pid ${state.pid}); cleaning up.`)
    await cleanStale(paths)
    return undefined
  }
  // Owned but not answering: starting, repairing its socket, or shutting down. Give it a moment.
  const outcome = await pollUntil(async () => (await tryHello(paths, lease)) ?? ((await isOwned(paths, statePid)) ? undefined : 'gone'), {
    timeoutMs: UNREACHABLE_GRACE_MS,
    intervalMs: 50,
    waitFirst: true,
  })
  if (outcome === 'gone') {
    await cleanStale(paths)
    return undefined
  }
  if (outcome) return outcome
  const pid = supervisorPid(paths, statePid)
  log(`The supervisor of instance "${paths.name}"${pid ? ` (pid ${pid})` : ''} does not answer; stopping it and starting afresh.`)
  if (pid) process.kill(pid, 'SIGKILL') // what its driver runs dies with it (parent-death signal, lifeline)
  await pollUntil(async () => !(await isOwned(paths, statePid)), { timeoutMs: 5_000, intervalMs: 20 })
  await cleanStale(paths)
  return undefined
}

async function tryHello(paths: InstancePaths, lease: boolean): Promise<Attached | undefined> {
  let connection: SupervisorConnection | undefined
  try {
    connection = await SupervisorConnection.connect(paths.socket, 1000)
    const hello = await connection.request<HelloResult>({ op: 'hello', lease, client: clientInfo() }, 5000)
    return { connection, hello }
  } catch (error) {
    connection?.close() // an unanswered hello must not stay open as a lease
    if (error instanceof StackEmulatorError && error.code === 'SHUTTING_DOWN') throw error // the caller retries
    return undefined
  }
}

export async function spawnSupervisor(config: SupervisorConfig, lease: boolean): Promise<Attached> {
  const { paths } = config
  const spawner = { pid: process.pid, startTime: processStartTime(process.pid) }
  await fsp.writeFile(paths.supervisorConfig, JSON.stringify({ ...config, spawner }, null, 2), { mode: 0o600 })
  const logFd = fs.openSync(paths.supervisorLog, 'a', 0o600)
  // Node's own spawn: the supervisor must outlive us with the log file as its stdio, which needs
  // a raw descriptor and no piping through this process.
  const child = spawn(process.execPath, [path.join(packageRoot, 'dist/supervisor/main.js'), paths.supervisorConfig], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: childEnvironment(), // no NODE_OPTIONS (a runner's loaders, --inspect), no tokens
  })
  child.unref()
  fs.closeSync(logFd)
  // A supervisor that found the instance owned (an orphan of a killed client got there first)
  // exits with ALREADY_OWNED_EXIT_CODE: then the owner answers on the same socket.
  let failed = false
  child.on('exit', (code) => (failed = code !== ALREADY_OWNED_EXIT_CODE))
  child.on('error', () => (failed = true))
  const notStarted = async () => {
    const logTail = (await fsp.readFile(paths.supervisorLog, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-10).join('\n')
    return new StackEmulatorError('The emulator supervisor did not start', { code: 'SUPERVISOR', fix: `See ${paths.supervisorLog}.`, details: logTail })
  }
  const attached = await pollUntil(
    async () => {
      const attached = await tryHello(paths, lease)
      if (!attached && failed) throw await notStarted()
      return attached
    },
    { timeoutMs: SPAWN_TIMEOUT_MS, intervalMs: 20, timeoutError: notStarted },
  )
  return { ...attached, spawned: true }
}

async function readState(paths: InstancePaths): Promise<InstanceState | 'garbled' | undefined> {
  let text: string
  try {
    text = await fsp.readFile(paths.state, 'utf8')
  } catch {
    return undefined
  }
  try {
    const state = JSON.parse(text) as InstanceState
    return Number.isInteger(state?.pid) && state.pid > 0 ? state : 'garbled'
  } catch {
    return 'garbled'
  }
}

/** Called only when no supervisor owns the instance: these files are nobody's. */
async function cleanStale(paths: InstancePaths): Promise<void> {
  for (const file of [paths.state, paths.socket]) {
    // ENOTDIR: the name is a file of the state root (the generated config), no instance at all.
    await fsp.rm(file, { force: true }).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOTDIR') throw error
    })
  }
}

/**
 * The pid of the instance's supervisor: from its state file, or (when that is gone) the process
 * whose command line names this instance's supervisor.json. Never an unrelated process.
 */
function supervisorPid(paths: InstancePaths, fromState: number | undefined): number | undefined {
  const isOurs = (pid: number) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(paths.supervisorConfig)
    } catch {
      return false
    }
  }
  if (fromState && isProcessAlive(fromState) && isOurs(fromState)) return fromState
  try {
    return fs
      .readdirSync('/proc')
      .filter((e) => /^\d+$/.test(e))
      .map(Number)
      .find((pid) => pid !== process.pid && isOurs(pid))
  } catch {
    return undefined
  }
}
