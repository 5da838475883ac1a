/**
 * `stack-emulator doctor`: what this machine has and lacks for running the VM, building the
 * fixture image and the Playwright examples. Each check is a finding with the command that
 * fixes it; none starts a VM. The drivers' own checks come from the registry (driverFindings).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { execa } from 'execa'
import { driverFindings } from '../drivers/registry.js'
import { imageEntries } from '../image/cache.js'
import { fixtureDir, fixtureFingerprint } from '../image/fixture.js'
import { rootBuildCommand, rootlessBlockers, USERNS_FILES } from '../image/rootless.js'
import { IMAGE_NAME, machineArch, parseImageRef, type ImageRef } from '../image/names.js'
import type { Settings } from '../settings.js'
import { missing as missingPackage, tool as toolOnPath, type Finding, type Status } from '../finding.js'

export type { Finding, Status } from '../finding.js'

/** Files at fixed places; tests point them elsewhere. */
export const SYSTEM_FILES = {
  busybox: '/bin/busybox', // fixtures/image/build.sh copies this one into the initramfs
  syslinuxMbr: '/usr/lib/syslinux/mbr/mbr.bin', // the fixture image's boot record
  chromium: '/usr/bin/chromium',
  kvm: '/dev/kvm', // the accelerator the driver checks (driverFindings)
  ...USERNS_FILES, // what building the fixture image without root needs (image/rootless.ts)
}

export interface DoctorContext {
  settings: Settings
  root: boolean
  files: typeof SYSTEM_FILES
}

const MIN_NODE = [20, 19] // package.json's engines
const MIN_FREE = 2 * 1024 ** 3
// The image build adds the sbin folders, which a user's PATH often lacks.
const SBIN = ['/usr/local/sbin', '/usr/sbin', '/sbin']
const IMAGE_TOOLS: [command: string, pkg: string][] = [
  ['mmdebstrap', 'mmdebstrap'],
  ['fakeroot', 'fakeroot'],
  ['newuidmap', 'uidmap'],
  ['mkfs.ext4', 'e2fsprogs'],
  ['cpio', 'cpio'],
  ['xz', 'xz-utils'],
  ['zstd', 'zstd'],
  ['mkfs.fat', 'dosfstools'],
  ['syslinux', 'syslinux'],
  ['mcopy', 'mtools'],
  ['sfdisk', 'fdisk'],
]

export async function runChecks(ctx: DoctorContext): Promise<Finding[]> {
  const drivers = await driverFindings({ env: ctx.settings.env, cacheRoot: ctx.settings.cacheRoot, root: ctx.root, kvm: ctx.files.kvm })
  const rest = await Promise.all([
    file(ctx, 'syslinux-mbr', ctx.files.syslinuxMbr, 'syslinux-common', "the boot record of the fixture image's disk", 'fail'),
    ...IMAGE_TOOLS.map(([command, pkg]) => tool(ctx, command, pkg, 'builds the fixture image', SBIN)),
    // Only docker/build.sh still uses it (as root): a warning.
    tool(ctx, 'debootstrap', 'debootstrap', "builds the Docker driver's container image", SBIN).then(
      (f): Finding => (f.status === 'fail' ? { ...f, status: 'warn' } : f),
    ),
    busybox(ctx),
    ...(ctx.root ? [] : [rootless(ctx)]),
    image(ctx),
    file(ctx, 'chromium', ctx.files.chromium, 'chromium', 'the browser of the Playwright examples and tests', 'warn'),
    folder(ctx.settings.cacheRoot, 'cache', 'STACK_EMULATOR_CACHE_DIR'),
    folder(ctx.settings.stateRoot, 'state', 'STACK_EMULATOR_HOME', 0o700),
  ])
  return [node(), ...drivers, ...rest]
}

function node(): Finding {
  const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
  const ok = major > MIN_NODE[0]! || (major === MIN_NODE[0] && minor >= MIN_NODE[1]!)
  return ok
    ? { id: 'node', status: 'ok', message: `Node.js ${process.versions.node}` }
    : {
        id: 'node',
        status: 'fail',
        message: `Node.js ${process.versions.node}; stack-emulator needs ${MIN_NODE.join('.')} or later`,
        fix: 'install a newer Node.js',
      }
}

function tool(ctx: DoctorContext, command: string, pkg: string, purpose: string, extraDirs: string[] = []): Promise<Finding> {
  return toolOnPath(ctx.root, command, pkg, purpose, extraDirs)
}

async function file(ctx: DoctorContext, id: string, where: string, pkg: string, purpose: string, status: Status): Promise<Finding> {
  if (await exists(where)) return { id, status: 'ok', message: where }
  return missing(ctx, id, `${where} not found; it is ${purpose}`, pkg, status)
}

