/**
 * The driver-neutral manifest: what every driver resolves an image to, and all that the client
 * and the supervisor read of it (services with their health, the credential route, the
 * fingerprint). A driver keeps its own manifest (the QEMU image's boot, disk, share) inside.
 * Normalised at load (image/manifest.ts withHealthDefaults): a service's health carries its status.
 */
import type { EndpointRef, HealthCheck, ImageSource, InternalKeySpec } from '../image/manifest.js'
import type { Arch } from '../image/names.js'
import type { HealthTarget } from '../stack/readiness.js'

export interface EmulatorService {
  name: string
  guestPort: number
  /** Host port used unless the `ports` option says otherwise; absent or 0 = the driver picks a free one. */
  hostPort?: number
  health?: HealthCheck
}

export interface EmulatorManifest {
  name: string
  /** Digest of everything the emulator was built from: two suites share an instance only with the same one. */
  fingerprint: string
  /** The manifest file, absolute: what the supervisor loads again. */
  file: string
  services: EmulatorService[]
  /** Stack Auth's local-emulator credential route, and the internal key that opens it. */
  credentials?: EndpointRef & { internalKey?: InternalKeySpec }
  /** Memory the emulator gets unless the `memoryMb` option says otherwise. */
  memoryMb?: number
  /** The architecture it is built for, where the driver knows it (the `arch` option is checked against it). */
  arch?: Arch
  /** Where a pulled image came from; absent for built ones. */
  source?: ImageSource
}

/** Base URL per service that has a host port: `http://<host>:<port>`, stable across resets. */
export function serviceUrls(services: readonly EmulatorService[], host: string, ports: Record<string, number | undefined>): Record<string, string> {
  return Object.fromEntries(services.flatMap((s) => (ports[s.name] === undefined ? [] : [[s.name, `http://${host}:${ports[s.name]}`]])))
}

/** What to probe: each service with a health check and a URL, at its base URL plus its health path. */
export function healthTargets(services: readonly EmulatorService[], urls: Record<string, string>): HealthTarget[] {
  return services.filter((s) => s.health && urls[s.name]).map((s) => ({ name: s.name, url: urls[s.name] + s.health!.path, status: s.health!.status }))
}
