/**
 * `stack-emulator logs`: the serial console and the services' output, or the supervisor's log.
 * `--since` keeps the lines from a time on (the services' output from their journal, the
 * supervisor's by its own stamps; the console has none); `--follow` then prints new lines as they
 * come, until Ctrl-C or the instance stops.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { instanceFiles, instanceRunning, instanceServiceLogs } from '../client/control.js'
import { supervisorLines } from '../client/test-logs.js'
import type { ServiceLogs } from '../drivers/types.js'
import { log } from '../log.js'
import { pollUntil } from '../poll.js'
import { usageError, type ParsedArgs } from './args.js'
import { print } from './output.js'

const NOT_RUNNING = 3
/** How often --follow asks for new lines. */
const FOLLOW_INTERVAL_MS = 1000

export async function logs(args: ParsedArgs): Promise<number> {
  if (args.follow && args.json) throw usageError('--follow prints lines as they come and --json one object: give one of them', 'logs')
  const sinceMs = args.since === undefined ? undefined : parseSince(args.since, Date.now())
  return args.supervisor ? supervisorLog(args, sinceMs) : consoleAndServices(args, sinceMs)
}

/** The serial console (not with --since: it has no timestamps), then, while it runs, the services' own output. */
async function consoleAndServices(args: ParsedArgs, sinceMs: number | undefined): Promise<number> {
  const paths = instanceFiles(args.options.name)
  const startMs = Date.now()
  const file = sinceMs === undefined ? await currentConsoleLog(paths.dir) : undefined
  const text = file === undefined ? undefined : await fs.readFile(file, 'utf8').catch(() => undefined)
  const services = await instanceServiceLogs(args.options.name, sinceMs === undefined ? undefined : { sinceMs }).catch((error: Error) => {
    log(`The services' output could not be read: ${error.message.split('\n')[0]}`)
    return undefined
  })
  if (args.json) print({ file: file ?? null, text: text ?? null, services: services ?? null })
  else if (text === undefined && services === null) {
    // It runs, under a driver that keeps neither (a container, an external emulator).
    process.stderr.write(
      `stack-emulator: instance "${paths.name}" has no console or services' output to read here; its supervisor's log: stack-emulator logs --supervisor --name ${paths.name}\n`,
    )
  } else if (text === undefined && !services) {
    process.stderr.write(
      file === undefined
        ? `stack-emulator: instance "${paths.name}" is not running (the services' output is read from its VM)\n`
        : `stack-emulator: no log at ${file} (has instance "${paths.name}" ever run?)\n`,
    )
  } else {
    if (text !== undefined) process.stdout.write(text)
    if (services)
      process.stdout.write(
        `--- the services' output: ${services.source}${services.windowed === false ? ' (it has no timestamps: all of it)' : ''} ---\n${services.text}`,
      )
  }
  if (text === undefined && services === undefined) return NOT_RUNNING
  return args.follow && services !== null ? followServices(paths.name, services, startMs) : 0
}

/** New lines of the services' output, each poll from the cursor of the answer before. */
async function followServices(name: string, first: ServiceLogs | undefined, startMs: number): Promise<number> {
  let cursor = first?.cursor
  let failing = false
  let stopped = false
  await untilInterrupted(async () => {
    const logs = await instanceServiceLogs(name, cursor === undefined ? { sinceMs: startMs } : { cursor }).catch((error: Error) => {
      if (!failing) log(`Reading the services' output failed (${error.message.split('\n')[0]}); trying again`)
      failing = true
      return false as const
    })
    if (logs === false) return false
    failing = false
    if (logs === null) return true // a driver that has none
    if (logs === undefined) {
      stopped = true
      return true
    }
    process.stdout.write(logs.text)
    cursor = logs.cursor ?? cursor
    return false
  })
  if (stopped) log(`Instance "${name}" stopped.`)
  return 0
}

