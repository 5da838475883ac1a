/**
 * The services' output as the QEMU driver reads it (drivers/qemu/service-logs.ts), against a
 * stand-in journalctl that answers as systemd 252's does (short-unix, --show-cursor), and a
 * stand-in stack.log; the bounds and windows of a failed test's report (client/test-logs.ts).
 */
import { describe, expect, it } from 'vitest'
import { CLOCK_SLACK_MS, parseJournal, readServiceLogs, type LogSources } from '../../src/drivers/qemu/service-logs.js'
import { lastOf, supervisorLines } from '../../src/client/test-logs.js'

const T0 = Date.parse('2026-04-01T12:00:00Z')
interface Entry {
  usec: number
  message: string
  cursor: string
}
const entry = (ms: number, message: string): Entry => ({ usec: ms * 1000 + 123, message, cursor: `s=1;i=${ms}` })

/** journalctl over `entries`: --since=@<s>, --after-cursor=<c>, -n <n>, as the real one selects; each call's argv recorded. */
function journal(entries: Entry[], vm = '100') {
  const calls: string[][] = []
  const source: NonNullable<LogSources['journal']> = {
    unit: 'stack.service',
    vm,
    run: async (argv) => {
      calls.push(argv)
      expect(argv.slice(0, 7)).toEqual(['journalctl', '-u', 'stack.service', '--no-pager', '--quiet', '--output=short-unix', '--show-cursor'])
      let shown = entries
      for (let i = 7; i < argv.length; i++) {
        const arg = argv[i]!
        if (arg.startsWith('--since=@')) shown = shown.filter((e) => e.usec >= Number(arg.slice(9)) * 1e6)
        else if (arg.startsWith('--after-cursor=')) {
          const at = shown.findIndex((e) => e.cursor === arg.slice(15))
          if (at < 0) throw new Error('journalctl failed in the guest (exit code 1): Failed to seek to cursor: Invalid argument')
          shown = shown.slice(at + 1)
        } else if (arg === '-n') shown = shown.slice(-Number(argv[++i]))
        else throw new Error(`unexpected ${arg}`)
      }
      const lines = shown.map(
        (e) => `${Math.floor(e.usec / 1e6)}.${String(e.usec % 1e6).padStart(6, '0')} stack-emulator run-stack-container[219]: ${e.message}\n`,
      )
      return lines.join('') + (shown.length ? `-- cursor: ${shown.at(-1)!.cursor}\n` : '')
    },
  }
  return { source, calls }
}

describe('the journal through the guest agent', () => {
  const entries = [entry(T0 - 5000, 'before'), entry(T0 + 100, '[API REQ] GET /a'), entry(T0 + 200, '[    RES] GET /a: 200'), entry(T0 + 9000, 'after')]

  it('parses short-unix: ISO time, what logged it, the message; a further line stays with its entry; the cursor', () => {
    const parsed = parseJournal('1775044800.100123 host systemd[1]: Started x\n  continued\n1775044801.000001 host a[2]: b\n-- cursor: s=abc\n')
    expect(parsed).toEqual({
      cursor: 's=abc',
      entries: [
        { usec: 1775044800100123, text: '2026-04-01T12:00:00.100Z systemd[1]: Started x\n  continued\n' },
        { usec: 1775044801000001, text: '2026-04-01T12:00:01.000Z a[2]: b\n' },
      ],
    })
  })

  it('a window: journalctl --since a second before it, then only the entries inside it (within the clock slack)', async () => {
    const { source, calls } = journal(entries)
    const logs = await readServiceLogs({ journal: source }, { sinceMs: T0, untilMs: T0 + 1000 })
    expect(calls).toEqual([[...calls[0]!.slice(0, 7), `--since=@${Math.floor((T0 - CLOCK_SLACK_MS) / 1000)}`]])
    expect(logs!.text).toBe(
      '2026-04-01T12:00:00.100Z run-stack-container[219]: [API REQ] GET /a\n2026-04-01T12:00:00.200Z run-stack-container[219]: [    RES] GET /a: 200\n',
    )
    expect(logs!.source).toBe('journalctl -u stack.service (in the guest)')
    expect(logs!.windowed).toBeUndefined()
  })

  it('follows with its cursor on the same guest; from the last time, strictly, on another guest or when the cursor is lost', async () => {
    const log = [entry(T0, 'one'), entry(T0 + 10, 'two')]
    const { source, calls } = journal(log)
    const first = await readServiceLogs({ journal: source })
    expect(calls.at(-1)!.slice(7)).toEqual(['-n', '2000'])
    expect(first!.text).toMatch(/one\n.*two\n$/)
    expect((await readServiceLogs({ journal: source }, { cursor: first!.cursor }))!.text).toBe('')
    log.push(entry(T0 + 20, 'three'))
    const next = await readServiceLogs({ journal: source }, { cursor: first!.cursor })
    expect(calls.at(-1)!.slice(7)).toEqual([`--after-cursor=${log[1]!.cursor}`])
    expect(next!.text).toMatch(/three\n$/)
    expect(next!.text).not.toMatch(/two/)
    // A reset swapped the guest: its journal has the snapshot's entries and its own.
    const other = journal([entry(T0 - 60_000, 'captured'), entry(T0 + 20, 'three'), entry(T0 + 30, 'four')], '200')
    const swapped = await readServiceLogs({ journal: other.source }, { cursor: next!.cursor })
    expect(other.calls.at(-1)!.slice(7)).toEqual([`--since=@${Math.floor((T0 + 20) / 1000)}`])
    expect(swapped!.text).toMatch(/^[^\n]*four\n$/)
    // The same guest, but a cursor its journal does not know: by time again.
    const lost = journal([entry(T0 + 30, 'four'), entry(T0 + 40, 'five')], '200')
    const forged = Buffer.from(JSON.stringify({ k: 'journal', vm: '200', cursor: 's=unknown', usec: (T0 + 30) * 1000 + 123 })).toString('base64url')
    expect((await readServiceLogs({ journal: lost.source }, { cursor: forged }))!.text).toMatch(/^[^\n]*five\n$/)
  })

  it('keeps the last maxLines; refuses a cursor it never gave', async () => {
    const { source } = journal(entries)
    expect((await readServiceLogs({ journal: source }, { sinceMs: T0 - 10_000, maxLines: 1 }))!.text).toMatch(/^[^\n]*after\n$/)
    await expect(readServiceLogs({ journal: source }, { cursor: 'bm90IG1pbmU' })).rejects.toMatchObject({ code: 'BAD_OPTION' })
  })
})

