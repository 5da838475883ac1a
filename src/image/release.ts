/**
 * GitHub's release API, as Stack Auth's CLI uses it: the release of a tag, its asset for an
 * architecture, and GET requests that follow redirects themselves so that GITHUB_TOKEN goes to
 * the API's origin only, never to the file host a redirect points at. Every request goes through
 * HTTP(S)_PROXY unless NO_PROXY names the host (undici's EnvHttpProxyAgent).
 */
import { EnvHttpProxyAgent, request, type Dispatcher } from 'undici'
import { StackEmulatorError } from '../errors.js'
import type { ProxySettings } from '../settings.js'
import { RELEASE_REPO, assetName, type Arch } from './names.js'

export interface Api {
  /** Base URL, e.g. https://api.github.com (STACK_EMULATOR_RELEASES_URL). */
  base: string
  token: string | undefined
  /** Where requests go: through the proxies of `proxyDispatcher`. */
  dispatcher: Dispatcher
}

/** One pull's connections, through the proxies the environment names; closed by its caller. */
export function proxyDispatcher(proxy: ProxySettings): Dispatcher {
  return new EnvHttpProxyAgent(proxy)
}

export interface ReleaseAsset {
  tag: string
  name: string
  size: number
  /** The asset's API URL: answers with a redirect to the file. */
  url: string
  updatedAt: string
  /** The stack-auth/stack-auth commit the release says it was built from (releaseCommit), if it says. */
  commit?: ReleaseCommit
}

/** An upstream commit (lower-case hex, 7 to 40 digits) and where the release said it. */
export interface ReleaseCommit {
  sha: string
  from: 'tag' | 'body' | 'target_commitish'
}

const MAX_REDIRECTS = 5

/** GET `url`, following redirects; the token rides only on requests to the API's origin. */
export async function get(url: string, headers: Record<string, string>, api: Api, timeoutMs: number): Promise<Dispatcher.ResponseData & { url: string }> {
  const origin = new URL(api.base).origin
  for (let hop = 0; ; hop++) {
    const auth: Record<string, string> = api.token && new URL(url).origin === origin ? { authorization: `Bearer ${api.token}` } : {}
    const response = await request(url, {
      dispatcher: api.dispatcher,
      headers: { 'user-agent': 'stack-emulator', ...headers, ...auth },
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
    }).catch((error: unknown) => {
      throw unreachable(url, error)
    })
    const location = response.headers.location
    if (![301, 302, 303, 307, 308].includes(response.statusCode) || typeof location !== 'string' || hop === MAX_REDIRECTS) return { ...response, url }
    await response.body.dump()
    url = new URL(location, url).href
  }
}

/**
 * Offline, refused, timed out: one line naming what was tried and the fix. Never the token, nor
 * a redirect's query (a file host's signed URL).
 */
function unreachable(url: string, error: unknown): StackEmulatorError {
  const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message
  return new StackEmulatorError(`Cannot reach ${url.split('?')[0]} (${reason})`, {
    code: 'PULL_FAILED',
    fix: "Check the network (and any proxy), set STACK_EMULATOR_RELEASES_URL to a reachable mirror of GitHub's release API, or point --image at the manifest.json of an image you already have.",
    cause: error,
  })
}