async function supervisorLog(args: ParsedArgs, sinceMs: number | undefined): Promise<number> {
  const paths = instanceFiles(args.options.name)
  const file = paths.supervisorLog
  const content = await fs.readFile(file).catch(() => undefined)
  const text = content && (sinceMs === undefined ? content.toString('utf8') : supervisorLines(content.toString('utf8'), { startMs: sinceMs, endMs: Infinity }))
  if (args.json) print({ file, text: text ?? null, services: null })
  else if (text === undefined) process.stderr.write(`stack-emulator: no log at ${file} (has instance "${paths.name}" ever run?)\n`)
  else process.stdout.write(text)
  if (text === undefined) return NOT_RUNNING
  if (!args.follow) return 0
  // Whole lines past what was read, while the supervisor runs (its last lines are read after it stopped).
  let offset = content!.length
  let running = true
  await untilInterrupted(async () => {
    running = await instanceRunning(paths.name)
    const now = await fs.readFile(file).catch(() => Buffer.alloc(0))
    if (now.length < offset) offset = 0 // a new supervisor started the file again
    const end = now.lastIndexOf(0x0a) + 1
    if (end > offset) process.stdout.write(now.subarray(offset, end))
    offset = Math.max(offset, end)
    return !running
  })
  if (!running) log(`Instance "${paths.name}" stopped.`)
  return 0
}

/** Polls `check` until it returns true, Ctrl-C (or SIGTERM), or a reader that went away (`logs -f | head`). */
async function untilInterrupted(check: () => Promise<boolean>): Promise<void> {
  const stop = new AbortController()
  const onSignal = () => stop.abort()
  process.once('SIGINT', onSignal) // once: a second Ctrl-C ends the process outright
  process.once('SIGTERM', onSignal)
  try {
    await pollUntil(async () => process.stdout.destroyed || (await check()), {
      timeoutMs: Infinity,
      intervalMs: FOLLOW_INTERVAL_MS,
      signal: stop.signal,
    })
  } catch (error) {
    if (!stop.signal.aborted) throw error
  } finally {
    process.off('SIGINT', onSignal)
    process.off('SIGTERM', onSignal)
  }
}

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

/** --since: a duration ago (`90s`, `1h30m`), an ISO time, `HH:MM[:SS]` today, or `@<epoch seconds>`; ms since the epoch. */
export function parseSince(value: string, nowMs: number): number {
  const v = value.trim()
  if (/^(\d+(\.\d+)?(ms|s|m|h|d))+$/.test(v)) {
    let ago = 0
    for (const [, amount, unit] of v.matchAll(/(\d+(?:\.\d+)?)(ms|s|m|h|d)/g)) ago += Number(amount) * UNIT_MS[unit!]!
    return Math.round(nowMs - ago)
  }
  const epoch = /^@(\d+(\.\d+)?)$/.exec(v)
  if (epoch) return Math.round(Number(epoch[1]) * 1000)
  const clock = /^(\d{1,2}):(\d\d)(?::(\d\d))?$/.exec(v)
  if (clock && Number(clock[1]) < 24 && Number(clock[2]) < 60 && Number(clock[3] ?? 0) < 60) {
    const today = new Date(nowMs)
    return today.setHours(Number(clock[1]), Number(clock[2]), Number(clock[3] ?? 0), 0)
  }
  const parsed = /^\d{4}-\d\d-\d\d/.test(v) ? Date.parse(v) : NaN
  if (Number.isFinite(parsed)) return parsed
  throw usageError(`--since expects a duration ago (90s, 10m, 2h, 1d) or a time (2026-04-01T12:00:00Z, 12:00, @<epoch seconds>); got "${value}"`, 'logs')
}

/** After a reset by warm spare the VM writes console-spare.log: show whichever was written last. */
async function currentConsoleLog(dir: string): Promise<string> {
  const files = ['console.log', 'console-spare.log'].map((name) => path.join(dir, name))
  const stats = await Promise.all(
    files.map((file) =>
      fs.stat(file).then(
        (s) => s.mtimeMs,
        () => -1,
      ),
    ),
  )
  return files[stats[1]! > stats[0]! ? 1 : 0]!
}
