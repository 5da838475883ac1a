/**
 * Names of the real image: release tags, branches, architectures, digests, and the `image`
 * option's values (`fixture`, `stack-auth`, `stack-auth@<tag>`, or a manifest path). Every
 * name that becomes a path is checked here, strictly, before anything touches the disk.
 */
import { StackEmulatorError, badOption } from '../errors.js'
import { checkPathPart } from '../instance/paths.js'

export const RELEASE_REPO = 'stack-auth/stack-auth'
export const IMAGE_NAME = 'stack-auth'
export const ARCHES = ['amd64', 'arm64'] as const
export type Arch = (typeof ARCHES)[number]
export const DEFAULT_BRANCH = 'dev'

/**
 * At most 19 characters so that the longest image folder, `stack-auth-<arch>-emulator-<branch>-
 * <YYYYMMDD>-<sha8>`, stays one valid path part (63).
 */
const BRANCH = '[A-Za-z0-9](?:[A-Za-z0-9._-]{0,17}[A-Za-z0-9])?'
const TAG = new RegExp(`^emulator-(${BRANCH})-(?:latest|\\d{8}-[0-9a-f]{8})$`)
const isTag = (tag: string) => TAG.test(tag) && !tag.includes('..')
const SHA256 = /^[0-9a-fA-F]{64}$/

export function checkBranch(branch: unknown): string {
  if (typeof branch !== 'string' || !new RegExp(`^${BRANCH}$`).test(branch) || branch.includes('..')) {
    throw badOption('branch', branch, 'a release branch such as dev (letters, digits, ".", "_", "-"; at most 19)')
  }
  return branch
}

export function checkTag(tag: unknown): string {
  if (typeof tag !== 'string' || !isTag(tag)) {
    throw badOption('tag', tag, 'a release tag emulator-<branch>-latest or emulator-<branch>-<YYYYMMDD>-<sha8>')
  }
  return tag
}

export function checkArch(arch: unknown): Arch {
  if (!ARCHES.includes(arch as Arch)) throw badOption('arch', arch, ARCHES.join(' or '))
  return arch as Arch
}

/** Lower-cased. */
export function checkSha256(digest: unknown): string {
  if (typeof digest !== 'string' || !SHA256.test(digest)) throw badOption('sha256', digest, 'a sha256 digest (64 hex digits)')
  return digest.toLowerCase()
}

export const latestTag = (branch: string) => `emulator-${branch}-latest`

/** This machine's architecture as release assets name it (`amd64`, `arm64`; else Node's name). */
export const machineArch = (): string => (process.arch === 'x64' ? 'amd64' : process.arch)

/** The architecture images are pulled for by default: this machine's. */
export function hostArch(): Arch {
  const arch = machineArch()
  if (ARCHES.includes(arch as Arch)) return arch as Arch
  throw new StackEmulatorError(`The real image is built for amd64 and arm64, not for this machine (${process.arch})`, {
    code: 'BAD_OPTION',
    fix: 'Pass --arch amd64 or --arch arm64 to pull one anyway (it runs emulated, much slower), or use the fixture image.',
  })
}

export const assetName = (arch: Arch) => `stack-emulator-${arch}.qcow2`

/** `<cache>/images/<this>`; also the image's manifest name, so its snapshots are its own. */
export const pulledFolderName = (arch: Arch, tag: string) => checkPathPart('image folder', `${IMAGE_NAME}-${arch}-${checkTag(tag)}`)

/** The folder name back to its arch and tag; undefined for a folder that is not a pulled image. */
export function parsePulledFolder(name: string): { arch: Arch; tag: string } | undefined {
  const m = /^stack-auth-(amd64|arm64)-(emulator-.+)$/.exec(name)
  return m && isTag(m[2]!) ? { arch: m[1] as Arch, tag: m[2]! } : undefined
}

export type ImageRef =
  | { kind: 'fixture' }
  /** Without a tag: the newest pulled for this machine's arch. */
  | { kind: 'pulled'; tag: string | undefined }
  | { kind: 'path'; path: string }

/** The `image` option (and `image rm`'s argument): unset or `fixture`, `stack-auth[@<tag>]`, or a path. */
export function parseImageRef(value: string | undefined): ImageRef {
  if (!value || value === 'fixture') return { kind: 'fixture' }
  if (value === IMAGE_NAME) return { kind: 'pulled', tag: undefined }
  if (value.startsWith(`${IMAGE_NAME}@`)) {
    const tag = value.slice(IMAGE_NAME.length + 1)
    if (!isTag(tag)) throw badOption('image', value, `${IMAGE_NAME}@<tag> with a tag emulator-<branch>-latest or emulator-<branch>-<YYYYMMDD>-<sha8>`)
    return { kind: 'pulled', tag }
  }
  return { kind: 'path', path: value }
}
