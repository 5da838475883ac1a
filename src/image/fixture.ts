/**
 * Builds the fixture emulator image (fixtures/image/build.sh) into the cache, keyed by a
 * fingerprint of its inputs. A lock makes concurrent builders wait for one build; the build
 * goes to a staging folder renamed into place at the end, so a half-built image is never used.
 * A build of the same inputs in another cache is copied in the same way instead of built again.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { packageRoot } from '../package-root.js'
import { StackEmulatorError } from '../errors.js'
import { sha256 } from '../digest.js'
import { imagesRoot } from './cache.js'
import { withImageLock } from './lock.js'
import { handOver, rootBuildCommand, rootlessBlockers } from './rootless.js'

const INPUT_DIRS = ['fixtures/image', 'cloud-init']

export async function fixtureFingerprint(): Promise<string> {
  const files: string[] = []
  for (const dir of INPUT_DIRS) files.push(...(await listFiles(path.join(packageRoot, dir))))
  const parts = await Promise.all(files.sort().map(async (file) => `${path.relative(packageRoot, file)}\0${sha256(await fs.readFile(file))}`))
  return sha256(parts.join('\n'))
}

export function fixtureDir(cacheRoot: string, fingerprint: string): string {
  return path.join(imagesRoot(cacheRoot), `fixture-${fingerprint.slice(0, 16)}`)
}

/** Returns the manifest path of the built fixture image, building it first if needed. */
export async function ensureFixtureImage(options: {
  cacheRoot: string
  progress: (line: string) => void
  /** Rebuild even if a build with the same fingerprint exists. */
  force?: boolean
  /** Another cache root: its build of the same inputs, when it has one, is copied instead of built (CI builds once into an empty cache). */
  from?: string
}): Promise<string> {
  const fingerprint = await fixtureFingerprint()
  const dir = fixtureDir(options.cacheRoot, fingerprint)
  const manifest = path.join(dir, 'manifest.json')
  if (!options.force && (await exists(manifest))) return manifest
  // Up to 20 minutes: a build on a slow machine.
  const waiting = { waiting: 'waiting for another process to finish building the fixture image', onLog: options.progress, maxWaitMs: 20 * 60_000 }
  return withImageLock(dir, waiting, async () => {
    if (!options.force && (await exists(manifest))) return manifest
    const built = options.from === undefined ? undefined : fixtureDir(options.from, fingerprint)
    if (built && (await builtFrom(built, fingerprint))) {
      await publish(dir, (staging) => copyBuild(built, staging, options.progress))
    } else {
      if (process.getuid?.() !== 0) await canBuildRootless(options.cacheRoot)
      await publish(dir, async (staging) => {
        await build(staging, fingerprint, options.cacheRoot, options.progress)
        if (process.getuid?.() === 0) await handOver(options.cacheRoot, staging)
      })
    }
    return manifest
  })
}

/** Fills a staging folder beside `dir`, then renames it into place: `dir` is never half there. */
async function publish(dir: string, fill: (staging: string) => Promise<void>): Promise<void> {
  const staging = `${dir}.staging-${process.pid}`
  await fs.rm(staging, { recursive: true, force: true })
  try {
    await fs.mkdir(staging, { recursive: true })
    await fill(staging)
    await fs.rm(dir, { recursive: true, force: true })
    await fs.rename(staging, dir)
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true })
    throw error
  }
}

/** True when `built` is a finished build of these inputs (its manifest, written last, names them). */
async function builtFrom(built: string, fingerprint: string): Promise<boolean> {
  const manifest = await fs.readFile(path.join(built, 'manifest.json'), 'utf8').then(
    (text) => JSON.parse(text) as { fingerprint?: unknown },
    () => undefined,
  )
  return manifest?.fingerprint === fingerprint
}

async function copyBuild(built: string, staging: string, progress: (line: string) => void): Promise<void> {
  progress(`copying the fixture image from ${built}`)
  const { execa } = await import('execa')
  // A clone where the file system can (no bytes copied), else a copy; holes stay holes.
  await execa('cp', ['-a', '--reflink=auto', `${built}/.`, staging])
}

/** Without root, build.sh needs user namespaces and subordinate ids: a host without them fails here, with the fixes. */
async function canBuildRootless(cacheRoot: string): Promise<void> {
  const blockers = await rootlessBlockers()
  if (blockers.length === 0) return
  const fixes = [...new Set(blockers.flatMap((b) => (b.fix ? [b.fix] : [])))]
  throw new StackEmulatorError(`This user cannot build the fixture image without root here: ${blockers.map((b) => b.problem).join('; ')}`, {
    code: 'IMAGE_BUILD_FAILED',
    fix: `${fixes.length > 0 ? `Fix: ${fixes.join('; ')}. Or b` : 'B'}uild it once as root into this cache, which hands it to you: ${rootBuildCommand(cacheRoot)}`,
  })
}

async function build(staging: string, fingerprint: string, cacheRoot: string, progress: (line: string) => void): Promise<void> {
  const started = Date.now()
  progress(`building the fixture image (mmdebstrap, a few minutes, once)${process.getuid?.() === 0 ? '' : ' without root'}`)
  const { execa } = await import('execa')
  const child = execa('bash', [path.join(packageRoot, 'fixtures/image/build.sh'), staging], { all: true, reject: false })
  const lines: string[] = []
  child.all?.on('data', (chunk: Buffer) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line.trim()) continue
      lines.push(line)
      if (lines.length > 200) lines.shift()
      const step = /^\[fixture-image [^\]]*\] (.*)/.exec(line)
      if (step) progress(`image build: ${step[1]}`)
    }
  })
  const result = await child
  if (result.exitCode !== 0) {
    const asRoot =
      process.getuid?.() === 0 ? '' : ` Where user namespaces fail, build it as root into this cache, which hands it to you: ${rootBuildCommand(cacheRoot)}`
    throw new StackEmulatorError(`The fixture image build failed (exit code ${result.exitCode})`, {
      code: 'IMAGE_BUILD_FAILED',
      fix: `It needs mmdebstrap, fakeroot, qemu-utils, busybox-static, e2fsprogs, cpio, xz-utils, dosfstools, syslinux, mtools and fdisk (\`stack-emulator doctor\` checks them), and apt access to Debian; see the output below.${asRoot}`,
      details: lines.slice(-25).join('\n'),
    })
  }
  const template = JSON.parse(await fs.readFile(path.join(packageRoot, 'fixtures/image/manifest.template.json'), 'utf8')) as object
  const manifest = { ...template, fingerprint, builtAt: new Date().toISOString(), buildSeconds: Math.round((Date.now() - started) / 1000) }
  await fs.writeFile(path.join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2))
}

/** The image's input files under `dir`, sorted. */
export async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true })
  // Not the docs, nor what a local python3 run leaves behind (it never reaches the image).
  return entries
    .filter((e) => e.isFile() && !e.name.endsWith('.md') && !e.parentPath.split(path.sep).includes('__pycache__'))
    .map((e) => path.join(e.parentPath, e.name))
    .sort()
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(
    () => true,
    () => false,
  )
}
