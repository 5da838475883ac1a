/**
 * The manifest of an emulator that is not a VM image: a container image (Docker driver) or an
 * emulator someone else runs (external driver). It names the services, their health paths and
 * the credential route as an image manifest does; `container` says how to run the image. The
 * fixture's is docker/manifest.json, its image built from docker/ by the Docker driver.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { sha256 } from '../digest.js'
import { StackEmulatorError } from '../errors.js'
import { listFiles } from '../image/fixture.js'
import { withHealthDefaults, type ImageManifest, type ServiceSpec } from '../image/manifest.js'
import { packageRoot } from '../package-root.js'

export interface ContainerSpec {
  /** An image the engine has (`name:tag`); or, with `build`, the script that builds its root file system tar. */
  image?: string
  build?: string
  /** Command run in the container to go back to the clean state; without it a reset starts a new container. */
  reset?: string[]
  env?: Record<string, string>
  /** Where the per-instance share is mounted: the credential route reads config files under it. */
  hostMount?: string
  /** Variable that receives the internal project's publishable key the driver chose. */
  internalKeyEnv?: string
  /** Variable that receives the address to listen on (host networking: 127.0.0.1). */
  bindEnv?: string
}

export interface ContainerServiceSpec extends ServiceSpec {
  /** Variable that receives the port the service must listen on (host networking). */
  portEnv?: string
}

export type ServiceManifest = Pick<ImageManifest, 'name' | 'fingerprint' | 'file' | 'dir'> & {
  services: ContainerServiceSpec[]
  credentials?: ImageManifest['credentials']
  container?: ContainerSpec
  memoryMb?: number
}

export const FIXTURE_CONTAINER_MANIFEST = path.join(packageRoot, 'docker', 'manifest.json')
/** Everything the fixture's container image is built from. */
const FIXTURE_INPUTS = [
  'docker/build.sh',
  'docker/entrypoint',
  'docker/reset-database',
  'fixtures/image/rootfs.sh',
  'fixtures/image/guest/server.py',
  'fixtures/image/guest/schema.sql',
  'fixtures/image/guest/postgresql.fixture.conf',
]
/** Folders whose every file is an input too (the server's package). */
const FIXTURE_INPUT_DIRS = ['fixtures/image/guest/fixture_server']

async function fixtureInputs(): Promise<string[]> {
  const dirs = await Promise.all(FIXTURE_INPUT_DIRS.map((dir) => listFiles(path.join(packageRoot, dir))))
  return [...FIXTURE_INPUTS.map((f) => path.join(packageRoot, f)), ...dirs.flat()]
}

export async function loadServiceManifest(file: string): Promise<ServiceManifest> {
  let raw: Record<string, unknown>
  try {
    raw = JSON.parse(await fs.readFile(file, 'utf8')) as Record<string, unknown>
  } catch (cause) {
    throw new StackEmulatorError(`Emulator manifest ${file} cannot be read as JSON`, {
      code: 'IMAGE_NOT_FOUND',
      fix: 'Point the image option (--image) at a manifest.json with "services" (and "container" for the Docker driver).',
      cause,
    })
  }
  const services = raw.services as ContainerServiceSpec[] | undefined
  if (typeof raw.name !== 'string' || !Array.isArray(services) || !services.every((s) => typeof s?.name === 'string' && Number.isInteger(s.guestPort))) {
    throw new StackEmulatorError(`Emulator manifest ${file} needs "name" and "services" ([{ name, guestPort, health? }])`, {
      code: 'IMAGE_NOT_FOUND',
      fix: 'See docker/manifest.json for an example.',
    })
  }
  const dir = path.dirname(path.resolve(file))
  const container = raw.container as ContainerSpec | undefined
  const inputs = path.resolve(file) === FIXTURE_CONTAINER_MANIFEST ? await fixtureInputs() : []
  const parts = await Promise.all([file, ...inputs].map(async (f) => sha256(await fs.readFile(f))))
  return {
    ...(raw as object),
    name: raw.name,
    services: withHealthDefaults(services),
    container,
    fingerprint: sha256(parts.join('\n')),
    file: path.resolve(file),
    dir,
  } as ServiceManifest
}

/** The `image` option under the Docker and external drivers: the fixture's container, or a manifest path. */
export async function resolveServiceManifest(image: string | undefined): Promise<ServiceManifest> {
  if (!image || image === 'fixture') return loadServiceManifest(FIXTURE_CONTAINER_MANIFEST)
  if (image.startsWith('stack-auth')) {
    throw new StackEmulatorError(`Image ${image} is a VM image: the Docker and external drivers take the fixture or a manifest path`, {
      code: 'BAD_OPTION',
      fix: 'Use driver qemu for it, or give a manifest.json describing your container (see docker/manifest.json).',
    })
  }
  return loadServiceManifest(path.resolve(image))
}
