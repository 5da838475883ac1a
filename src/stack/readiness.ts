/**
 * Waits until every service answers its health path. Short per-try timeouts: the forwarded
 * port accepts before the guest listens (slirp accepts, then drops), so a long try only waits.
 */
import { httpRequest } from '../http.js'
import { StackEmulatorError } from '../errors.js'

export interface HealthTarget {
  name: string
  url: string
  status: number
}

export async function waitHealthy(options: {
  targets: HealthTarget[]
  deadline: number
  /** Rejects when the VM died; raced against every wait. */
  aborted?: Promise<never>
  /** The last lines of the serial console, for the timeout message. */
  consoleTail?: () => Promise<string>
  /** Pause between rounds of probes. @default 50 */
  intervalMs?: number
  /** Longest wait for one probe's answer. @default 500 */
  probeTimeoutMs?: number
}): Promise<void> {
  const pending = new Set(options.targets)
  while (pending.size > 0) {
    const checks = [...pending].map(async (target) => {
      if (await isHealthy(target, options.probeTimeoutMs)) pending.delete(target)
    })
    await (options.aborted ? Promise.race([Promise.all(checks), options.aborted]) : Promise.all(checks))
    if (pending.size === 0) return
    if (Date.now() > options.deadline) {
      const names = [...pending].map((t) => `${t.name} (${t.url})`).join(', ')
      throw new StackEmulatorError(`Service ${names} did not become healthy in time`, {
        code: 'NOT_HEALTHY',
        fix: 'Look at the console lines below; raise the timeout with --timeout (bootTimeoutMs) if the machine is just slow.',
        details: options.consoleTail ? `--- last console lines ---\n${await options.consoleTail()}` : undefined,
      })
    }
    await new Promise((r) => setTimeout(r, options.intervalMs ?? 50))
  }
}

export async function isHealthy(target: HealthTarget, timeoutMs = 500): Promise<boolean> {
  try {
    return (await httpRequest(target.url, { timeoutMs })).status === target.status
  } catch {
    return false
  }
}
