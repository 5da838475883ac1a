/**
 * The services' output (RunningInstance.serviceLogs) from the two sources of Stack Auth's image:
 * `stack.log` in the VM folder, which a guest booted with the share tees its services' output
 * into (no timestamps), and the service unit's journal, read with journalctl through the guest
 * agent (a restored guest's services started without the share). A time window or a follow from
 * a restored guest goes to the journal: journalctl's own `--since` and cursor, its stamps read on
 * the host's clock (the guest's is set from it after each restore, and from the RTC at a boot).
 */
import { sha256 } from '../../digest.js'
import { StackEmulatorError } from '../../errors.js'
import type { ServiceLogQuery, ServiceLogs } from '../types.js'

export interface LogSources {
  /** stack.log through the share, where this guest tees into it (a cold boot). */
  file?: { path: string; read(): Promise<Buffer | undefined> }
  /** The unit's journal, where the image has a unit and an agent; `vm` names the guest that answers. */
  journal?: { unit: string; vm: string; run(argv: string[]): Promise<string> }
}

/** Where an answer stopped, handed out as an opaque cursor. */
type Position = { k: 'file'; offset: number; mark: string; at: number } | { k: 'journal'; vm: string; cursor: string; usec: number }

/** How far the guest's clock may stand from the host's: a boot sets it from the RTC, to the second. */
export const CLOCK_SLACK_MS = 1000
/** The last lines a plain read shows of the journal. */
const DEFAULT_JOURNAL_LINES = 2000

export async function readServiceLogs(sources: LogSources, query: ServiceLogQuery = {}): Promise<ServiceLogs | undefined> {
  const position = query.cursor === undefined ? undefined : decodeCursor(query.cursor)
  const windowed = query.sinceMs !== undefined || query.untilMs !== undefined
  if (sources.file && (position ? position.k === 'file' : !windowed || !sources.journal)) {
    const content = await sources.file.read()
    if (content?.length || !sources.journal) return fromFile(sources.file.path, content ?? Buffer.alloc(0), query, position, windowed)
  }
  if (sources.journal) return fromJournal(sources.journal, query, position)
  return undefined
}

function fromFile(source: string, content: Buffer, query: ServiceLogQuery, position: Position | undefined, windowed: boolean): ServiceLogs {
  // The services' restart starts the file again: then what precedes the cursor's offset differs.
  const start = position?.k === 'file' && position.offset <= content.length && markAt(content, position.offset) === position.mark ? position.offset : 0
  const end = Math.max(start, content.lastIndexOf(0x0a) + 1) // whole lines only: the rest comes with the next read
  const text = tailLines(content.subarray(start, end).toString('utf8'), query.maxLines)
  const cursor = encodeCursor({ k: 'file', offset: end, mark: markAt(content, end), at: Date.now() })
  return { source, text, cursor, ...(windowed ? { windowed: false } : {}) }
}

