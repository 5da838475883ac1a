/**
 * The one error class of the package. Every message says what went wrong and what to do about
 * it (`fix`), so a user reading a CI log never has to open the source.
 */
export type ErrorCode =
  | 'BAD_OPTION'
  | 'QEMU_NOT_FOUND'
  /** The QEMU binary is there but does not run, or is no QEMU (STACK_EMULATOR_QEMU=/bin/false). */
  | 'QEMU_UNUSABLE'
  /** STACK_EMULATOR_ACCEL names an accelerator this host cannot use (no silent fallback to TCG). */
  | 'ACCEL_UNAVAILABLE'
  | 'IMAGE_NOT_FOUND'
  | 'IMAGE_BUILD_FAILED'
  | 'PULL_FAILED'
  | 'CHECKSUM_MISMATCH'
  | 'PORT_BUSY'
  | 'BOOT_FAILED'
  | 'NOT_HEALTHY'
  | 'QMP'
  | 'SNAPSHOT'
  | 'NOT_RUNNING'
  | 'IMAGE_MISMATCH'
  | 'LEASE_LOST'
  | 'RESET_REFUSED'
  | 'SUPERVISOR'
  | 'CREDENTIALS'
  | 'TIMEOUT'
  | 'STATE_UNSAFE'
  | 'DISK_FULL'
  | 'READ_ONLY'
  /** Permission denied on a file outside the folder being written (a disk in the cache, /dev/kvm). */
  | 'ACCESS_DENIED'
  | 'PROTOCOL'
  | 'SHUTTING_DOWN'
  | 'OPTIONS_MISMATCH'
  | 'NO_SERVICE'
  | 'DOCKER_UNAVAILABLE'
  | 'RESET_UNSUPPORTED'
  | 'RESET_FAILED'
  /** Seeded snapshots: another seed holds the VM; a seed ran too long; none saved for a worker; none can be saved; a driver without them. */
  | 'SEED_CONFLICT'
  | 'SEED_TIMEOUT'
  | 'SEED_MISSING'
  | 'SEED_UNSAVED'
  | 'SEED_UNSUPPORTED'
  /** The sign-in helpers: the backend refused a test user or session, or a user of another project. */
  | 'SIGN_IN'

export interface StackEmulatorErrorOptions {
  code: ErrorCode
  /** What the user should do; appended to the message. */
  fix?: string
  /** Last lines of the serial console or a child's stderr, shown under the message. */
  details?: string
  cause?: unknown
}

export class StackEmulatorError extends Error {
  override name = 'StackEmulatorError'
  readonly code: ErrorCode
  readonly fix: string | undefined
  readonly details: string | undefined

  constructor(summary: string, options: StackEmulatorErrorOptions) {
    const fix = options.fix ? ` ${options.fix}` : ''
    const details = options.details ? `\n${options.details}` : ''
    const stop = /[.?!]$/.test(summary) ? '' : '.'
    super(`${summary}${stop}${fix}${details}`, { cause: options.cause })
    this.code = options.code
    this.fix = options.fix
    this.details = options.details
  }

  /** Plain object for the supervisor protocol and `--json` output. */
  toJSON(): StackEmulatorErrorJSON {
    const { code, message, fix, details } = this
    return { code, message, ...(fix ? { fix } : {}), ...(details ? { details } : {}) }
  }
}

export interface StackEmulatorErrorJSON {
  code: ErrorCode
  /** The whole message: summary, fix and details. */
  message: string
  fix?: string
  details?: string
}

/** Rebuilds an error that crossed the supervisor socket, with its fix and details. */
export function errorFromJSON(value: Partial<StackEmulatorErrorJSON>): StackEmulatorError {
  const error = new StackEmulatorError('', { code: value.code ?? 'SUPERVISOR', fix: value.fix, details: value.details })
  error.message = String(value.message ?? 'unknown error from the supervisor')
  return error
}

/** An option with a bad value: names the option, the value and its type. */
export function badOption(name: string, value: unknown, expected: string): StackEmulatorError {
  const shown = typeof value === 'string' ? JSON.stringify(value) : String(value)
  return new StackEmulatorError(`Option "${name}" must be ${expected}, got ${shown} (${typeof value})`, { code: 'BAD_OPTION' })
}
