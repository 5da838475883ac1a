import { describe, expect, it } from 'vitest'
import { createProgress } from '../../src/cli/progress.js'

function stream(isTTY: boolean) {
  const writes: string[] = []
  return { writes, stream: { isTTY, write: (s: string) => writes.push(s) } as unknown as NodeJS.WriteStream }
}

describe('progress on stderr', () => {
  it('stays quiet during the first seconds, then prints plain lines with phase and elapsed time', async () => {
    const { writes, stream: s } = stream(false)
    const progress = createProgress(s, 100)
    progress.phase('booting the VM')
    expect(writes).toEqual([])
    await new Promise((r) => setTimeout(r, 150))
    progress.phase('waiting for backend')
    progress.done()
    expect(writes).toEqual([expect.stringMatching(/^stack-emulator: waiting for backend \(\d+s\)\n$/)])
  })

  it('off a terminal, prints a new line when the phase changes, not when only its detail does', () => {
    const { writes, stream: s } = stream(false)
    const progress = createProgress(s, 0)
    progress.phase('downloading x.qcow2 (1.0 of 82.1 MB, 40.0 MB/s, 3 s left)')
    progress.phase('downloading x.qcow2 (2.0 of 82.1 MB, 40.0 MB/s, 2 s left)')
    progress.phase('booting the VM')
    progress.done()
    expect(writes).toEqual([expect.stringContaining('(1.0 of 82.1 MB'), expect.stringContaining('booting the VM')])
  })

  it('on a terminal, clears the progress line before a log line and draws it again after', () => {
    const { writes, stream: s } = stream(true)
    const progress = createProgress(s, 0)
    progress.phase('booting the VM')
    progress.log('KVM is not usable here')
    progress.done()
    expect(writes).toEqual([
      expect.stringMatching(/^\r\x1b\[Kstack-emulator: booting the VM \(0s\)$/),
      '\r\x1b[K',
      'stack-emulator: KVM is not usable here\n',
      expect.stringMatching(/^\r\x1b\[Kstack-emulator: booting the VM \(0s\)$/),
      '\r\x1b[K',
    ])
  })

  it('writes a log line as it is while nothing is drawn, and off a terminal', () => {
    for (const tty of [true, false]) {
      const { writes, stream: s } = stream(tty)
      const progress = createProgress(s, 60_000)
      progress.phase('booting the VM')
      progress.log('a note')
      progress.done()
      expect(writes).toEqual(['stack-emulator: a note\n'])
    }
  })

  it('rewrites one line in place on a terminal and clears it at the end', async () => {
    const { writes, stream: s } = stream(true)
    const progress = createProgress(s, 0)
    progress.phase('restoring')
    progress.done()
    expect(writes[0]).toMatch(/^\r\x1b\[Kstack-emulator: restoring \(0s\)$/)
    expect(writes.at(-1)).toBe('\r\x1b[K')
  })
})