async function fromJournal(journal: NonNullable<LogSources['journal']>, query: ServiceLogQuery, position: Position | undefined): Promise<ServiceLogs> {
  const read = (select: string[]) => journal.run(journalArgv(journal.unit, select))
  let output: string | undefined
  // After an answer from this same guest: its cursor. After one from another guest (a reset
  // swapped it) or from stack.log: from that time on, strictly. Else the window, or the last lines.
  if (position?.k === 'journal' && position.vm === journal.vm && position.cursor) {
    output = await read([`--after-cursor=${position.cursor}`]).catch(() => undefined) // a cursor the journal no longer knows
  }
  const afterUsec = position?.k === 'journal' ? position.usec : position ? position.at * 1000 : undefined
  let from: { usec: number; strict: boolean } | undefined
  if (output === undefined) {
    if (afterUsec !== undefined) from = { usec: afterUsec, strict: true }
    else if (query.sinceMs !== undefined) from = { usec: (query.sinceMs - CLOCK_SLACK_MS) * 1000, strict: false }
    output = await read(from ? [`--since=@${Math.max(0, Math.floor(from.usec / 1e6))}`] : ['-n', String(query.maxLines ?? DEFAULT_JOURNAL_LINES)])
  }
  const untilUsec = query.untilMs === undefined ? undefined : (query.untilMs + CLOCK_SLACK_MS) * 1000
  const parsed = parseJournal(output)
  const kept = parsed.entries.filter(
    (e) => (!from || e.usec > from.usec || (!from.strict && e.usec === from.usec)) && (untilUsec === undefined || e.usec <= untilUsec),
  )
  const last = kept.at(-1)
  // journalctl's cursor is its last entry's: it serves only when every entry it printed was kept.
  const next: Position = last
    ? { k: 'journal', vm: journal.vm, cursor: parsed.cursor && kept.length === parsed.entries.length ? parsed.cursor : '', usec: last.usec }
    : position?.k === 'journal' && position.vm === journal.vm
      ? position
      : { k: 'journal', vm: journal.vm, cursor: '', usec: afterUsec ?? from?.usec ?? 0 }
  const text = tailLines(kept.map((e) => e.text).join(''), query.maxLines)
  return { source: `journalctl -u ${journal.unit} (in the guest)`, text, cursor: encodeCursor(next) }
}

export function journalArgv(unit: string, select: string[]): string[] {
  return ['journalctl', '-u', unit, '--no-pager', '--quiet', '--output=short-unix', '--show-cursor', ...select]
}

export interface JournalEntry {
  /** Microseconds since the epoch, on the guest's clock. */
  usec: number
  /** The entry as shown: its time (ISO, UTC), what logged it and the message, each line ending in \n. */
  text: string
}

/**
 * Reads journalctl's `short-unix` output: `<seconds>.<micros> <host> <identifier>[<pid>]: <message>`
 * per entry (a message's further lines indented under it), then `-- cursor: <cursor>`.
 */
export function parseJournal(output: string): { entries: JournalEntry[]; cursor?: string } {
  const entries: JournalEntry[] = []
  let cursor: string | undefined
  for (const line of output.split('\n')) {
    const stamped = /^(\d+)\.(\d{6}) \S+ (.*)$/.exec(line)
    if (stamped) {
      const usec = Number(stamped[1]) * 1e6 + Number(stamped[2])
      entries.push({ usec, text: `${new Date(Math.floor(usec / 1000)).toISOString()} ${stamped[3]}\n` })
    } else if (line.startsWith('-- cursor: ')) {
      cursor = line.slice('-- cursor: '.length).trim()
    } else if (line && entries.length) {
      entries.at(-1)!.text += `${line}\n`
    }
  }
  return { entries, cursor }
}

/** A digest of the bytes just before `offset`. */
function markAt(content: Buffer, offset: number): string {
  return sha256(content.subarray(Math.max(0, offset - 256), offset)).slice(0, 16)
}

function tailLines(text: string, maxLines: number | undefined): string {
  if (maxLines === undefined) return text
  const lines = text.split('\n')
  if (lines.at(-1) === '') lines.pop()
  return lines.length <= maxLines ? text : `${lines.slice(-maxLines).join('\n')}\n`
}

function encodeCursor(position: Position): string {
  return Buffer.from(JSON.stringify(position)).toString('base64url')
}

function decodeCursor(cursor: string): Position {
  let p: Partial<Record<string, unknown>> | undefined
  try {
    p = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8')) as typeof p
  } catch {
    p = undefined
  }
  const number = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0
  if (p?.k === 'file' && number(p.offset) && typeof p.mark === 'string' && number(p.at)) return p as Position
  if (p?.k === 'journal' && typeof p.vm === 'string' && typeof p.cursor === 'string' && number(p.usec)) return p as Position
  throw new StackEmulatorError('The logs cursor is not one an earlier answer gave', {
    code: 'BAD_OPTION',
    fix: 'Pass back the `cursor` of the last answer, or none.',
  })
}
