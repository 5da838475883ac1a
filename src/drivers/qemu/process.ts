/**
 * One QEMU process: spawn (argv array, never a shell), QMP connection raced against an early
 * exit, host-port discovery, and a stop that escalates quit -> SIGTERM -> SIGKILL. Node's own
 * spawn rather than execa: this is the start-up path, and execa costs about 140 ms to load.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import fs from 'node:fs'
import fsp from 'node:fs/promises'
import { childEnvironment } from '../../child-env.js'
import { StackEmulatorError } from '../../errors.js'
import { QmpClient } from './qmp.js'
import { portHolder } from '../../port-holder.js'
import { parseUsernet, type HostForward } from './usernet.js'
import { pollUntil } from '../../poll.js'

export interface QemuExit {
  code: number | null
  signal: string | null
  stderr: string
}

export class QemuProcess {
  private stopping: Promise<void> | undefined

  private constructor(
    private readonly child: ChildProcess,
    readonly qmp: QmpClient,
    readonly exited: Promise<QemuExit>,
  ) {}

  get pid(): number {
    return this.child.pid ?? -1
  }

  get isAlive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null
  }

  static async launch(options: {
    binary: string
    argv: string[]
    qmpSocket: string
    consoleLog: string
    debug?: (line: string) => void
    /** A descriptor QEMU inherits as fd 3 (the incoming migration stream). */
    extraFd?: number
  }): Promise<QemuProcess> {
    await fsp.rm(options.qmpSocket, { force: true })
    const [file, args] = withParentDeathSignal(options.binary, options.argv)
    options.debug?.(`qemu: ${file} ${args.join(' ')}`)
    const child = spawn(file, args, {
      stdio: ['ignore', 'ignore', 'pipe', ...(options.extraFd === undefined ? [] : [options.extraFd])],
      env: childEnvironment(),
    })
    const exited = watchExit(child)
    try {
      const qmp = await Promise.race([
        connectWhenReady(options.qmpSocket, 15_000),
        exited.then(async (exit) => Promise.reject(await launchError(exit, options.consoleLog))),
      ])
      return new QemuProcess(child, qmp, exited)
    } catch (error) {
      child.kill('SIGKILL')
      await exited
      throw error
    }
  }

  /** The CPU time QEMU has used so far, in ms; undefined where /proc cannot say (not Linux). */
  async cpuTimeMs(): Promise<number | undefined> {
    try {
      const fields = (await fsp.readFile(`/proc/${this.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ')
      return (Number(fields[11]) + Number(fields[12])) * 10 // utime + stime, in ticks of 10 ms
    } catch {
      return undefined
    }
  }

  async hostForwards(): Promise<HostForward[]> {
    return parseUsernet(await this.qmp.hmp('info usernet'))
  }

  async status(): Promise<string> {
    const result = await this.qmp.execute<{ status: string }>('query-status')
    return result.status
  }

  /** QMP quit, then SIGTERM, then SIGKILL. Safe to call twice. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      if (!this.isAlive) return void (await this.exited)
      this.qmp.execute('quit', undefined, 1000).catch(() => {})
      if (await settlesWithin(this.exited, 2000)) return
      this.child.kill('SIGTERM')
      if (await settlesWithin(this.exited, 2000)) return
      this.child.kill('SIGKILL')
      await this.exited
    })().finally(() => this.qmp.close())
    return this.stopping
  }
}

/**
 * Ties QEMU's life to its parent's on Linux (util-linux setpriv --pdeathsig), so a supervisor
 * killed with SIGKILL cannot leak a VM.
 */
function withParentDeathSignal(binary: string, argv: string[]): [string, string[]] {
  if (process.platform === 'linux' && fs.existsSync('/usr/bin/setpriv')) {
    return ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', binary, ...argv]]
  }
  return [binary, argv]
}

/** Resolves when the child is gone, with the tail of its stderr; kills it if this process exits first. */
function watchExit(child: ChildProcess): Promise<QemuExit> {
  let stderr = ''
  child.stderr!.setEncoding('utf8')
  child.stderr!.on('data', (chunk: string) => (stderr = (stderr + chunk).slice(-64 * 1024)))
  // Where no parent-death signal ties QEMU to us, at least a normal exit takes it along.
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)
  return new Promise((resolve) => {
    const done = (code: number | null, signal: string | null) => {
      process.off('exit', killOnExit)
      resolve({ code, signal, stderr })
    }
    child.once('error', (error) => {
      stderr += String(error)
      done(null, null)
    })
    child.once('close', (code, signal) => done(code, signal))
  })
}

/** Until QEMU listens on its socket; at the deadline, the last connection's error. */
async function connectWhenReady(socket: string, timeoutMs: number): Promise<QmpClient> {
  let lastError: unknown
  return pollUntil(
    (remainingMs) =>
      QmpClient.connect(socket, Math.max(500, remainingMs)).catch((error: unknown) => {
        lastError = error
        return undefined
      }),
    {
      timeoutMs,
      intervalMs: 5,
      timeoutError: () => lastError as Error,
    },
  )
}

async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<false>((r) => (timer = setTimeout(() => r(false), ms)))
  const done = await Promise.race([promise.then(() => true), timeout])
  clearTimeout(timer)
  return done
}

async function launchError(exit: QemuExit, consoleLog: string): Promise<StackEmulatorError> {
  const busy = /Could not set up host forwarding rule '?tcp:127\.0\.0\.1:(\d+)/.exec(exit.stderr)
  if (busy) {
    const holder = await portHolder(Number(busy[1]))
    return new StackEmulatorError(`Host port ${busy[1]} is already in use${holder ? ` by ${holder}` : ''}`, {
      code: 'PORT_BUSY',
      fix: `Stop whatever listens on 127.0.0.1:${busy[1]} (ss -ltnp 'sport = :${busy[1]}'), or choose another port, or let QEMU pick one (port 0).`,
    })
  }
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`
  return new StackEmulatorError(`QEMU ${how} before it was ready`, {
    code: 'BOOT_FAILED',
    fix: `See its error below and the console log ${consoleLog}.`,
    details: tail(exit.stderr, 15),
  })
}

export function tail(text: string, lines: number): string {
  return text.trimEnd().split('\n').slice(-lines).join('\n')
}
