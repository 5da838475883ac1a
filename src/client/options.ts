/**
 * Options of acquire(), shared by the Vitest plugin, the Playwright fixture and the CLI.
 * Defaults are written here once.
 */
import { badOption } from '../errors.js'
import type { Isolation } from '../supervisor/protocol.js'

export interface EmulatorOptions {
  /** Instance name: suites using the same name share one VM. @default $STACK_EMULATOR_NAME or 'default' */
  name?: string
  /** Path to an image manifest.json; unset = the fixture image, built on first use. @default undefined */
  image?: string
  /** How suites are kept apart. @default 'suite' */
  isolation?: Isolation
  /** Keep the VM running after the last suite ends (until idleTimeoutMs). @default false */
  keepAlive?: boolean
  /** With keepAlive: stop the VM after this long without leases; 0 = never. @default 300000 */
  idleTimeoutMs?: number
  /** Host port per service (e.g. { backend: 26701 }); 0 = let QEMU pick. @default the image's ports */
  ports?: Record<string, number>
  /** Guest memory in MiB. @default the image's */
  memoryMb?: number
  /** Start from the captured `ready` snapshot (and capture it on first boot). @default true */
  snapshot?: boolean
  /** Without snapshot: discard the instance's disk overlay before booting. @default false */
  fresh?: boolean
  /** Longest wait for a cold boot to become healthy. @default 180000 */
  bootTimeoutMs?: number
  /**
   * The app's stack.config.ts whose project the credentials belong to; false = no credentials.
   * @default './stack.config.ts' if it exists, else a generated one in the instance folder
   */
  configFile?: string | false
  /** Called with each phase of a long wait (boot, capture, restore). */
  onProgress?: (phase: string) => void
  /** Called with each one-line message (warnings, fallbacks, recoveries). */
  onLog?: (line: string) => void
}

export const DEFAULTS = {
  isolation: 'suite' as Isolation,
  keepAlive: false,
  idleTimeoutMs: 300_000,
  snapshot: true,
  fresh: false,
}

const ISOLATIONS = ['suite', 'exclusive', 'none']

export function validateOptions(options: EmulatorOptions): void {
  const { name, isolation, idleTimeoutMs, ports, memoryMb, bootTimeoutMs, configFile } = options
  if (name !== undefined && typeof name !== 'string') throw badOption('name', name, 'a string')
  if (isolation !== undefined && !ISOLATIONS.includes(isolation)) throw badOption('isolation', isolation, `one of ${ISOLATIONS.join(', ')}`)
  if (idleTimeoutMs !== undefined && !(Number.isInteger(idleTimeoutMs) && idleTimeoutMs >= 0)) throw badOption('idleTimeoutMs', idleTimeoutMs, 'an integer >= 0')
  if (memoryMb !== undefined && !(Number.isInteger(memoryMb) && memoryMb >= 64)) throw badOption('memoryMb', memoryMb, 'an integer >= 64')
  if (bootTimeoutMs !== undefined && !(Number.isInteger(bootTimeoutMs) && bootTimeoutMs > 0)) throw badOption('bootTimeoutMs', bootTimeoutMs, 'a positive integer')
  if (configFile !== undefined && configFile !== false && typeof configFile !== 'string') throw badOption('configFile', configFile, 'a path or false')
  for (const [service, port] of Object.entries(ports ?? {})) {
    if (!(Number.isInteger(port) && port >= 0 && port < 65536)) throw badOption(`ports.${service}`, port, 'a port number 0..65535')
  }
}
