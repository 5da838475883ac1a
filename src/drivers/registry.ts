/**
 * The one registry of drivers: `driverFor(kind)`. Each resolves an image reference to the
 * driver-neutral EmulatorManifest (drivers/manifest.ts) and starts what it describes; its own
 * manifest (the QEMU image's) stays inside. Each driver's code is imported only when it starts
 * (testcontainers is optional). Nothing outside drivers/ names a driver.
 */
import { type ImageManifest, loadManifest, platform } from '../image/manifest.js'
import { resolveImage } from '../image/resolve.js'
import type { Settings } from '../settings.js'
import type { EmulatorManifest } from './manifest.js'
import { loadServiceManifest, resolveServiceManifest, type ServiceManifest } from './service-manifest.js'
import { StackEmulatorError } from '../errors.js'
import { DRIVER_NAMES, type DriverName } from './names.js'
import type { DriverStartOptions, RunningInstance } from './types.js'
import { readQemuSettings } from './qemu/settings.js'
import { snapshotStore } from './qemu/snapshot.js'
import type { Finding } from '../finding.js'

/** The snapshot store of the driver that keeps one in the cache (QEMU's), for the image cache's list, remove and prune. */
export { snapshotStore }

/** What `stack-emulator doctor` hands the drivers' own checks; `kvm` is /dev/kvm, pointed elsewhere by tests. */
export interface DriverDoctorContext {
  env: Record<string, string>
  cacheRoot: string
  root: boolean
  kvm: string
}

/** The drivers' own doctor checks: QEMU's binary, accelerator and refused captures (Docker's and the external driver's need nothing installed here). */
export async function driverFindings(ctx: DriverDoctorContext): Promise<Finding[]> {
  const { qemuFindings } = await import('./qemu/doctor.js')
  return qemuFindings({ qemu: readQemuSettings(ctx.env), cacheRoot: ctx.cacheRoot, root: ctx.root, kvm: ctx.kvm })
}

export interface OpenedManifest {
  manifest: EmulatorManifest
  start(options: DriverStartOptions): Promise<RunningInstance>
}

/** What a resolve may need: the settings, and where to say what it does (a build or a pull takes minutes). */
export interface ResolveContext {
  settings: Settings
  progress: (phase: string) => void
  log: (line: string) => void
}

export interface EmulatorDriver {
  readonly name: DriverName
  /** It runs nothing itself: it attaches to an emulator at given URLs, opened with a given internal key. */
  readonly attaches: boolean
  /** The `image` option to a manifest, building or pulling the image first where needed (the client). */
  resolve(image: string | undefined, ctx: ResolveContext): Promise<EmulatorManifest>
  /** The manifest file a resolve named (EmulatorManifest.file), read again. */
  load(file: string): Promise<EmulatorManifest>
  /** The same, ready to start (the supervisor). */
  open(file: string): Promise<OpenedManifest>
}

/** The image manifest's neutral part; the rest is the QEMU driver's. */
function fromImage(m: ImageManifest): EmulatorManifest {
  return {
    name: m.name,
    fingerprint: m.fingerprint,
    file: m.file,
    services: m.services,
    credentials: m.credentials,
    memoryMb: m.memoryMb,
    arch: platform(m).arch,
    source: m.source,
  }
}

function fromServices(m: ServiceManifest): EmulatorManifest {
  return { name: m.name, fingerprint: m.fingerprint, file: m.file, services: m.services, credentials: m.credentials, memoryMb: m.memoryMb }
}

const qemu: EmulatorDriver = {
  name: 'qemu',
  attaches: false,
  resolve: async (image, ctx) => {
    readQemuSettings(ctx.settings.env) // its own variables, checked in the client before anything starts
    return fromImage(await resolveImage(image, { ...ctx, snapshots: snapshotStore }))
  },
  load: async (file) => fromImage(await loadManifest(file)),
  async open(file) {
    const own = await loadManifest(file)
    return {
      manifest: fromImage(own),
      start: async (options) => (await import('./qemu/driver.js')).qemuDriver.start({ ...options, manifest: own }),
    }
  },
}

function serviceDriver(name: 'docker' | 'external'): EmulatorDriver {
  return {
    name,
    attaches: name === 'external',
    resolve: async (image) => fromServices(await resolveServiceManifest(image)),
    load: async (file) => fromServices(await loadServiceManifest(file)),
    async open(file) {
      const own = await loadServiceManifest(file)
      const load = async () => (name === 'docker' ? (await import('./docker/driver.js')).dockerDriver : (await import('./external/driver.js')).externalDriver)
      return { manifest: fromServices(own), start: async (options) => (await load()).start({ ...options, manifest: own }) }
    },
  }
}

const DRIVERS: Record<DriverName, EmulatorDriver> = { qemu, docker: serviceDriver('docker'), external: serviceDriver('external') }

export function driverFor(kind: DriverName): EmulatorDriver {
  const driver = Object.hasOwn(DRIVERS, kind) ? DRIVERS[kind] : undefined
  if (!driver) throw new StackEmulatorError(`No driver is named ${JSON.stringify(kind)}`, { code: 'BAD_OPTION', fix: `Use one of ${DRIVER_NAMES.join(', ')}.` })
  return driver
}
