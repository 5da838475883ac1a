/**
 * Why a QEMU nobody asked to stop went away, in words a test log can act on. A SIGKILL comes from
 * the kernel's out-of-memory killer or from another process; the kernel counts its kills in
 * /proc/vmstat (`oom_kill`, Linux 4.13+, memory cgroups included), so a count that rose while the
 * VM ran tells them apart (dmesg needs privileges a test runner rarely has).
 */
import fs from 'node:fs/promises'
import type { QemuExit } from './process.js'
import { tail } from './process.js'

/** The kernel's count of out-of-memory kills so far; undefined where it cannot be read. */
export async function oomKills(): Promise<number | undefined> {
  const vmstat = await fs.readFile('/proc/vmstat', 'utf8').catch(() => '')
  const count = /^oom_kill (\d+)$/m.exec(vmstat)
  return count ? Number(count[1]) : undefined
}

/** "was killed by SIGKILL: out of memory (...)", "exited with code 1 (<its last line>)", ... */
export function exitReason(exit: Pick<QemuExit, 'code' | 'signal' | 'stderr'>, oomBefore: number | undefined, oomAfter: number | undefined): string {
  const said = tail(exit.stderr, 1).trim()
  if (exit.signal === 'SIGKILL') {
    if (oomBefore === undefined || oomAfter === undefined) return 'was killed by SIGKILL (out of memory, or another process)'
    return oomAfter > oomBefore
      ? 'was killed by SIGKILL: out of memory (the kernel counted an out-of-memory kill while it ran; free memory, run fewer VMs at once, or give each less with memoryMb)'
      : 'was killed by SIGKILL from another process (the kernel counted no out-of-memory kill)'
  }
  if (exit.signal) return `was killed by ${exit.signal}${said ? ` (${said})` : ''}`
  return `exited with code ${exit.code}${said ? ` (${said})` : ''}`
}
