/**
 * The CLI's flags and how they map to acquire()'s options, both ways: flags to options for the
 * commands, options to flags for `stack-emulator exec` command lines (Playwright's webServer),
 * and option names back to flags in the messages of option errors.
 */
import { seedIdentity, type EmulatorOptions } from '../client/options.js'
import type { PullOptions } from '../client/pull.js'

export interface Flag {
  type: 'string' | 'boolean'
  multiple?: boolean
  short?: string
  /** Shown after the flag in help: `--name <name>`. */
  value?: string
  help: string
  /** The acquire() or pullImage() option the flag sets. */
  option?: keyof EmulatorOptions | keyof PullOptions
}

export const FLAGS = {
  name: { type: 'string', value: '<name>', help: 'instance name (default: $STACK_EMULATOR_NAME or default)', option: 'name' },
  driver: { type: 'string', value: '<driver>', help: 'qemu | docker | external (default: $STACK_EMULATOR_DRIVER or qemu)', option: 'driver' },
  url: {
    type: 'string',
    multiple: true,
    value: '<svc=url>',
    help: 'external: a service URL, repeatable (default: $STACK_EMULATOR_<SERVICE>_URL)',
    option: 'urls',
  },
  'internal-key': {
    type: 'string',
    value: '<key>',
    help: "external: the internal project's publishable key (default: $STACK_EMULATOR_INTERNAL_KEY)",
    option: 'internalKey',
  },
  image: { type: 'string', value: '<image>', help: 'fixture, stack-auth[@<tag>] or a manifest.json (default: fixture)', option: 'image' },
  port: { type: 'string', multiple: true, value: '<svc=port>', help: 'fixed host port for a service, repeatable (0 = the driver picks)', option: 'ports' },
  memory: { type: 'string', value: '<MiB>', help: "guest memory (default: the image's)", option: 'memoryMb' },
  'no-snapshot': { type: 'boolean', help: "cold boot and keep the instance's disk between runs", option: 'snapshot' },
  fresh: { type: 'boolean', help: 'with --no-snapshot: start from a fresh disk', option: 'fresh' },
  'idle-timeout': { type: 'string', value: '<ms>', help: 'stop after this long without a suite using it (default 0 = until stop)', option: 'idleTimeoutMs' },
  isolation: { type: 'string', value: '<mode>', help: 'suite | exclusive | none (default suite)', option: 'isolation' },
  timeout: { type: 'string', value: '<ms>', help: 'longest wait for a cold boot (default 180000)', option: 'bootTimeoutMs' },
  'config-file': { type: 'string', value: '<path>', help: 'stack.config.ts whose project the keys belong to', option: 'configFile' },
  'seed-version': {
    type: 'string',
    value: '<id>',
    help: "use the seeded snapshot of this seed (a suite's seedVersion); until one is saved, the suite holding the seed takes it from this VM",
    option: 'seedVersion',
  },
  branch: { type: 'string', value: '<branch>', help: 'pull the release emulator-<branch>-latest (default dev)', option: 'branch' },
  tag: { type: 'string', value: '<tag>', help: 'pull this release tag instead, e.g. emulator-dev-20260401-1a2b3c4d', option: 'tag' },
  arch: { type: 'string', value: '<arch>', help: "amd64 or arm64 (image pull: default this machine's; start, exec: must be the image's)", option: 'arch' },
  sha256: { type: 'string', value: '<hex>', help: "the disk's expected sha256; a mismatch installs nothing", option: 'sha256' },
  warm: { type: 'boolean', help: 'then boot it once to capture its ready snapshot', option: 'warm' },
  manifest: { type: 'string', value: '<file>', help: "the image's manifest instead of the shipped one (its base.env beside it)", option: 'manifestTemplate' },
  'base-env': { type: 'string', value: '<file>', help: "the image's base env (NAME=value lines) instead of the shipped one", option: 'baseEnv' },
  'older-than': { type: 'string', value: '<days>', help: 'what was not used for this many days (default 30)' },
  force: { type: 'boolean', help: 'do it even when it could be skipped' },
  all: { type: 'boolean', help: 'every instance' },
  env: { type: 'boolean', help: 'also print the environment (secret keys hidden; --json has them)' },
  supervisor: { type: 'boolean', help: "the supervisor's log instead of the VM's console" },
  since: {
    type: 'string',
    value: '<time>',
    help: 'only lines from this time on: a duration ago (90s, 10m, 2h, 1d) or a time (2026-04-01T12:00:00Z, 12:00, @<epoch seconds>)',
  },
  follow: { type: 'boolean', short: 'f', help: 'then print new lines as they come, until Ctrl-C or the instance stops' },
  fix: { type: 'boolean', help: 'install the missing Debian packages (as root; otherwise print the command)' },
  json: { type: 'boolean', help: 'print exactly one JSON object on stdout' },
  help: { type: 'boolean', short: 'h', help: 'this text' },
  version: { type: 'boolean', short: 'V', help: "print stack-emulator's version" },
} satisfies Record<string, Flag>

