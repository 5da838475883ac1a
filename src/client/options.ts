/**
 * Options of acquire(), shared by the Vitest plugin, the Playwright fixture and the CLI. Every
 * default and every bound is written here once: `resolveOptions` validates and fills them in one
 * pass, and later modules receive the finished object and never apply a default again.
 */
import os from 'node:os'
import { sha256 } from '../digest.js'
import { StackEmulatorError, badOption } from '../errors.js'
import { log } from '../log.js'
import { checkArch, parseImageRef, type Arch } from '../image/names.js'
import { readSettings, type Settings } from '../settings.js'
import type { Isolation } from '../supervisor/protocol.js'
import { DEFAULT_DRIVER, DRIVER_NAMES, type DriverName } from '../drivers/names.js'
import type { DriverOptions } from '../drivers/types.js'
import type { EmulatorManifest } from '../drivers/manifest.js'
import { driverFor } from '../drivers/registry.js'
import type { Emulator } from './emulator.js'

export type { DriverOptions }

export interface EmulatorOptions {
  /**
   * What runs the emulator: `'qemu'` (a VM), `'docker'` (a container, through testcontainers) or
   * `'external'` (an emulator someone else runs, at `urls`). @default $STACK_EMULATOR_DRIVER, else 'qemu'
   */
  driver?: DriverName
  /** external: base URL per service ({ backend, dashboard, ... }). @default $STACK_EMULATOR_<SERVICE>_URL */
  urls?: Record<string, string>
  /** external: the internal project's publishable key, to mint credentials with. @default $STACK_EMULATOR_INTERNAL_KEY */
  internalKey?: string
  /** Instance name: suites using the same name share one VM. @default $STACK_EMULATOR_NAME or 'default' */
  name?: string
  /**
   * `'fixture'` (built on first use), `'stack-auth'` (the newest pulled real image for this
   * machine's arch), `'stack-auth@<tag>'` (that release; both pulled first when missing), or a
   * path to an image manifest.json. @default $STACK_EMULATOR_IMAGE, else 'fixture'
   */
  image?: string
  /** The image's arch, amd64 or arm64: a start is refused when the image is built for the other. @default any */
  arch?: Arch
  /** How suites are kept apart. @default 'suite' */
  isolation?: Isolation
  /** Keep the VM running after the last suite ends (until idleTimeoutMs). @default false */
  keepAlive?: boolean
  /** With keepAlive: stop the VM after this long without leases; 0 = never. @default 300000 */
  idleTimeoutMs?: number
  /** Host port per service (e.g. { backend: 26701 }); 0 = the driver picks a free one. @default the image's ports */
  ports?: Record<string, number>
  /** Guest memory in MiB. @default the image's */
  memoryMb?: number
  /** Start from the captured `ready` snapshot (and capture it on first boot). @default true */
  snapshot?: boolean
  /** Without snapshot: discard the instance's disk overlay before booting. @default false */
  fresh?: boolean
  /** Longest wait for a cold boot to become healthy, in ms. @default 180000 */
  bootTimeoutMs?: number
  /**
   * The app's stack.config.ts whose project the credentials belong to; false = no credentials.
   * Without one, each project (the nearest folder up from the working directory with a
   * package.json, else the working directory) gets a config generated in the state folder,
   * `<state>/.projects/<folder name>-<hash of its path>/stack.config.ts`, and so a seeded snapshot
   * of its own: switching projects restores instead of seeding again.
   * @default './stack.config.ts' if it exists, else the project's generated one in the state folder
   */
  configFile?: string | false
  /**
   * Runs once, after the credentials are minted, to put data every test starts from (users, teams)
   * through the SDK or HTTP; resets then return to the state it left, with the same keys. It runs
   * again only when its source (or seedVersion) or the config file changes.
   */
  seed?: (emulator: Emulator) => Promise<void> | void
  /**
   * The seed's identity: a seeded snapshot is reused while it stays the same. Give one to any seed
   * that reads data (files, variables, a closure's values): the default identity is the seed's
   * source text, which does not change with them. A client given a seedVersion but no seed (the
   * app Playwright's webServer runs under `stack-emulator exec --seed-version`) uses that seed's
   * snapshot; until one is saved, the suite that holds the seed takes it from this client's VM.
   * @default a digest of seed's source
   */
  seedVersion?: string
  /**
   * Longest the seed may run, and longest this suite waits for another suite's seed or for a VM
   * that others hold with another seed, in ms; then it fails, saying why. @default 300000
   */
  seedTimeoutMs?: number
  /** Called with each phase of a long wait (boot, capture, restore). */
  onProgress?: (phase: string) => void
  /** Called with each one-line message (warnings, fallbacks, recoveries). @default a line on stderr */
  onLog?: (line: string) => void
}

export interface ResolvedOptions {
  name: string
  image: string | undefined
  /** Checked against the image's manifest (driverOptions). */
  arch: Arch | undefined
  isolation: Isolation
  keepAlive: boolean
  idleTimeoutMs: number
  configFile: string | false | undefined
  seed: EmulatorOptions['seed']
  seedVersion: string | undefined
  seedTimeoutMs: number
  onProgress: (phase: string) => void
  onLog: (line: string) => void
  driver: DriverName
  /** What the caller set explicitly, to compare with a running VM. */
  requested: Pick<EmulatorOptions, 'ports' | 'memoryMb' | 'snapshot' | 'driver'>
  driverDefaults: Omit<DriverOptions, 'ports' | 'memoryMb'>
}

