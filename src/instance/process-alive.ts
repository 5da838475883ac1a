import fs from 'node:fs'

/** True while `pid` runs; a zombie (dead, not yet reaped by its parent) counts as gone. */
export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
  try {
    // /proc/<pid>/stat: "pid (comm) S ...": the state follows the last ')'.
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z'
  } catch {
    return process.platform !== 'linux'
  }
}

/**
 * When `pid` started (clock ticks since boot, /proc/<pid>/stat's 22nd field): with the pid, it
 * names one process, not a later one given the same pid. undefined where /proc cannot say.
 */
export function processStartTime(pid: number): string | undefined {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8')
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19]
  } catch {
    return undefined
  }
}

/** True while the process that had `pid` and `startTime` runs (paused by a debugger or SIGSTOP counts). */
export function isSameProcessAlive(pid: number, startTime: string | undefined): boolean {
  return isProcessAlive(pid) && (startTime === undefined || processStartTime(pid) === startTime)
}

/**
 * Another live process of this user with `arg` among its arguments (a supervisor is started
 * with its instance's supervisor.json); undefined when none, or where /proc cannot say.
 */
export function ownProcessWithArgument(arg: string): number | undefined {
  const uid = process.getuid?.()
  let entries: string[]
  try {
    entries = fs.readdirSync('/proc').filter((e) => /^\d+$/.test(e) && Number(e) !== process.pid)
  } catch {
    return undefined
  }
  for (const entry of entries) {
    try {
      if (uid !== undefined && fs.statSync(`/proc/${entry}`).uid !== uid) continue
      if (fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').includes(arg) && isProcessAlive(Number(entry))) return Number(entry)
    } catch {
      // gone meanwhile
    }
  }
  return undefined
}
