import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { emulatorEnv } from '../../src/stack/environment.js'

const URLS = { backend: 'http://127.0.0.1:1', dashboard: 'http://127.0.0.1:2' }
const CREDENTIALS = { projectId: 'p1', publishableClientKey: 'pck_1', secretServerKey: 'ssk_1', superSecretAdminKey: 'sak_1' }
const PUBLIC_PREFIXES = ['NEXT_PUBLIC_', 'VITE_', 'EXPO_PUBLIC_']

/** Written out by hand from the SDK's env module (see docs/stack-auth-contract.md), not derived from the code under test. */
const SDK_READS = {
  apiUrl: [
    'NEXT_PUBLIC_BROWSER_HEXCLAVE_API_URL',
    'NEXT_PUBLIC_BROWSER_STACK_API_URL',
    'NEXT_PUBLIC_HEXCLAVE_API_URL_BROWSER',
    'NEXT_PUBLIC_STACK_API_URL_BROWSER',
    'HEXCLAVE_API_URL_BROWSER',
    'STACK_API_URL_BROWSER',
    'NEXT_PUBLIC_SERVER_HEXCLAVE_API_URL',
    'NEXT_PUBLIC_SERVER_STACK_API_URL',
    'NEXT_PUBLIC_HEXCLAVE_API_URL_SERVER',
    'NEXT_PUBLIC_STACK_API_URL_SERVER',
    'HEXCLAVE_API_URL_SERVER',
    'STACK_API_URL_SERVER',
    'NEXT_PUBLIC_HEXCLAVE_API_URL',
    'NEXT_PUBLIC_STACK_API_URL',
    'HEXCLAVE_API_URL',
    'STACK_API_URL',
    'NEXT_PUBLIC_HEXCLAVE_URL',
    'NEXT_PUBLIC_STACK_URL',
  ],
  projectId: ['NEXT_PUBLIC_HEXCLAVE_PROJECT_ID', 'NEXT_PUBLIC_STACK_PROJECT_ID', 'HEXCLAVE_PROJECT_ID', 'STACK_PROJECT_ID'],
  publishableClientKey: [
    'NEXT_PUBLIC_HEXCLAVE_PUBLISHABLE_CLIENT_KEY',
    'NEXT_PUBLIC_STACK_PUBLISHABLE_CLIENT_KEY',
    'HEXCLAVE_PUBLISHABLE_CLIENT_KEY',
    'STACK_PUBLISHABLE_CLIENT_KEY',
  ],
  secretServerKey: ['HEXCLAVE_SECRET_SERVER_KEY', 'STACK_SECRET_SERVER_KEY'],
  superSecretAdminKey: ['HEXCLAVE_SUPER_SECRET_ADMIN_KEY', 'STACK_SUPER_SECRET_ADMIN_KEY'],
  localEmulator: ['NEXT_PUBLIC_HEXCLAVE_IS_LOCAL_EMULATOR', 'NEXT_PUBLIC_STACK_IS_LOCAL_EMULATOR'],
  extraRequestHeaders: [
    'NEXT_PUBLIC_HEXCLAVE_EXTRA_REQUEST_HEADERS',
    'NEXT_PUBLIC_STACK_EXTRA_REQUEST_HEADERS',
    'HEXCLAVE_EXTRA_REQUEST_HEADERS',
    'STACK_EXTRA_REQUEST_HEADERS',
  ],
}

/**
 * Names the SDK reads that the emulator leaves to the app, as none can point a request at another
 * project (see src/stack/environment.ts): the port prefix fills a placeholder our URL lacks, the
 * rest are hosted pages an app opts into, browser widgets' keys, and NODE_ENV.
 */
const LEFT_ALONE = [
  'NEXT_PUBLIC_HEXCLAVE_PORT_PREFIX',
  'NODE_ENV',
  ...[
    'HOSTED_HANDLER_DOMAIN_SUFFIX',
    'HOSTED_HANDLER_URL_TEMPLATE',
    'STRIPE_PUBLISHABLE_KEY',
    'BOT_CHALLENGE_SITE_KEY',
    'BOT_CHALLENGE_INVISIBLE_SITE_KEY',
  ].flatMap((name) => [`NEXT_PUBLIC_HEXCLAVE_${name}`, `NEXT_PUBLIC_STACK_${name}`]),
]