/** The asset `stack-emulator-<arch>.qcow2` of release `tag`. */
export async function findAsset(api: Api, tag: string, arch: Arch): Promise<ReleaseAsset> {
  const url = `${api.base}/repos/${RELEASE_REPO}/releases/tags/${tag}`
  const response = await get(url, { accept: 'application/vnd.github+json', 'x-github-api-version': '2022-11-28' }, api, 30_000)
  const text = await response.body.text().catch((error: unknown) => {
    throw unreachable(url, error)
  })
  let body: { message?: unknown; tag_name?: unknown; assets?: unknown; body?: unknown; target_commitish?: unknown } | undefined
  try {
    body = JSON.parse(text) as typeof body
  } catch {
    body = undefined
  }
  const said = typeof body?.message === 'string' ? `: ${body.message.replace(/\s+/g, ' ').slice(0, 200)}` : ''
  if (response.statusCode === 404) {
    throw new StackEmulatorError(`No release ${tag} in ${RELEASE_REPO} (404 from ${url})`, {
      code: 'PULL_FAILED',
      fix: "Check the tag: emulator-<branch>-latest (--branch, default dev) or an immutable emulator-<branch>-<YYYYMMDD>-<sha8> (--tag) listed on the repository's releases page; with a mirror, check STACK_EMULATOR_RELEASES_URL.",
    })
  }
  if (response.statusCode !== 200 || !Array.isArray(body?.assets)) {
    const limited = response.statusCode === 403 || response.statusCode === 429
    throw new StackEmulatorError(`The release API answered ${response.statusCode}${said} for ${url}`, {
      code: 'PULL_FAILED',
      fix:
        response.statusCode === 401
          ? 'GITHUB_TOKEN was refused: renew it or unset it.'
          : limited
            ? "Set GITHUB_TOKEN to raise GitHub's rate limit, or try again later."
            : 'Try again later, or set STACK_EMULATOR_RELEASES_URL to a mirror.',
    })
  }
  const name = assetName(arch)
  const assets = body.assets as { name?: unknown; size?: unknown; url?: unknown; updated_at?: unknown }[]
  const asset = assets.find((a) => a?.name === name)
  if (!asset) {
    throw new StackEmulatorError(`Release ${tag} has no asset ${name} (it has: ${assets.map((a) => String(a?.name)).join(', ') || 'none'})`, {
      code: 'PULL_FAILED',
      fix: 'Pull another architecture (--arch) or another release (--tag, --branch).',
    })
  }
  if (!Number.isSafeInteger(asset.size) || (asset.size as number) <= 0 || typeof asset.url !== 'string' || !/^https?:\/\//.test(asset.url)) {
    throw new StackEmulatorError(`Release ${tag}'s asset ${name} has no usable size or url (from ${url})`, {
      code: 'PULL_FAILED',
      fix: 'Try another release (--tag); if this is a mirror, check what it serves.',
    })
  }
  const commit = releaseCommit(tag, body.body, body.target_commitish)
  return { tag, name, size: asset.size as number, url: asset.url, updatedAt: String(asset.updated_at ?? ''), ...(commit ? { commit } : {}) }
}

const IMMUTABLE_TAG = /^emulator-.+-\d{8}-([0-9a-f]{8})$/
/** The notes' line `Built from \`<branch>\` @ \`<sha>\`` (backticks and spacing optional). */
const BUILT_FROM = /built from\s+`?[^`\s]*`?\s*@\s*`?([0-9a-f]{7,40})(?![0-9a-z])/i
const FULL_SHA = /(?<![0-9a-z])([0-9a-f]{40})(?![0-9a-z])/i

/**
 * The stack-auth/stack-auth commit a release was built from, as Stack Auth's workflow
 * (.github/workflows/qemu-emulator-build.yaml, job `publish`) records it:
 * - step "Prepare release assets": the immutable tag `emulator-<branch>-<YYYYMMDD>-<sha8>`
 *   (`SHORT_SHA="${GITHUB_SHA:0:8}"`), whose notes (release-notes.md, the release's `body`)
 *   say "Built from \`${BRANCH}\` @ \`${GITHUB_SHA}\`" with the full sha;
 * - step "Update latest tag for branch": `emulator-<branch>-latest`, whose notes name no commit,
 *   edited on each build with `--target ${{ github.sha }}` (the API's `target_commitish`).
 * The tag's sha8 first, then the body, then a full-sha `target_commitish` (a branch name is not a
 * commit); a later source that extends the first (same prefix, longer) is kept instead: the full sha.
 */
export function releaseCommit(tag: string, body: unknown, targetCommitish: unknown): ReleaseCommit | undefined {
  const found: ReleaseCommit[] = []
  const fromTag = IMMUTABLE_TAG.exec(tag)?.[1]
  if (fromTag) found.push({ sha: fromTag, from: 'tag' })
  if (typeof body === 'string') {
    const fromBody = BUILT_FROM.exec(body)?.[1] ?? FULL_SHA.exec(body)?.[1]
    if (fromBody) found.push({ sha: fromBody.toLowerCase(), from: 'body' })
  }
  if (typeof targetCommitish === 'string' && /^[0-9a-f]{40}$/i.test(targetCommitish))
    found.push({ sha: targetCommitish.toLowerCase(), from: 'target_commitish' })
  const [first, ...rest] = found
  if (!first) return undefined
  const longer = rest.find((c) => c.sha.length > first.sha.length && c.sha.startsWith(first.sha))
  return longer ?? first
}