/** Reads the whole applet list: no pipe into `grep -q`, whose early exit made busybox die of SIGPIPE. */
async function busybox(ctx: DoctorContext): Promise<Finding> {
  const where = ctx.files.busybox
  const list = await execa(where, ['--list'], { reject: false, timeout: 10_000 })
  if (!list.failed && list.stdout.split('\n').includes('insmod')) return { id: 'busybox', status: 'ok', message: `${where} (with insmod)` }
  const problem = list.code === 'ENOENT' ? 'not found' : list.failed ? `does not run (${list.shortMessage})` : 'has no insmod applet'
  return missing(ctx, 'busybox', `${where} ${problem}; the fixture image's initramfs needs a static busybox`, 'busybox-static', 'fail')
}

async function image(ctx: DoctorContext): Promise<Finding> {
  const wanted = ctx.settings.image
  let ref: ImageRef
  try {
    ref = parseImageRef(wanted)
  } catch (error) {
    return { id: 'image', status: 'fail', message: `${(error as Error).message} (STACK_EMULATOR_IMAGE)`, fix: 'unset STACK_EMULATOR_IMAGE or fix its tag' }
  }
  if (ref.kind === 'path') {
    return (await exists(ref.path))
      ? { id: 'image', status: 'ok', message: `${wanted} (STACK_EMULATOR_IMAGE)` }
      : {
          id: 'image',
          status: 'fail',
          message: `${wanted} (STACK_EMULATOR_IMAGE) not found`,
          fix: 'point STACK_EMULATOR_IMAGE at a manifest.json, or unset it for the fixture image',
        }
  }
  if (ref.kind === 'pulled') {
    const pulled = (await imageEntries(ctx.settings.cacheRoot)).find(
      (i) => i.name === IMAGE_NAME && i.arch === machineArch() && (!ref.tag || i.tag === ref.tag),
    )
    return pulled
      ? { id: 'image', status: 'ok', message: `${wanted} (STACK_EMULATOR_IMAGE) pulled: ${path.dirname(pulled.manifest)}` }
      : {
          id: 'image',
          status: 'warn',
          message: `${wanted} (STACK_EMULATOR_IMAGE) not pulled yet; the first start downloads it`,
          fix: `npx stack-emulator image pull${ref.tag ? ` --tag ${ref.tag}` : ''}`,
        }
  }
  const dir = fixtureDir(ctx.settings.cacheRoot, await fixtureFingerprint())
  if (await exists(path.join(dir, 'manifest.json'))) return { id: 'image', status: 'ok', message: `fixture image built: ${dir}` }
  const notBuilt = 'fixture image not built yet'
  if (ctx.root || (await rootlessBlockers(ctx.files)).length === 0)
    return { id: 'image', status: 'ok', message: `${notBuilt}; the first start builds it (a few minutes, once)` }
  return {
    id: 'image',
    status: 'warn',
    message: `${notBuilt}, and this user cannot build it (see rootless); root can, into this cache`,
    fix: rootBuildCommand(ctx.settings.cacheRoot),
  }
}

/** Without root, the image build runs mmdebstrap in its unshare mode (image/rootless.ts). */
async function rootless(ctx: DoctorContext): Promise<Finding> {
  const blockers = await rootlessBlockers(ctx.files)
  if (blockers.length === 0) return { id: 'rootless', status: 'ok', message: 'user namespaces and subordinate ids: the fixture image builds without root' }
  const fixes = [...new Set(blockers.flatMap((b) => (b.fix ? [b.fix] : [])))]
  const finding: Finding = {
    id: 'rootless',
    status: 'warn',
    message: `the fixture image cannot be built without root: ${blockers.map((b) => b.problem).join('; ')}`,
  }
  return fixes.length > 0 ? { ...finding, fix: fixes.join(' && ') } : finding
}

/** Creates the folder if needed, then checks that it is writable and has room. */
async function folder(dir: string, id: string, variable: string, mode?: number): Promise<Finding> {
  const problem = await fs
    .mkdir(dir, { recursive: true, mode })
    .then(() => fs.access(dir, fs.constants.W_OK))
    .then(
      () => undefined,
      (e: NodeJS.ErrnoException) => e.code ?? String(e),
    )
  if (problem)
    return { id, status: 'fail', message: `${dir} is not writable (${problem})`, fix: `sudo chown -R $USER ${dir}, or set ${variable} to a folder of yours` }
  const stats = await fs.statfs(dir)
  const free = stats.bavail * stats.bsize
  const gib = `${(free / 1024 ** 3).toFixed(1)} GiB free`
  return free < MIN_FREE
    ? { id, status: 'warn', message: `${dir}: only ${gib}; images and snapshots need about 2 GiB`, fix: `free some space, or set ${variable} to another disk` }
    : { id, status: 'ok', message: `${dir} (writable, ${gib})` }
}

function missing(ctx: DoctorContext, id: string, message: string, pkg: string, status: Status): Finding {
  return missingPackage(ctx.root, id, message, pkg, status)
}

function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  )
}
