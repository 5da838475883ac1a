/**
 * Which request-header family the backend reads and which one the app's SDK sends. Stack Auth's
 * backend before the Hexclave rename (dev 2f719903b) reads only `x-stack-*`; the SDK from
 * `@stackframe/js` 2.8.108 on sends only `X-Hexclave-*`. Such a pair does not talk: every SDK call
 * is answered ACCESS_TYPE_REQUIRED. This finds that out once per acquire, so the user reads one
 * line naming both sides and the fix instead of a test suite failing call by call.
 */
import fs from 'node:fs'
import { createRequire } from 'node:module'
import path from 'node:path'
import { httpRequest } from '../http.js'

/** What a backend reads: only `x-stack-*` (before the rename), or both spellings (after it). */
export type BackendHeaders = 'x-stack' | 'both'
/** What an SDK sends. */
export type SdkHeaders = 'x-stack' | 'x-hexclave'

/**
 * Asks the backend once, with no keys: `GET /api/v1/projects/current` carrying only
 * `X-Hexclave-Access-Type: client`. A backend that reads the x-hexclave spelling sees an access
 * type without a project id and answers ACCESS_TYPE_WITHOUT_PROJECT_ID; one that reads only
 * x-stack-* sees no access type at all, and the route, which needs one, answers
 * ACCESS_TYPE_REQUIRED. Both are thrown before any project is looked up. Sources, Stack Auth at
 * 2f719903b: `parseAuth` in apps/backend/src/route-handlers/smart-request.tsx (the header reads and
 * the order of those two checks; a request without an access type gets auth null, which
 * `validate` there turns into ACCESS_TYPE_REQUIRED) and
 * apps/backend/src/app/api/latest/projects/current/route.tsx (a CRUD read, client access or more).
 * Undefined when the answer is neither (not a Stack Auth backend, unreachable, slow).
 */
export async function backendHeaderFamily(backendUrl: string, timeoutMs = 5000): Promise<BackendHeaders | undefined> {
  let text: string
  try {
    const url = `${backendUrl.replace(/\/+$/, '')}/api/v1/projects/current`
    text = (await httpRequest(url, { headers: { 'x-hexclave-access-type': 'client' }, timeoutMs })).text
  } catch {
    return undefined
  }
  let code: unknown
  try {
    code = (JSON.parse(text) as { code?: unknown }).code
  } catch {
    return undefined
  }
  return code === 'ACCESS_TYPE_WITHOUT_PROJECT_ID' ? 'both' : code === 'ACCESS_TYPE_REQUIRED' ? 'x-stack' : undefined
}

/**
 * The first published version whose SDK sends `X-Hexclave-*`. Established from the published
 * packages: `@stackframe/stack-shared` (where `sendClientRequestInner` builds the headers, in
 * dist/interface/client-interface.js) sends `X-Stack-*` up to 2.8.102 and `X-Hexclave-*` from
 * 2.8.108, with no version published in between; `@stackframe/js`, `@stackframe/stack` and
 * `@stackframe/react` pin the stack-shared of their own version. Stack Auth's repository up to dev
 * 2f719903b (version 2.8.86) has only `X-Stack-*`.
 */
export const FIRST_HEXCLAVE_VERSION = '2.8.108'
/** The newest published version of each SDK that still sends `x-stack-*` (what to pin to). */
const LAST_X_STACK_VERSION: Record<string, string> = { '@stackframe/js': '2.8.102', '@stackframe/stack': '2.8.102', '@stackframe/react': '2.8.89' }
const STACKFRAME_SDKS = ['@stackframe/js', '@stackframe/stack', '@stackframe/react']

export interface InstalledSdk {
  name: string
  version: string
  headers: SdkHeaders
  /** The package's folder, as Node resolves it from the project root. */
  dir: string
}

/**
 * Every Stack Auth SDK that Node would load from `projectRoot` (`@stackframe/js`,
 * `@stackframe/stack`, `@stackframe/react`, any `@hexclave/*`), the nearest node_modules first,
 * with the header family its version sends. Package folders are found the way `require` looks
 * (not through `require.resolve`, which a package's `exports` may refuse for package.json).
 */
