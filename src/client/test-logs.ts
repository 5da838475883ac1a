/**
 * The emulator's side of a failed test, for both integrations' reports: the services' output and
 * the supervisor's log lines from the test's time window, each cut to its last lines. Read only
 * once a test failed: a passing test costs nothing. Never throws: what could not be read is said.
 */
import fs from 'node:fs/promises'
import { instanceFiles, instanceServiceLogs } from './control.js'

/** What a report gets of each source at most: its last lines, within a size. */
export const TEST_LOG_LIMITS = { lines: 200, bytes: 64 * 1024 }
/** How much of the end of supervisor.log is searched for the window. */
const SUPERVISOR_TAIL_BYTES = 1024 * 1024
/** Longest wait for the services' output: within Vitest's default hook timeout (10 s), where it is read. */
const SERVICES_TIMEOUT_MS = 8000

export interface TestWindow {
  /** When the test started and ended, ms since the epoch (host clock). */
  startMs: number
  endMs: number
}

export async function logsForFailedTest(name: string, window: TestWindow): Promise<string> {
  const { lines, bytes } = TEST_LOG_LIMITS
  const span = `${new Date(window.startMs).toISOString()} to ${new Date(window.endMs).toISOString()}`
  const [services, supervisor] = await Promise.all([servicesSection(name, window), supervisorSection(name, window)])
  return `stack-emulator: instance "${name}", ${span}; of each source its last ${lines} lines (at most ${bytes / 1024} KiB)\n${services}${supervisor}`
}

async function servicesSection(name: string, window: TestWindow): Promise<string> {
  try {
    let timer: NodeJS.Timeout | undefined
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${SERVICES_TIMEOUT_MS / 1000} s`)), SERVICES_TIMEOUT_MS).unref()
    })
    const query = { sinceMs: window.startMs, untilMs: window.endMs, maxLines: TEST_LOG_LIMITS.lines }
    const logs = await Promise.race([instanceServiceLogs(name, query), late]).finally(() => clearTimeout(timer))
    if (logs === undefined) return section("the services' output", 'nothing runs for this instance now\n')
    if (logs === null) return section("the services' output", 'this driver does not read it\n')
    const note = logs.windowed === false ? ' (no timestamps there: its last lines, not this window alone)' : ''
    return section(`the services' output: ${logs.source}${note}`, logs.text)
  } catch (error) {
    return section("the services' output", `could not be read: ${firstLine(error)}\n`)
  }
}

async function supervisorSection(name: string, window: TestWindow): Promise<string> {
  const file = instanceFiles(name).supervisorLog
  try {
    return section(`the supervisor's log: ${file}`, supervisorLines(await readTail(file, SUPERVISOR_TAIL_BYTES), window))
  } catch (error) {
    return section(`the supervisor's log: ${file}`, `could not be read: ${firstLine(error)}\n`)
  }
}

/** supervisor.log's lines from the window: each starts with its ISO time; a line without one belongs to the line above. */
export function supervisorLines(text: string, window: TestWindow): string {
  let keep = false
  let out = ''
  for (const line of text.split('\n')) {
    const stamp = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z) /.exec(line)
    if (stamp) {
      const at = Date.parse(stamp[1]!)
      keep = at >= window.startMs && at <= window.endMs
    }
    if (keep && line) out += `${line}\n`
  }
  return out
}

function section(title: string, text: string): string {
  const { kept, cut } = lastOf(text, TEST_LOG_LIMITS.lines, TEST_LOG_LIMITS.bytes)
  const body = kept || '(nothing in this window)\n'
  return `--- ${title} ---\n${cut ? `(${cut} earlier lines left out)\n` : ''}${body}`
}

/** The last `lines` lines of text, within `bytes`, and how many lines were left out. */
export function lastOf(text: string, lines: number, bytes: number): { kept: string; cut: number } {
  const all = text.split('\n')
  if (all.at(-1) === '') all.pop()
  let size = 0
  let from = all.length
  while (from > 0 && all.length - from < lines && size + Buffer.byteLength(all[from - 1]!) + 1 <= bytes) size += Buffer.byteLength(all[--from]!) + 1
  // One line longer than the whole size: its end.
  if (from === all.length && from > 0)
    return {
      kept: `…${Buffer.from(all[from - 1]!)
        .subarray(-(bytes - 4))
        .toString('utf8')}\n`,
      cut: from - 1,
    }
  const kept = all.slice(from)
  return { kept: kept.length ? `${kept.join('\n')}\n` : '', cut: from }
}

async function readTail(file: string, maxBytes: number): Promise<string> {
  const handle = await fs.open(file, 'r')
  try {
    const { size } = await handle.stat()
    const start = Math.max(0, size - maxBytes)
    const buffer = Buffer.alloc(size - start)
    await handle.read(buffer, 0, buffer.length, start)
    const text = buffer.toString('utf8')
    return start > 0 ? text.slice(text.indexOf('\n') + 1) : text // a cut first line is dropped
  } finally {
    await handle.close()
  }
}

function firstLine(error: unknown): string {
  return (error instanceof Error ? error.message : String(error)).split('\n')[0]!
}