describe('stack.log through the share (a cold-booted guest)', () => {
  const file = (content: string | undefined) => ({
    path: '/state/x/share/vm/stack.log',
    read: async () => (content === undefined ? undefined : Buffer.from(content)),
  })

  it('is what a plain read shows, whole lines; a cursor then gives what came after, from the start again when the file was started anew', async () => {
    const first = await readServiceLogs({ file: file('a\nb\npart') })
    expect(first).toMatchObject({ source: '/state/x/share/vm/stack.log', text: 'a\nb\n' })
    expect((await readServiceLogs({ file: file('a\nb\npartial\nc\n') }, { cursor: first!.cursor }))!.text).toBe('partial\nc\n')
    expect((await readServiceLogs({ file: file('new\n') }, { cursor: first!.cursor }))!.text).toBe('new\n')
  })

  it('a window goes to the journal where there is one; without one the file comes whole, said so', async () => {
    const { source } = journal([entry(T0, 'stamped')])
    expect((await readServiceLogs({ file: file('x\n'), journal: source }, { sinceMs: T0 }))!.text).toMatch(/stamped/)
    expect(await readServiceLogs({ file: file('x\ny\n') }, { sinceMs: T0 })).toMatchObject({ text: 'x\ny\n', windowed: false })
    // No stack.log yet (a restored guest's services write none): the journal.
    expect((await readServiceLogs({ file: file(undefined), journal: source }))!.text).toMatch(/stamped/)
    expect(await readServiceLogs({})).toBeUndefined()
  })
})

describe("a failed test's report", () => {
  it('keeps the last lines within the size, and says how many were left out', () => {
    expect(lastOf('1\n2\n3\n4\n', 2, 1000)).toEqual({ kept: '3\n4\n', cut: 2 })
    expect(lastOf('aaaa\nbbbb\n', 10, 6)).toEqual({ kept: 'bbbb\n', cut: 1 })
    expect(lastOf('', 10, 100)).toEqual({ kept: '', cut: 0 })
    expect(lastOf('x'.repeat(50), 10, 20).kept).toBe(`…${'x'.repeat(16)}\n`)
  })

  it("takes the supervisor's lines of the window, with the lines that continue them", () => {
    const log = ['2026-04-01T11:59:59.000Z before', '2026-04-01T12:00:00.500Z inside', '  a detail of it', '2026-04-01T12:00:02.000Z after'].join('\n')
    expect(supervisorLines(log, { startMs: T0, endMs: T0 + 1000 })).toBe('2026-04-01T12:00:00.500Z inside\n  a detail of it\n')
  })
})
