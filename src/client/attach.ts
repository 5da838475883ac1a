/**
 * Boot-or-reuse: under the instance lock, attach to a live supervisor or start one. Stale
 * state (dead pid, no answer, garbage) is cleaned with one line saying what was found.
 */
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import path from 'node:path'
import { spawn } from 'node:child_process'
import { StackEmulatorError } from '../errors.js'
import type { InstancePaths } from '../instance/paths.js'
import { isProcessAlive } from '../instance/process-alive.js'
import { packageRoot } from '../package-root.js'
import type { InstanceState, SupervisorConfig } from '../supervisor/config.js'
import type { ClientInfo, HelloResult } from '../supervisor/protocol.js'
import { SupervisorConnection } from './connection.js'

export interface Attached {
  connection: SupervisorConnection
  hello: HelloResult
}

export function clientInfo(): ClientInfo {
  return { pid: process.pid, command: process.argv.map((a) => path.basename(a)).join(' ').slice(0, 200) }
}

/** Connects to the running supervisor, or cleans its stale traces and returns undefined. */
export async function attachExisting(paths: InstancePaths, lease: boolean, log: (line: string) => void): Promise<Attached | undefined> {
  let text: string
  try {
    text = await fsp.readFile(paths.state, 'utf8')
  } catch {
    return undefined
  }
  let state: InstanceState
  try {
    state = JSON.parse(text) as InstanceState
    if (!Number.isInteger(state.pid)) throw new Error('no pid')
  } catch {
    log(`Found an unreadable state file ${paths.state}; removing it.`)
    await cleanStale(paths)
    return undefined
  }
  if (!isProcessAlive(state.pid)) {
    log(`Found the state of a supervisor that is gone (pid ${state.pid}); cleaning up.`)
    await cleanStale(paths)
    return undefined
  }
  let connection: SupervisorConnection | undefined
  try {
    connection = await connectPatiently(paths.socket)
    const hello = await connection.request<HelloResult>({ op: 'hello', lease, client: clientInfo() }, 5000)
    return { connection, hello }
  } catch (error) {
    connection?.close()
    if (error instanceof StackEmulatorError && error.code === 'SUPERVISOR') throw error // shutting down: retry
    log(`The supervisor (pid ${state.pid}) does not answer; stopping it and starting afresh.`)
    if (isOurSupervisor(state.pid, paths)) process.kill(state.pid, 'SIGKILL')
    await cleanStale(paths)
    return undefined
  }
}

export async function spawnSupervisor(config: SupervisorConfig, lease: boolean): Promise<Attached> {
  const { paths } = config
  await fsp.writeFile(paths.supervisorConfig, JSON.stringify(config, null, 2), { mode: 0o600 })
  const logFd = fs.openSync(paths.supervisorLog, 'a', 0o600)
  // Node's own spawn: the supervisor must outlive us with the log file as its stdio, which needs
  // a raw descriptor and no piping through this process.
  const child = spawn(process.execPath, ['--enable-source-maps', path.join(packageRoot, 'dist/supervisor/main.js'), paths.supervisorConfig], {
    detached: true,
    stdio: ['ignore', logFd, logFd],
    env: { ...process.env, NODE_OPTIONS: '' },
  })
  child.unref()
  fs.closeSync(logFd)
  let exited = false
  child.on('exit', () => (exited = true))
  child.on('error', () => (exited = true))
  const deadline = Date.now() + 15_000
  for (;;) {
    let connection: SupervisorConnection | undefined
    try {
      connection = await SupervisorConnection.connect(paths.socket, 1000)
      const hello = await connection.request<HelloResult>({ op: 'hello', lease, client: clientInfo() }, 5000)
      return { connection, hello }
    } catch (error) {
      connection?.close() // an unanswered hello must not stay open as a lease
      if (exited || Date.now() > deadline) {
        const logTail = (await fsp.readFile(paths.supervisorLog, 'utf8').catch(() => '')).trimEnd().split('\n').slice(-10).join('\n')
        throw new StackEmulatorError('The emulator supervisor did not start', {
          code: 'SUPERVISOR', fix: `See ${paths.supervisorLog}.`, details: logTail, cause: error,
        })
      }
      await new Promise((r) => setTimeout(r, 25))
    }
  }
}

/** A supervisor writes its state just before it listens: give a live one a moment to start. */
async function connectPatiently(socket: string): Promise<SupervisorConnection> {
  const deadline = Date.now() + 3000
  for (;;) {
    try {
      return await SupervisorConnection.connect(socket)
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code
      if ((code !== 'ENOENT' && code !== 'ECONNREFUSED') || Date.now() > deadline) throw error
      await new Promise((r) => setTimeout(r, 25))
    }
  }
}

async function cleanStale(paths: InstancePaths): Promise<void> {
  await fsp.rm(paths.state, { force: true })
  await fsp.rm(paths.socket, { force: true })
}

/** Guards against killing an unrelated process that reused the pid. */
function isOurSupervisor(pid: number, paths: InstancePaths): boolean {
  try {
    return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(paths.supervisorConfig)
  } catch {
    return false
  }
}