export const DEFAULTS = {
  isolation: 'suite' as Isolation,
  keepAlive: false,
  idleTimeoutMs: 300_000,
  snapshot: true,
  fresh: false,
  bootTimeoutMs: 180_000,
  seedTimeoutMs: 300_000,
}

/** setTimeout's limit: a longer timer fires at once. */
const MAX_TIMER_MS = 2 ** 31 - 1
const ISOLATIONS: Isolation[] = ['suite', 'exclusive', 'none']
export const MIN_MEMORY_MB = 64

/** Guest memory above the host's would only fail later, after a long wait (and a huge sparse file). */
export function maxMemoryMb(): number {
  return Math.min(65_536, Math.floor(os.totalmem() / 2 ** 20))
}

export function validateOptions(options: EmulatorOptions): void {
  if (options === null || typeof options !== 'object') throw badOption('options', options, 'an object')
  const { name, image, arch, isolation, keepAlive, idleTimeoutMs, ports, memoryMb, snapshot, fresh, bootTimeoutMs, configFile, onProgress, onLog } = options
  if (name !== undefined && typeof name !== 'string') throw badOption('name', name, 'a string')
  if (options.driver !== undefined && !DRIVER_NAMES.includes(options.driver)) throw badOption('driver', options.driver, `one of ${DRIVER_NAMES.join(', ')}`)
  if (
    options.urls !== undefined &&
    (options.urls === null || typeof options.urls !== 'object' || !Object.values(options.urls).every((u) => typeof u === 'string'))
  ) {
    throw badOption('urls', options.urls, 'an object of service names to URLs')
  }
  if (options.internalKey !== undefined && typeof options.internalKey !== 'string') throw badOption('internalKey', options.internalKey, 'a string')
  if (image !== undefined && typeof image !== 'string')
    throw badOption('image', image, "'fixture', 'stack-auth', 'stack-auth@<tag>' or a path to a manifest.json")
  parseImageRef(image) // a malformed tag fails here, before anything starts
  if (arch !== undefined) checkArch(arch)
  if (isolation !== undefined && !ISOLATIONS.includes(isolation)) throw badOption('isolation', isolation, `one of ${ISOLATIONS.join(', ')}`)
  for (const [key, value] of Object.entries({ keepAlive, snapshot, fresh })) {
    if (value !== undefined && typeof value !== 'boolean') throw badOption(key, value, 'true or false')
  }
  integerIn('idleTimeoutMs', idleTimeoutMs, 0, MAX_TIMER_MS)
  integerIn('memoryMb', memoryMb, MIN_MEMORY_MB, maxMemoryMb())
  integerIn('bootTimeoutMs', bootTimeoutMs, 1000, MAX_TIMER_MS)
  integerIn('seedTimeoutMs', options.seedTimeoutMs, 1000, MAX_TIMER_MS)
  if ((options.seed || options.seedVersion) && configFile === false) {
    throw new StackEmulatorError('Option "seed" needs credentials, but configFile is false', {
      code: 'BAD_OPTION',
      fix: 'Drop configFile: false (the seed fills the project its keys belong to), or drop the seed.',
    })
  }
  if (configFile !== undefined && configFile !== false && typeof configFile !== 'string') throw badOption('configFile', configFile, 'a path or false')
  if (ports !== undefined && (ports === null || typeof ports !== 'object')) throw badOption('ports', ports, 'an object of service names to ports')
  for (const [service, port] of Object.entries(ports ?? {})) integerIn(`ports.${service}`, port, 0, 65_535)
  if (options.seedVersion !== undefined && (typeof options.seedVersion !== 'string' || !/^[\w.@+-]{1,64}$/.test(options.seedVersion))) {
    throw badOption('seedVersion', options.seedVersion, 'up to 64 letters, digits or ._@+-')
  }
  for (const [key, value] of Object.entries({ onProgress, onLog, seed: options.seed })) {
    if (value !== undefined && typeof value !== 'function') throw badOption(key, value, 'a function')
  }
}

function integerIn(name: string, value: unknown, min: number, max: number): void {
  if (value === undefined) return
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max) {
    throw badOption(name, value, `an integer from ${min} to ${max}`)
  }
}

/** The seed's identity in a seeded snapshot: its version when given, else a digest of its source; '' without a seed. */
export function seedIdentity(options: Pick<EmulatorOptions, 'seed' | 'seedVersion'>): string {
  return options.seedVersion ?? (options.seed ? sha256(options.seed.toString()).slice(0, 16) : '')
}

/** The instance a call is about: the `name` option (--name), else STACK_EMULATOR_NAME, else `default` (settings.ts). The one place it is defaulted. */
export function instanceName(name: string | undefined, settings: Pick<Settings, 'name'> = readSettings()): string {
  return name ?? settings.name
}

