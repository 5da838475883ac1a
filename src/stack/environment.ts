/**
 * The environment variables handed to tests and apps: every name Stack Auth's JS SDKs read for the
 * API URL, the project id, the keys and the local-emulator flag, plus the emulator's own.
 *
 * Every name the SDK reads is set, in both spellings, because the integrations merge this env into
 * process.env and `stack-emulator exec` hands it to a child on top of the parent's environment: a
 * name left out is a name a developer's shell or .env can fill with a real project's values. See
 * docs/stack-auth-contract.md for where each name comes from and the SDK's precedence.
 */
export interface StackCredentials {
  projectId: string
  publishableClientKey: string
  secretServerKey: string
  superSecretAdminKey: string
  /** The config file's content as the backend read it (`branch_config_override_string`), when it says. */
  branchConfigOverride?: string
}

export interface ServiceUrls {
  [service: string]: string
}

type EnvValue = 'apiUrl' | 'projectId' | 'publishableClientKey' | 'secretServerKey' | 'superSecretAdminKey' | 'localEmulator' | 'extraRequestHeaders'

/**
 * The SDK reads each name first as HEXCLAVE (the rebrand) and then as STACK: `{B}` stands for both.
 * A HEXCLAVE name that is set, even to '', hides its STACK twin, so both are always written.
 */
const BRANDS = ['HEXCLAVE', 'STACK'] as const

/** Framework prefixes that put a variable in client bundles. Secret keys never get one. */
const PUBLIC_PREFIXES = ['NEXT_PUBLIC_', 'VITE_', 'EXPO_PUBLIC_'] as const

const withEveryPrefix = (name: string): string[] => ['', ...PUBLIC_PREFIXES].map((prefix) => prefix + name)

/** The names, by the value they carry. Sources: packages/template/src/lib/env.ts and getBaseUrl() etc. in .../implementations/common.ts. */
const SDK_ENV: ReadonlyArray<{ value: EnvValue; names: readonly string[] }> = [
  // getBaseUrl() in a browser looks at these first...
  { value: 'apiUrl', names: ['NEXT_PUBLIC_BROWSER_{B}_API_URL', 'NEXT_PUBLIC_{B}_API_URL_BROWSER', '{B}_API_URL_BROWSER'] },
  // ...and on a server at these...
  { value: 'apiUrl', names: ['NEXT_PUBLIC_SERVER_{B}_API_URL', 'NEXT_PUBLIC_{B}_API_URL_SERVER', '{B}_API_URL_SERVER'] },
  // ...then NEXT_PUBLIC_{B}_API_URL, {B}_API_URL and the legacy NEXT_PUBLIC_{B}_URL. The SDK itself
  // reads no VITE_/EXPO_PUBLIC_ names; apps and Stack's own `emulator run` pass those in by hand.
  { value: 'apiUrl', names: [...withEveryPrefix('{B}_API_URL'), 'NEXT_PUBLIC_{B}_URL'] },
  // getDefaultProjectId(): NEXT_PUBLIC_ first, then unprefixed; the same for the publishable key.
  { value: 'projectId', names: withEveryPrefix('{B}_PROJECT_ID') },
  { value: 'publishableClientKey', names: withEveryPrefix('{B}_PUBLISHABLE_CLIENT_KEY') },
  // Server-only: read without a prefix only.
  { value: 'secretServerKey', names: ['{B}_SECRET_SERVER_KEY'] },
  { value: 'superSecretAdminKey', names: ['{B}_SUPER_SECRET_ADMIN_KEY'] },
  // Read with the NEXT_PUBLIC_ prefix only (by the SDK's dev tool).
  { value: 'localEmulator', names: ['NEXT_PUBLIC_{B}_IS_LOCAL_EMULATOR'] },
  // JSON headers the SDK spreads over its own on every request: a parent's could carry another
  // project's X-Hexclave-Project-Id or keys, so they are pinned to none.
  { value: 'extraRequestHeaders', names: ['NEXT_PUBLIC_{B}_EXTRA_REQUEST_HEADERS', '{B}_EXTRA_REQUEST_HEADERS'] },
]

// Left alone, as none of them can send a request to another project: NEXT_PUBLIC_HEXCLAVE_PORT_PREFIX
// only fills a `${NEXT_PUBLIC_HEXCLAVE_PORT_PREFIX:-81}` placeholder in an API URL (ours has none);
// the hosted-handler names apply only to an app that opts into hosted pages; the Stripe and
// bot-challenge keys are browser widgets' keys. test/unit/environment.test.ts holds the installed
// SDK's env module to this.

/**
 * An image without a backend has no API URL to give. An empty value would not do: the SDK treats
 * '' as unset and falls back to the hosted API. A name in the reserved .invalid domain never
 * resolves, so a request fails at once.
 */
const NO_BACKEND_URL = 'http://no-backend.invalid'

/**
 * Without credentials (configFile: false) the id and key names are set to '' rather than left out.
 * Left out, a parent's value would come through: Object.assign(process.env, env) keeps names it
 * does not mention, execa extends process.env, and dotenv-style .env loading (Next.js, Vite) only
 * fills names that are absent. '' is present, so it blocks all of these and hides the STACK twin
 * (the SDK reads `HEXCLAVE_X ?? STACK_X`), and then the SDK's `||` chain treats it as missing: with
 * no explicit option it throws "you haven't provided a project ID" / "No secret server key provided"
 * instead of sending a request anywhere.
 */
export function emulatorEnv(name: string, urls: ServiceUrls, credentials?: StackCredentials): Record<string, string> {
  const values: Record<EnvValue, string> = {
    apiUrl: urls.backend ?? NO_BACKEND_URL,
    projectId: credentials?.projectId ?? '',
    publishableClientKey: credentials?.publishableClientKey ?? '',
    secretServerKey: credentials?.secretServerKey ?? '',
    superSecretAdminKey: credentials?.superSecretAdminKey ?? '',
    localEmulator: 'true',
    extraRequestHeaders: '{}',
  }
  const env: Record<string, string> = { STACK_EMULATOR_NAME: name }
  // A service named mock-oauth becomes STACK_EMULATOR_MOCK_OAUTH_URL: a shell can name it.
  for (const [service, url] of Object.entries(urls)) env[`STACK_EMULATOR_${service.toUpperCase().replace(/-/g, '_')}_URL`] = url
  for (const { value, names } of SDK_ENV) {
    for (const template of names) for (const brand of BRANDS) env[template.replace('{B}', brand)] = values[value]
  }
  return env
}