/** The framework-prefixed copies apps read themselves (import.meta.env.VITE_..., EXPO_PUBLIC_...). */
const APP_READS = {
  apiUrl: ['VITE_HEXCLAVE_API_URL', 'VITE_STACK_API_URL', 'EXPO_PUBLIC_HEXCLAVE_API_URL', 'EXPO_PUBLIC_STACK_API_URL'],
  projectId: ['VITE_HEXCLAVE_PROJECT_ID', 'VITE_STACK_PROJECT_ID', 'EXPO_PUBLIC_HEXCLAVE_PROJECT_ID', 'EXPO_PUBLIC_STACK_PROJECT_ID'],
  publishableClientKey: [
    'VITE_HEXCLAVE_PUBLISHABLE_CLIENT_KEY',
    'VITE_STACK_PUBLISHABLE_CLIENT_KEY',
    'EXPO_PUBLIC_HEXCLAVE_PUBLISHABLE_CLIENT_KEY',
    'EXPO_PUBLIC_STACK_PUBLISHABLE_CLIENT_KEY',
  ],
}

const ALL_NAMES = [...Object.values(SDK_READS), ...Object.values(APP_READS)].flat()

/** The SDK's resolution: each getter is `HEXCLAVE_X ?? STACK_X`, and the getters are chained with `||`. */
function sdkResolve(env: Record<string, string | undefined>) {
  const read = (stackName: string) => env[stackName.replace('STACK', 'HEXCLAVE')] ?? env[stackName]
  const first = (...stackNames: string[]) => stackNames.map(read).find(Boolean)
  const apiUrl = (side: 'BROWSER' | 'SERVER') =>
    first(
      `NEXT_PUBLIC_${side}_STACK_API_URL`,
      `NEXT_PUBLIC_STACK_API_URL_${side}`,
      `STACK_API_URL_${side}`,
      'NEXT_PUBLIC_STACK_API_URL',
      'STACK_API_URL',
      'NEXT_PUBLIC_STACK_URL',
    )
  return {
    browserApiUrl: apiUrl('BROWSER'),
    serverApiUrl: apiUrl('SERVER'),
    projectId: first('NEXT_PUBLIC_STACK_PROJECT_ID', 'STACK_PROJECT_ID'),
    publishableClientKey: first('NEXT_PUBLIC_STACK_PUBLISHABLE_CLIENT_KEY', 'STACK_PUBLISHABLE_CLIENT_KEY'),
    secretServerKey: first('STACK_SECRET_SERVER_KEY'),
    superSecretAdminKey: first('STACK_SUPER_SECRET_ADMIN_KEY'),
    extraRequestHeaders: JSON.parse(first('NEXT_PUBLIC_STACK_EXTRA_REQUEST_HEADERS', 'STACK_EXTRA_REQUEST_HEADERS') ?? '{}'),
  }
}

/** A developer's shell or .env pointing at a real project, under every name. */
const REAL_PARENT: Record<string, string> = Object.fromEntries(
  ALL_NAMES.map((name) => [
    name,
    /API_URL|_URL$/.test(name) ? 'https://real.example' : /EXTRA_REQUEST_HEADERS/.test(name) ? '{"X-Hexclave-Project-Id":"real-project"}' : 'real-project',
  ]),
)

