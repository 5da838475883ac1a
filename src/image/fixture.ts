/**
 * Builds the fixture emulator image (fixtures/image/build.sh) into the cache, keyed by a
 * fingerprint of its inputs. A lock makes concurrent builders wait for one build; the build
 * goes to a staging folder renamed into place at the end, so a half-built image is never used.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { packageRoot } from '../package-root.js'
import { StackEmulatorError } from '../errors.js'
import { sha256 } from '../digest.js'
import { imagesRoot } from './cache.js'
import { withImageLock } from './lock.js'

const INPUT_DIRS = ['fixtures/image', 'cloud-init']

export async function fixtureFingerprint(): Promise<string> {
  const files: string[] = []
  for (const dir of INPUT_DIRS) files.push(...(await listFiles(path.join(packageRoot, dir))))
  const parts = await Promise.all(
    files.sort().map(async (file) => `${path.relative(packageRoot, file)}\0${sha256(await fs.readFile(file))}`),
  )
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
}): Promise<string> {
  const fingerprint = await fixtureFingerprint()
  const dir = fixtureDir(options.cacheRoot, fingerprint)
  const manifest = path.join(dir, 'manifest.json')
  if (!options.force && (await exists(manifest))) return manifest
  // Up to 20 minutes: a build on a slow machine.
  const waiting = { waiting: 'waiting for another process to finish building the fixture image', onLog: options.progress, maxWaitMs: 20 * 60_000 }
  return withImageLock(dir, waiting, async () => {
    if (!options.force && (await exists(manifest))) return manifest
    await build(dir, fingerprint, options.progress)
    return manifest
  })
}

async function build(dir: string, fingerprint: string, progress: (line: string) => void): Promise<void> {
  if (process.getuid?.() !== 0) {
    throw new StackEmulatorError('Building the fixture image needs root (debootstrap and chroot)', {
      code: 'IMAGE_BUILD_FAILED',
      fix: 'Run `sudo npx stack-emulator image build` once; later runs reuse the cached image.',
    })
  }
  const staging = `${dir}.staging-${process.pid}`
  await fs.rm(staging, { recursive: true, force: true })
  await fs.mkdir(staging, { recursive: true })
  const started = Date.now()
  progress('building the fixture image (debootstrap, a few minutes, once)')
  try {
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
      throw new StackEmulatorError(`The fixture image build failed (exit code ${result.exitCode})`, {
        code: 'IMAGE_BUILD_FAILED',
        fix: 'It needs debootstrap, qemu-utils, busybox-static, e2fsprogs, cpio and xz-utils, and apt access to Debian; see the output below.',
        details: lines.slice(-25).join('\n'),
      })
    }
    const template = JSON.parse(await fs.readFile(path.join(packageRoot, 'fixtures/image/manifest.template.json'), 'utf8')) as object
    const manifest = { ...template, fingerprint, builtAt: new Date().toISOString(), buildSeconds: Math.round((Date.now() - started) / 1000) }
    await fs.writeFile(path.join(staging, 'manifest.json'), JSON.stringify(manifest, null, 2))
    await fs.rm(dir, { recursive: true, force: true })
    await fs.rename(staging, dir)
  } catch (error) {
    await fs.rm(staging, { recursive: true, force: true })
    throw error
  }
}

async function listFiles(dir: string): Promise<string[]> {
  const entries = await fs.readdir(dir, { withFileTypes: true, recursive: true })
  // Documentation does not change the image.
  return entries.filter((e) => e.isFile() && !e.name.endsWith('.md')).map((e) => path.join(e.parentPath, e.name))
}

async function exists(file: string): Promise<boolean> {
  return fs.access(file).then(() => true, () => false)
}
