/**
 * The image manifest: everything the driver needs to boot an image, and nothing specific to
 * the fixture. The real Stack Auth image is just another manifest (manifests/stack-auth.json).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { StackEmulatorError } from '../errors.js'

export interface HealthCheck {
  path: string
  /** Expected HTTP status. @default 200 */
  status: number
}

export interface ServiceSpec {
  name: string
  guestPort: number
  /** Host port used unless the `ports` option says otherwise; absent or 0 = QEMU picks a free one. */
  hostPort?: number
  health?: HealthCheck
}

export type BootSpec =
  | { kind: 'kernel'; kernel: string; initrd?: string; append: string; bios?: 'qboot' | 'default' }
  | { kind: 'disk' }

export interface EndpointRef {
  service: string
  path: string
}

export interface ImageManifest {
  name: string
  /** Digest of everything the image was built from; part of every snapshot's fingerprint. */
  fingerprint: string
  boot: BootSpec
  /** qcow2 disk, relative to the manifest's folder. */
  disk: string
  memoryMb: number
  cpus: number
  services: ServiceSpec[]
  /** Guest endpoint that sets the guest clock after a snapshot restore. */
  clock?: EndpointRef
  /** Stack Auth's local-emulator credential route. */
  credentials?: EndpointRef
  /** The manifest file and its folder; resolved when loaded. */
  file: string
  dir: string
}

export async function loadManifest(file: string): Promise<ImageManifest> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (cause) {
    throw new StackEmulatorError(`Image manifest ${file} cannot be read`, {
      code: 'IMAGE_NOT_FOUND',
      fix: 'Pass --image <path to manifest.json>, or leave it unset to use the built fixture image (stack-emulator image build).',
      cause,
    })
  }
  let raw: Partial<ImageManifest>
  try {
    raw = JSON.parse(text) as Partial<ImageManifest>
  } catch (cause) {
    throw new StackEmulatorError(`Image manifest ${file} is not valid JSON`, {
      code: 'IMAGE_NOT_FOUND',
      fix: 'Fix the file or rebuild the image (stack-emulator image build).',
      cause,
    })
  }
  const manifest = { ...raw, file: path.resolve(file), dir: path.dirname(path.resolve(file)) } as ImageManifest
  validate(manifest, file)
  await assertFile(path.join(manifest.dir, manifest.disk), file)
  if (manifest.boot.kind === 'kernel') {
    await assertFile(path.join(manifest.dir, manifest.boot.kernel), file)
    if (manifest.boot.initrd) await assertFile(path.join(manifest.dir, manifest.boot.initrd), file)
  }
  return manifest
}

function validate(m: ImageManifest, file: string): void {
  const problems: string[] = []
  if (typeof m.name !== 'string') problems.push('"name" must be a string')
  if (typeof m.fingerprint !== 'string') problems.push('"fingerprint" must be a string')
  if (typeof m.disk !== 'string') problems.push('"disk" must be a path')
  if (!Number.isInteger(m.memoryMb) || m.memoryMb < 64) problems.push('"memoryMb" must be an integer >= 64')
  if (!Number.isInteger(m.cpus) || m.cpus < 1) problems.push('"cpus" must be an integer >= 1')
  if (!m.boot || (m.boot.kind !== 'kernel' && m.boot.kind !== 'disk')) problems.push('"boot.kind" must be kernel or disk')
  if (!Array.isArray(m.services) || m.services.length === 0) problems.push('"services" must list at least one service')
  for (const s of m.services ?? []) {
    if (typeof s.name !== 'string' || !Number.isInteger(s.guestPort)) problems.push(`service ${JSON.stringify(s)} needs name and guestPort`)
  }
  if (problems.length > 0) {
    throw new StackEmulatorError(`Image manifest ${file} is invalid: ${problems.join('; ')}`, {
      code: 'IMAGE_NOT_FOUND',
      fix: 'Fix the manifest (see manifests/stack-auth.json for a complete one).',
    })
  }
}

async function assertFile(file: string, manifestFile: string): Promise<void> {
  try {
    await fs.access(file)
  } catch {
    throw new StackEmulatorError(`Image file ${file} named by ${manifestFile} is missing`, {
      code: 'IMAGE_NOT_FOUND',
      fix: 'Rebuild the image (stack-emulator image build) or fix the path in the manifest.',
    })
  }
}
