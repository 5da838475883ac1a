/**
 * Every environment variable the package reads, in one place (the README lists the same), read
 * once in the client and sent to the supervisor in its config file. A driver's own variables are
 * read and checked by its module (drivers/<driver>/settings.ts) from `env`: this file, at the
 * bottom of the layers, names no driver and imports none.
 */
import os from 'node:os'
import path from 'node:path'
import { StackEmulatorError } from './errors.js'

export interface Settings {
  /** Root of instance state (locks, sockets, overlays, logs). */
  stateRoot: string
  /** Root of built images and captured snapshots; survives instances. */
  cacheRoot: string
  /** Default instance name. */
  name: string
  /** Image: `fixture`, `stack-auth[@<tag>]` or a manifest path; unset for the built fixture image. */
  image: string | undefined
  /** Base URL of GitHub's REST API (or a mirror of its release routes) that images are pulled from. */
  releasesUrl: string
  /**
   * A pull fails as stalled when fewer than 64 kB arrive within this long (a silent server, or a
   * drip); the part file is kept for the next pull to resume. STACK_EMULATOR_PULL_IDLE_TIMEOUT, in
   * seconds. @default 60000
   */
  pullIdleTimeoutMs: number
  /**
   * How much goes to stderr (STACK_EMULATOR_LOG): `quiet`, errors and one summary line; `info`,
   * also progress and one-line notes; `debug`, also the driver's command lines (into the
   * supervisor log). STACK_EMULATOR_DEBUG set, with no STACK_EMULATOR_LOG, means `debug`. @default 'info'
   */
  logLevel: LogLevel
  /** logLevel is `debug`: the driver's command lines go into the supervisor log. */
  debug: boolean
  /** Default driver (STACK_EMULATOR_DRIVER), as given: the client checks it against the drivers' names (client/options.ts). */
  driver: string | undefined
  /** External driver: base URL per service, from STACK_EMULATOR_<SERVICE>_URL. */
  urls: Record<string, string>
  /** External driver: the internal project's publishable key (STACK_EMULATOR_INTERNAL_KEY). */
  internalKey: string | undefined
  /** Every STACK_EMULATOR_* variable, for the drivers' own settings (the QEMU driver's binary, accelerator and seeded-snapshot bound). */
  env: Record<string, string>
}

export function readSettings(env: NodeJS.ProcessEnv = process.env): Settings {
  const home = env.STACK_EMULATOR_HOME
  const xdgState = env.XDG_STATE_HOME || path.join(os.homedir(), '.local', 'state')
  const xdgCache = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache')
  return {
    stateRoot: home ? path.join(home, 'state') : path.join(xdgState, 'stack-emulator'),
    cacheRoot: env.STACK_EMULATOR_CACHE_DIR || (home ? path.join(home, 'cache') : path.join(xdgCache, 'stack-emulator')),
    name: env.STACK_EMULATOR_NAME || 'default',
    image: env.STACK_EMULATOR_IMAGE || undefined,
    releasesUrl: releasesUrl(env.STACK_EMULATOR_RELEASES_URL),
    pullIdleTimeoutMs: pullIdleTimeoutMs(env.STACK_EMULATOR_PULL_IDLE_TIMEOUT),
    logLevel: readLogLevel(env),
    debug: readLogLevel(env) === 'debug',
    driver: env.STACK_EMULATOR_DRIVER || undefined,
    urls: Object.fromEntries(
      Object.entries(env)
        .filter(([key, value]) => /^STACK_EMULATOR_[A-Z0-9_]+_URL$/.test(key) && key !== 'STACK_EMULATOR_RELEASES_URL' && value)
        .map(([key, value]) => [key.slice('STACK_EMULATOR_'.length, -'_URL'.length).toLowerCase().replace(/_/g, '-'), value!]),
    ),
    internalKey: env.STACK_EMULATOR_INTERNAL_KEY || undefined,
    env: Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[0].startsWith('STACK_EMULATOR_') && entry[1] !== undefined)),
  }
}

export type LogLevel = 'quiet' | 'info' | 'debug'
const LOG_LEVELS: readonly LogLevel[] = ['quiet', 'info', 'debug']

/** STACK_EMULATOR_LOG (else `debug` when STACK_EMULATOR_DEBUG is set), on its own: log.ts reads it for every line. */
export function readLogLevel(env: NodeJS.ProcessEnv = process.env): LogLevel {
  const value = env.STACK_EMULATOR_LOG?.toLowerCase()
  if (!value) return env.STACK_EMULATOR_DEBUG ? 'debug' : 'info'
  if (!(LOG_LEVELS as string[]).includes(value)) {
    throw new StackEmulatorError(`STACK_EMULATOR_LOG must be one of ${LOG_LEVELS.join(', ')}; got ${JSON.stringify(env.STACK_EMULATOR_LOG)}`, {
      code: 'BAD_OPTION',
      fix: 'Unset it for info.',
    })
  }
  return value as LogLevel
}

const GITHUB_API = 'https://api.github.com'

function releasesUrl(value: string | undefined): string {
  if (!value) return GITHUB_API
  const url = URL.canParse(value) ? new URL(value) : undefined
  if (!url || !/^https?:$/.test(url.protocol) || url.username || url.password || url.search || url.hash) {
    throw new StackEmulatorError(`STACK_EMULATOR_RELEASES_URL must be an http(s) URL without credentials or query; got ${JSON.stringify(value)}`, {
      code: 'BAD_OPTION',
      fix: `Unset it for ${GITHUB_API}, or set it to the base URL of a mirror of GitHub's release API (e.g. http://127.0.0.1:8080).`,
    })
  }
  return url.href.replace(/\/+$/, '')
}

const PULL_IDLE_TIMEOUT_MS = 60_000

function pullIdleTimeoutMs(value: string | undefined): number {
  if (!value) return PULL_IDLE_TIMEOUT_MS
  const seconds = Number(value)
  if (!Number.isFinite(seconds) || seconds <= 0) {
    throw new StackEmulatorError(`STACK_EMULATOR_PULL_IDLE_TIMEOUT must be a number of seconds above 0; got ${JSON.stringify(value)}`, {
      code: 'BAD_OPTION',
      fix: `Unset it for ${PULL_IDLE_TIMEOUT_MS / 1000} s, or raise it for a slow link (e.g. 300).`,
    })
  }
  return Math.ceil(seconds * 1000)
}

/**
 * GITHUB_TOKEN, sent only to the release API's origin. Kept out of Settings on purpose: Settings
 * is written to the supervisor's config file, and the token must never be written anywhere.
 */
export function githubToken(env: NodeJS.ProcessEnv = process.env): string | undefined {
  return env.GITHUB_TOKEN || undefined
}

/** The proxies a pull goes through, undici's EnvHttpProxyAgent options ('' = none), lower-case names first as curl reads them. */
export interface ProxySettings {
  httpProxy: string
  httpsProxy: string
  noProxy: string
}

/** HTTP_PROXY, HTTPS_PROXY, NO_PROXY: kept out of Settings for the same reason as the token (a proxy URL may hold a password). */
export function proxySettings(env: NodeJS.ProcessEnv = process.env): ProxySettings {
  const read = (name: string) => env[name.toLowerCase()] || env[name] || ''
  return { httpProxy: read('HTTP_PROXY'), httpsProxy: read('HTTPS_PROXY'), noProxy: read('NO_PROXY') }
}
