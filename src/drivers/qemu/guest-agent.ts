/**
 * What the driver asks of qemu-guest-agent (manifest `guestAgent`): run a command in the guest,
 * set its clock, read a file. One short connection per task: the agent serves one client at a
 * time, and a restored guest's agent is already listening.
 */
import { StackEmulatorError } from '../../errors.js'
import { QmpClient } from './qmp.js'
import { pollUntil } from '../../poll.js'

interface ExecStatus {
  exited: boolean
  exitcode?: number
  signal?: number
  'out-data'?: string
  'err-data'?: string
}

export async function withGuestAgent<T>(socketPath: string, timeoutMs: number, task: (agent: QmpClient) => Promise<T>): Promise<T> {
  const agent = await QmpClient.connectAgent(socketPath, timeoutMs)
  try {
    return await task(agent)
  } finally {
    agent.close()
  }
}

/** Runs `argv` in the guest and waits for it to exit; a non-zero exit is an error quoting its stderr. */
export async function guestExec(agent: QmpClient, argv: string[], timeoutMs: number): Promise<string> {
  const [path, ...arg] = argv
  const { pid } = await agent.execute<{ pid: number }>('guest-exec', { path, arg, 'capture-output': true })
  // A short, even poll: these commands take tens to hundreds of ms, and a restore waits on them.
  return pollUntil(
    async () => {
      const status = await agent.execute<ExecStatus>('guest-exec-status', { pid })
      if (!status.exited) return undefined
      const stderr = decode(status['err-data']).trim()
      if (status.exitcode === 0) return decode(status['out-data'])
      throw new StackEmulatorError(
        `${argv.join(' ')} failed in the guest (${status.signal ? `signal ${status.signal}` : `exit code ${status.exitcode}`})${stderr ? `: ${stderr.split('\n').at(-1)}` : ''}`,
        {
          code: 'BOOT_FAILED',
          fix: 'See the serial console log (stack-emulator logs).',
        },
      )
    },
    {
      timeoutMs,
      intervalMs: 10,
      timeoutError: () => new StackEmulatorError(`${argv.join(' ')} did not finish in the guest within ${timeoutMs} ms`, { code: 'TIMEOUT' }),
    },
  )
}

/** How the guest's clock is set: the agent's own command, or `date` run through it. */
export type ClockMethod = 'guest-set-time' | 'date'

/**
 * Sets the guest's clock to the host's and reads it back (`guest-get-time` needs nothing in the
 * guest). `guest-set-time` is refused where the guest has no /sbin/hwclock (Debian's agent does not
 * pull it in, and Stack Auth's image lacks it): then `date -u -s @<seconds>` through `guest-exec`,
 * which any Linux guest with coreutils runs. `known` skips the method that failed before.
 * Returns the method that worked and how far the guest's clock still is from the host's.
 */
export async function syncGuestClock(agent: QmpClient, known?: ClockMethod): Promise<{ method: ClockMethod; skewMs: number }> {
  let method: ClockMethod = known ?? 'guest-set-time'
  if (method === 'guest-set-time') {
    try {
      await agent.execute('guest-set-time', { time: Date.now() * 1_000_000 })
    } catch {
      method = 'date'
    }
  }
  if (method === 'date') {
    // Computed as late as possible; the guest's process start (tens of ms under TCG) is the error left.
    const now = Date.now()
    await guestExec(agent, ['/bin/date', '-u', '-s', `@${Math.floor(now / 1000)}.${String(now % 1000).padStart(3, '0')}`], 10_000)
  }
  const before = Date.now()
  const guestNs = await agent.execute<number>('guest-get-time')
  const hostMs = (before + Date.now()) / 2
  return { method, skewMs: Math.round(guestNs / 1_000_000 - hostMs) }
}

/** Reads a small file from the guest. */
export async function guestReadFile(agent: QmpClient, file: string): Promise<string> {
  const handle = await agent.execute<number>('guest-file-open', { path: file, mode: 'r' })
  try {
    let text = ''
    for (;;) {
      // not a poll: reads the file chunk by chunk to its end
      const chunk = await agent.execute<{ count: number; 'buf-b64': string; eof: boolean }>('guest-file-read', { handle, count: 65_536 })
      text += decode(chunk['buf-b64'])
      if (chunk.eof || chunk.count === 0) return text
    }
  } finally {
    await agent.execute('guest-file-close', { handle }).catch(() => {})
  }
}

const decode = (base64: string | undefined) => (base64 ? Buffer.from(base64, 'base64').toString('utf8') : '')
