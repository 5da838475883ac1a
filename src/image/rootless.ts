/**
 * Building the fixture image without root: fixtures/image/build.sh runs mmdebstrap in its
 * unshare mode, which needs user namespaces, newuidmap/newgidmap and a range of 65536
 * subordinate ids in /etc/subuid and /etc/subgid. What this host lacks of that, each with the
 * command that fixes it; and where a host has none of it, the command that builds the image as
 * root into a user's own cache, and the hand-over of such a build to the cache folder's owner.
 */
import fs from 'node:fs/promises'
import os from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { which } from '../which.js'
import { imagesRoot } from './cache.js'

/** Files at fixed places; tests point them elsewhere. */
export const USERNS_FILES = {
  subuid: '/etc/subuid',
  subgid: '/etc/subgid',
  /** Debian's switch for users' namespaces (absent upstream: allowed). */
  usernsClone: '/proc/sys/kernel/unprivileged_userns_clone',
  maxUserNamespaces: '/proc/sys/user/max_user_namespaces',
  /** Ubuntu 23.10 and later: AppArmor confines users' namespaces. */
  apparmorUserns: '/proc/sys/kernel/apparmor_restrict_unprivileged_userns',
}

export interface Blocker {
  problem: string
  /** A command; none where only a root build helps. */
  fix?: string
}

const IDS = 65536
const FIRST_ID = 100_000

/** What keeps `user` from building the fixture image without root; empty when nothing does. */
export async function rootlessBlockers(
  files: typeof USERNS_FILES = USERNS_FILES,
  { user = os.userInfo(), PATH = process.env.PATH ?? '' }: { user?: { username: string; uid: number }; PATH?: string } = {},
): Promise<Blocker[]> {
  const blockers: Blocker[] = []
  const sysctl = async (file: string) => (await fs.readFile(file, 'utf8').catch(() => undefined))?.trim()
  if ((await sysctl(files.usernsClone)) === '0') {
    blockers.push({
      problem: 'user namespaces are off for users (kernel.unprivileged_userns_clone = 0)',
      fix: 'sudo sysctl -w kernel.unprivileged_userns_clone=1',
    })
  }
  if ((await sysctl(files.maxUserNamespaces)) === '0') {
    blockers.push({ problem: 'user namespaces are off (user.max_user_namespaces = 0)', fix: 'sudo sysctl -w user.max_user_namespaces=10000' })
  }
  if ((await sysctl(files.apparmorUserns)) === '1') {
    blockers.push({
      problem: "AppArmor keeps users' namespaces from mapping ids (kernel.apparmor_restrict_unprivileged_userns = 1)",
      fix: 'sudo sysctl -w kernel.apparmor_restrict_unprivileged_userns=0',
    })
  }
  for (const helper of ['newuidmap', 'newgidmap']) {
    if ('error' in (await which(helper, { PATH }))) {
      blockers.push({ problem: `${helper} not found`, fix: 'sudo apt-get install uidmap' })
      break
    }
  }
  const [subuid, subgid] = await Promise.all([readIds(files.subuid), readIds(files.subgid)])
  const mine = (ranges: IdRange[]) => ranges.some((r) => (r.owner === user.username || r.owner === String(user.uid)) && r.count >= IDS)
  const lacking = [!mine(subuid) && 'subuids', !mine(subgid) && 'subgids'].filter((x): x is string => Boolean(x))
  if (lacking.length > 0) {
    // The first range past every one given already, in both files.
    const start = Math.max(FIRST_ID, ...[...subuid, ...subgid].map((r) => r.start + r.count))
    const range = `${start}-${start + IDS - 1}`
    blockers.push({
      problem: `${user.username} has no range of ${IDS} subordinate ids in ${lacking.map((k) => (k === 'subuids' ? files.subuid : files.subgid)).join(' and ')}`,
      fix: `sudo usermod ${lacking.map((k) => `--add-${k} ${range}`).join(' ')} ${user.username}`,
    })
  }
  // A container's seccomp policy, for one, can forbid namespaces whatever the sysctls say.
  if (blockers.length === 0) {
    const probe = await execa('unshare', ['--user', '--map-root-user', 'true'], { env: { PATH }, reject: false, timeout: 10_000 })
    if (probe.failed && probe.code !== 'ENOENT') {
      const why = probe.stderr.trim().split('\n').pop() || probe.shortMessage
      blockers.push({ problem: `this host does not let users create user namespaces (${why})` })
    }
  }
  return blockers
}

/**
 * After a build as root into `cacheRoot` (`sudo env STACK_EMULATOR_CACHE_DIR=...`): when a user
 * owns that folder, the image folder `built` (flat) and the images folder become theirs.
 */
export async function handOver(cacheRoot: string, built: string): Promise<void> {
  const { uid, gid } = await fs.stat(cacheRoot)
  if (uid === 0) return
  const entries = (await fs.readdir(built)).map((name) => path.join(built, name))
  for (const entry of [imagesRoot(cacheRoot), built, ...entries]) await fs.lchown(entry, uid, gid)
}

/** The command that builds the image as root into `cacheRoot`, handed to the folder's owner. */
export function rootBuildCommand(cacheRoot: string): string {
  return `sudo env "PATH=$PATH" STACK_EMULATOR_CACHE_DIR=${shellWord(cacheRoot)} npx stack-emulator image build`
}

interface IdRange {
  owner: string
  start: number
  count: number
}

async function readIds(file: string): Promise<IdRange[]> {
  const text = await fs.readFile(file, 'utf8').catch(() => '')
  return text.split('\n').flatMap((line) => {
    const [owner = '', start, count] = line.trim().split(':')
    return owner && /^\d+$/.test(start ?? '') && /^\d+$/.test(count ?? '') ? [{ owner, start: Number(start), count: Number(count) }] : []
  })
}

function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`
}