/** STACK_EMULATOR_DRIVER checked against the drivers' names; unset, the default driver. */
function driverFromEnv(value: string | undefined): DriverName {
  if (!value) return DEFAULT_DRIVER
  if (!(DRIVER_NAMES as string[]).includes(value)) {
    throw new StackEmulatorError(`STACK_EMULATOR_DRIVER must be one of ${DRIVER_NAMES.join(', ')}; got ${JSON.stringify(value)}`, {
      code: 'BAD_OPTION',
      fix: `Unset it for ${DEFAULT_DRIVER}.`,
    })
  }
  return value as DriverName
}

export function resolveOptions(options: EmulatorOptions, settings: Settings): ResolvedOptions {
  validateOptions(options)
  const driver = options.driver ?? driverFromEnv(settings.driver)
  return {
    name: instanceName(options.name, settings),
    image: options.image ?? settings.image,
    arch: options.arch,
    isolation: options.isolation ?? DEFAULTS.isolation,
    keepAlive: options.keepAlive ?? DEFAULTS.keepAlive,
    idleTimeoutMs: options.idleTimeoutMs ?? DEFAULTS.idleTimeoutMs,
    configFile: options.configFile,
    seed: options.seed,
    seedVersion: options.seedVersion,
    seedTimeoutMs: options.seedTimeoutMs ?? DEFAULTS.seedTimeoutMs,
    onProgress: options.onProgress ?? (() => {}),
    onLog: options.onLog ?? log,
    driver,
    requested: { ports: options.ports, memoryMb: options.memoryMb, snapshot: options.snapshot, driver: options.driver },
    driverDefaults: {
      kind: driver,
      ...(driverFor(driver).attaches ? { urls: options.urls ?? settings.urls, internalKey: options.internalKey ?? settings.internalKey } : {}),
      snapshot: options.snapshot ?? DEFAULTS.snapshot,
      fresh: options.fresh ?? DEFAULTS.fresh,
      bootTimeoutMs: options.bootTimeoutMs ?? DEFAULTS.bootTimeoutMs,
    },
  }
}

/** The driver options for this image: ports for its services (unknown ones refused), its memory by default. */
export function driverOptions(resolved: ResolvedOptions, manifest: Pick<EmulatorManifest, 'name' | 'services' | 'memoryMb' | 'arch'>): DriverOptions {
  const imageArch = manifest.arch ?? resolved.arch
  if (resolved.arch !== undefined && resolved.arch !== imageArch) {
    throw new StackEmulatorError(`Option "arch" is ${resolved.arch}, but the image ${manifest.name} is built for ${imageArch}`, {
      code: 'BAD_OPTION',
      fix: `Drop the arch option, or use an ${resolved.arch} image (e.g. stack-emulator image pull --arch ${resolved.arch}).`,
    })
  }
  const known = manifest.services.map((s) => s.name)
  for (const service of Object.keys(resolved.requested.ports ?? {})) {
    if (!known.includes(service))
      throw badOption(`ports.${service}`, resolved.requested.ports![service], `a port of one of the image's services (${known.join(', ')})`)
  }
  const ports = Object.entries(resolved.requested.ports ?? {}).filter(([, port]) => port !== 0)
  for (const [service, port] of ports) {
    const other = ports.find(([s, p]) => p === port && s !== service)
    if (other) {
      throw new StackEmulatorError(`Option "ports" gives port ${port} twice, to ${service} and to ${other[0]}`, {
        code: 'BAD_OPTION',
        fix: 'Give each service a port of its own (or 0, for one chosen free).',
      })
    }
  }
  return {
    ...resolved.driverDefaults,
    memoryMb: resolved.requested.memoryMb ?? manifest.memoryMb ?? 0,
    ports: Object.fromEntries(manifest.services.map((s) => [s.name, resolved.requested.ports?.[s.name] ?? s.hostPort ?? 0])),
  }
}

/**
 * A suite that asks for something the running VM does not have is refused, naming the
 * difference: it would otherwise silently get the running VM.
 */
export function assertCompatible(name: string, requested: ResolvedOptions['requested'], running: DriverOptions): void {
  const differences: string[] = []
  if (requested.driver !== undefined && requested.driver !== running.kind) differences.push(`driver ${running.kind}, not ${requested.driver}`)
  if (requested.memoryMb !== undefined && requested.memoryMb !== running.memoryMb) differences.push(`memoryMb ${running.memoryMb}, not ${requested.memoryMb}`)
  if (requested.snapshot !== undefined && requested.snapshot !== running.snapshot) differences.push(`snapshot ${running.snapshot}, not ${requested.snapshot}`)
  for (const [service, port] of Object.entries(requested.ports ?? {})) {
    if (port !== 0 && running.ports[service] !== port) differences.push(`ports.${service} ${running.ports[service]}, not ${port}`)
  }
  if (differences.length > 0) {
    throw new StackEmulatorError(`Instance "${name}" is running with ${differences.join(', ')}`, {
      code: 'OPTIONS_MISMATCH',
      fix: `Use another instance name (name option, --name), drop the differing options, or stop it first (stack-emulator stop --name ${name}).`,
    })
  }
}
