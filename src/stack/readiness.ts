/**
 * Waits until every service answers its health path, each try given 2 s as Stack Auth's script
 * gives it (a busy emulated guest can be slow to answer). A forwarded port whose guest side does
 * not listen yet fails at once (slirp accepts, then drops), so short tries are not needed for that.
 */
import { httpRequest } from '../http.js'
import { StackEmulatorError } from '../errors.js'
import { pollUntil } from '../poll.js'

export interface HealthTarget {
  name: string
  url: string
  status: number
}

export async function waitHealthy(options: {
  targets: HealthTarget[]
  timeoutMs: number
  /** Rejects when the VM died; raced against every wait. */
  aborted?: Promise<never>
  /** The serial console: its path and its last lines, for the timeout message. */
  console?: { path: string; tail: () => Promise<string> }
  /** Pause between rounds of probes. @default 50 */
  intervalMs?: number
  /** Longest wait for one probe's answer. @default 2000, as Stack Auth's own script waits */
  probeTimeoutMs?: number
}): Promise<void> {
  const pending = new Set(options.targets)
  const probeAll = async () => {
    const checks = [...pending].map(async (target) => {
      if (await isHealthy(target, options.probeTimeoutMs)) pending.delete(target)
    })
    await (options.aborted ? Promise.race([Promise.all(checks), options.aborted]) : Promise.all(checks))
    return pending.size === 0
  }
  await pollUntil(probeAll, {
    timeoutMs: options.timeoutMs,
    intervalMs: options.intervalMs ?? 50,
    timeoutError: async () => {
      const names = [...pending].map((t) => `${t.name} (${t.url})`).join(', ')
      return new StackEmulatorError(`Service ${names} did not become healthy in time`, {
        code: 'NOT_HEALTHY',
        fix: `${options.console ? `See the console log ${options.console.path} (its last lines below); r` : 'R'}aise the timeout with --timeout (bootTimeoutMs) if the machine is just slow.`,
        details: options.console ? `--- last console lines ---\n${await options.console.tail()}` : undefined,
      })
    },
  })
}

export async function isHealthy(target: HealthTarget, timeoutMs = 2000): Promise<boolean> {
  try {
    return (await httpRequest(target.url, { timeoutMs })).status === target.status
  } catch {
    return false
  }
}