export type FlagName = keyof typeof FLAGS
export type FlagValues = {
  [K in FlagName]?: (typeof FLAGS)[K] extends { type: 'string' } ? ((typeof FLAGS)[K] extends { multiple: true } ? string[] : string) : boolean
}

export function optionsFromFlags(values: FlagValues, usageError: (message: string) => Error): EmulatorOptions {
  const integer = (flag: FlagName) => wholeNumber(values, flag, usageError)
  const port = (value: string): [string, number] => {
    const m = /^([a-z][a-z0-9_-]*)=(\d+)$/i.exec(value)
    if (!m) throw usageError(`--port expects <service>=<port>, e.g. --port backend=26701; got "${value}"`)
    return [m[1]!, Number(m[2])]
  }
  return {
    name: values.name,
    driver: values.driver as EmulatorOptions['driver'],
    urls: values.url
      ? Object.fromEntries(
          values.url.map((u) => {
            const at = u.indexOf('=')
            if (at < 1) throw usageError(`--url expects <service>=<url>, e.g. --url backend=http://127.0.0.1:8102; got "${u}"`)
            return [u.slice(0, at), u.slice(at + 1)]
          }),
        )
      : undefined,
    internalKey: values['internal-key'],
    image: values.image,
    arch: values.arch as EmulatorOptions['arch'],
    ports: values.port ? Object.fromEntries(values.port.map(port)) : undefined,
    memoryMb: integer('memory'),
    snapshot: values['no-snapshot'] ? false : undefined,
    fresh: values.fresh,
    idleTimeoutMs: integer('idle-timeout'),
    isolation: values.isolation as EmulatorOptions['isolation'],
    bootTimeoutMs: integer('timeout'),
    configFile: values['config-file'],
    seedVersion: values['seed-version'],
  }
}

/** `image pull`'s flags as pullImage()'s options (which check them), and `image prune`'s days. */
export function imageOptionsFromFlags(values: FlagValues, usageError: (message: string) => Error): { pull: PullOptions; olderThanDays: number | undefined } {
  return {
    pull: {
      branch: values.branch,
      tag: values.tag,
      arch: values.arch as PullOptions['arch'],
      sha256: values.sha256,
      warm: values.warm,
      manifestTemplate: values.manifest,
      baseEnv: values['base-env'],
    },
    olderThanDays: wholeNumber(values, 'older-than', usageError),
  }
}

function wholeNumber(values: FlagValues, flag: FlagName, usageError: (message: string) => Error): number | undefined {
  const value = values[flag] as string | undefined
  if (value === undefined) return undefined
  if (!/^\d+$/.test(value)) throw usageError(`--${flag} expects a whole number, got "${value}"`)
  return Number(value)
}

/**
 * The flags that ask `stack-emulator exec` for the same VM and seed as these options. Isolation,
 * keepAlive and the idle timeout stay out: they are about each lease, and exec's is its own.
 */
export function flagsFromOptions(options: EmulatorOptions): string[] {
  const argv: string[] = []
  if (options.name) argv.push('--name', options.name)
  if (options.driver) argv.push('--driver', options.driver)
  for (const [service, url] of Object.entries(options.urls ?? {})) argv.push('--url', `${service}=${url}`)
  if (options.internalKey) argv.push('--internal-key', options.internalKey)
  if (options.image) argv.push('--image', options.image)
  if (options.arch) argv.push('--arch', options.arch)
  for (const [service, port] of Object.entries(options.ports ?? {})) argv.push('--port', `${service}=${port}`)
  if (options.memoryMb !== undefined) argv.push('--memory', String(options.memoryMb))
  if (options.snapshot === false) argv.push('--no-snapshot')
  if (options.fresh) argv.push('--fresh')
  if (options.bootTimeoutMs !== undefined) argv.push('--timeout', String(options.bootTimeoutMs))
  if (typeof options.configFile === 'string') argv.push('--config-file', options.configFile)
  // The suite's seed, by its identity: the app serves the seeded project the tests then see.
  const seedId = seedIdentity(options)
  if (seedId) argv.push('--seed-version', seedId)
  return argv
}

/** `Option "memoryMb" must be…` (from validateOptions) becomes `--memory must be…`. */
export function withFlagNames(message: string): string {
  return message.replace(/^Option "(\w+)(?:\.([\w-]+))?"/, (all, option: string, key: string | undefined) => {
    const flag = Object.entries(FLAGS).find(([, f]) => 'option' in f && f.option === option)?.[0]
    if (!flag) return all
    return key ? `--${flag} ${key}=<port>` : `--${flag}`
  })
}