describe('emulatorEnv', () => {
  const env = emulatorEnv('e2e', URLS, CREDENTIALS)

  it("sets every name the SDK and apps read, with the emulator's values", () => {
    const expected: Record<string, string> = {
      apiUrl: URLS.backend,
      projectId: 'p1',
      publishableClientKey: 'pck_1',
      secretServerKey: 'ssk_1',
      superSecretAdminKey: 'sak_1',
      localEmulator: 'true',
      extraRequestHeaders: '{}',
    }
    for (const [value, names] of [...Object.entries(SDK_READS), ...Object.entries(APP_READS)]) {
      for (const name of names) expect(env[name], name).toBe(expected[value])
    }
  })

  it("keeps the emulator's own names", () => {
    expect(env).toMatchObject({ STACK_EMULATOR_NAME: 'e2e', STACK_EMULATOR_BACKEND_URL: URLS.backend, STACK_EMULATOR_DASHBOARD_URL: URLS.dashboard })
  })

  it('gives every HEXCLAVE name a STACK twin with the same value, and the other way round', () => {
    const sdkNames = Object.keys(env).filter((name) => !name.startsWith('STACK_EMULATOR_'))
    for (const name of sdkNames) {
      const twin = name.includes('HEXCLAVE') ? name.replace('HEXCLAVE', 'STACK') : name.replace('STACK', 'HEXCLAVE')
      expect(env[twin], `${name} -> ${twin}`).toBe(env[name])
    }
  })

  it('never puts a secret key under a public prefix', () => {
    const publicNames = Object.keys(env).filter((name) => PUBLIC_PREFIXES.some((prefix) => name.startsWith(prefix)))
    expect(publicNames.length).toBeGreaterThan(0)
    for (const name of publicNames) {
      expect(name).not.toMatch(/SECRET|ADMIN_KEY/)
      expect([CREDENTIALS.secretServerKey, CREDENTIALS.superSecretAdminKey]).not.toContain(env[name])
    }
  })

  it('wins over a parent environment that holds a real project under every name', () => {
    const merged = { ...REAL_PARENT, ...env }
    for (const name of ALL_NAMES) expect(merged[name], name).not.toMatch(/real/)
    expect(sdkResolve(merged)).toEqual({
      browserApiUrl: URLS.backend,
      serverApiUrl: URLS.backend,
      projectId: 'p1',
      publishableClientKey: 'pck_1',
      secretServerKey: 'ssk_1',
      superSecretAdminKey: 'sak_1',
      extraRequestHeaders: {},
    })
  })

  it('wins over a parent HEXCLAVE_PROJECT_ID, which the SDK prefers to every STACK name', () => {
    const merged: Record<string, string> = { HEXCLAVE_PROJECT_ID: 'real-project', ...env }
    for (const name of [...SDK_READS.projectId, ...APP_READS.projectId]) expect(merged[name], name).toBe('p1')
    expect(sdkResolve(merged).projectId).toBe('p1')
  })

  it("without credentials, blanks the id and key names so the SDK finds none instead of a parent's", () => {
    const merged = { ...REAL_PARENT, ...emulatorEnv('e2e', URLS) }
    const idAndKeys = [
      SDK_READS.projectId,
      SDK_READS.publishableClientKey,
      SDK_READS.secretServerKey,
      SDK_READS.superSecretAdminKey,
      APP_READS.projectId,
      APP_READS.publishableClientKey,
    ].flat()
    for (const name of idAndKeys) expect(merged[name], name).toBe('')
    expect(sdkResolve(merged)).toEqual({
      browserApiUrl: URLS.backend,
      serverApiUrl: URLS.backend,
      projectId: undefined,
      publishableClientKey: undefined,
      secretServerKey: undefined,
      superSecretAdminKey: undefined,
      extraRequestHeaders: {},
    })
    expect(merged.NEXT_PUBLIC_HEXCLAVE_IS_LOCAL_EMULATOR).toBe('true')
  })

  it('without a backend, points the API URL names at a host that cannot resolve rather than leaving them to the parent', () => {
    const merged = { ...REAL_PARENT, ...emulatorEnv('e2e', {}) }
    for (const name of [...SDK_READS.apiUrl, ...APP_READS.apiUrl]) expect(new URL(merged[name]!).hostname, name).toMatch(/\.invalid$/)
  })
})

describe("the installed SDK's env module", () => {
  // @stackframe/js's dist/esm/lib/env.js: one getter per name, each a literal process.env.X (its doc comment left out).
  const require = createRequire(import.meta.url)
  const envModule = path.join(path.dirname(require.resolve('@stackframe/js')), 'esm/lib/env.js')
  const read = [
    ...new Set(
      [
        ...fs
          .readFileSync(envModule, 'utf8')
          .replace(/\/\*[\s\S]*?\*\//g, '')
          .matchAll(/process\.env\.([A-Z0-9_]+)/g),
      ].map((m) => m[1]!),
    ),
  ]

  it('reads only names the emulator sets or leaves alone on purpose', () => {
    expect(read.length).toBeGreaterThan(30)
    const env = emulatorEnv('e2e', URLS, CREDENTIALS)
    expect(read.filter((name) => !(name in env) && !LEFT_ALONE.includes(name))).toEqual([])
  })

  it("reads every name the emulator claims it reads (the list above is the SDK's, not a guess)", () => {
    expect(
      Object.values(SDK_READS)
        .flat()
        .filter((name) => !read.includes(name)),
    ).toEqual([])
  })
})

describe("the emulator's own names", () => {
  it("name each service's URL in a form a shell can use, and the instance", () => {
    const env = emulatorEnv('e2e', { ...URLS, 'mock-oauth': 'http://127.0.0.1:8114' }, CREDENTIALS)
    expect(env).toMatchObject({ STACK_EMULATOR_MOCK_OAUTH_URL: 'http://127.0.0.1:8114', STACK_EMULATOR_BACKEND_URL: URLS.backend, STACK_EMULATOR_NAME: 'e2e' })
    expect(Object.keys(env).every((name) => /^[A-Z_][A-Z0-9_]*$/.test(name))).toBe(true)
  })
})