export function installedSdks(projectRoot: string): InstalledSdk[] {
  const lookup = createRequire(path.join(path.resolve(projectRoot), 'package.json')).resolve.paths('@stackframe/js') ?? []
  const found: InstalledSdk[] = []
  const add = (name: string, dir: string): boolean => {
    const version = readVersion(dir)
    if (version === undefined) return false
    const headers = name.startsWith('@hexclave/') ? 'x-hexclave' : headersOfVersion(version)
    if (headers) found.push({ name, version, headers, dir })
    return true
  }
  for (const name of STACKFRAME_SDKS) lookup.some((modules) => add(name, path.join(modules, name)))
  const hexclave = new Set<string>()
  for (const modules of lookup) {
    for (const entry of safeReaddir(path.join(modules, '@hexclave'))) {
      const name = `@hexclave/${entry}`
      if (!hexclave.has(name) && add(name, path.join(modules, '@hexclave', entry))) hexclave.add(name)
    }
  }
  return found
}

/**
 * The SDK whose headers decide whether the app talks to the backend: the first installed one that
 * sends `X-Hexclave-*` (the only family an old backend refuses), else the first found; undefined
 * when the project has none.
 */
export function installedSdkHeaderFamily(projectRoot: string): InstalledSdk | undefined {
  const sdks = installedSdks(projectRoot)
  return sdks.find((sdk) => sdk.headers === 'x-hexclave') ?? sdks[0]
}

/**
 * One line when the SDK and the backend do not talk (an SDK sending only `X-Hexclave-*`, a backend
 * reading only `x-stack-*`), naming both and the fix; undefined otherwise, or when either is unknown.
 */
export function headerMismatchWarning(backend: BackendHeaders | undefined, sdk: InstalledSdk | undefined, image: string): string | undefined {
  if (backend !== 'x-stack' || sdk?.headers !== 'x-hexclave') return undefined
  const pin = LAST_X_STACK_VERSION[sdk.name]
  const pinFix = pin
    ? `pin the SDK to ${pin} (npm install ${sdk.name}@${pin}), the last release before the rename`
    : `use @stackframe/js, @stackframe/stack or @stackframe/react older than ${FIRST_HEXCLAVE_VERSION} in its place`
  return (
    `${sdk.name} ${sdk.version} sends only X-Hexclave-* headers, but the backend of image ${image} reads only x-stack-* ` +
    `(Stack Auth before the Hexclave rename), so every SDK call will fail with ACCESS_TYPE_REQUIRED: ${pinFix}, ` +
    'or pull an image built after the rename (stack-emulator image pull).'
  )
}

/** Both checks and the warning, for acquire(): undefined when they match or either side is unknown. */
export async function headerGenerationWarning(backendUrl: string, projectRoot: string, image: string): Promise<string | undefined> {
  const sdk = installedSdkHeaderFamily(projectRoot)
  if (sdk?.headers !== 'x-hexclave' || !backendUrl) return undefined // nothing an old backend would refuse: no request
  return headerMismatchWarning(await backendHeaderFamily(backendUrl), sdk, image)
}

function headersOfVersion(version: string): SdkHeaders | undefined {
  const parts = /^(\d+)\.(\d+)\.(\d+)/.exec(version)?.slice(1).map(Number)
  const first = FIRST_HEXCLAVE_VERSION.split('.').map(Number)
  if (!parts) return undefined
  for (let i = 0; i < 3; i++) if (parts[i] !== first[i]) return parts[i]! > first[i]! ? 'x-hexclave' : 'x-stack'
  return 'x-hexclave'
}

function readVersion(dir: string): string | undefined {
  try {
    const version = (JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')) as { version?: unknown }).version
    return typeof version === 'string' ? version : undefined
  } catch {
    return undefined
  }
}

function safeReaddir(dir: string): string[] {
  try {
    return fs.readdirSync(dir).sort()
  } catch {
    return []
  }
}
