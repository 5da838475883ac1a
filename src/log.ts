/**
 * One prefix for every line stack-emulator writes on stderr: the CLI's and the integrations'.
 * STACK_EMULATOR_LOG=quiet keeps only `summary` lines (errors are thrown, and printed by whoever
 * catches them).
 */
import { readLogLevel, type LogLevel } from './settings.js'

/** A note: progress, a fallback, a warning. Not under STACK_EMULATOR_LOG=quiet. */
export function log(line: string): void {
  if (logLevel() !== 'quiet') write(line)
}

/** The one line that says all went well (the integrations' "VM ready in ..."); at every level. */
export function summary(line: string): void {
  write(line)
}

/** The level for this process; a bad value counts as info here (acquire() reports it as an error). */
export function logLevel(): LogLevel {
  try {
    return readLogLevel()
  } catch {
    return 'info'
  }
}

function write(line: string): void {
  process.stderr.write(`stack-emulator: ${line}\n`)
}
