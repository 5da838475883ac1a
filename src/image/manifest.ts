/**
 * The image manifest: everything the driver needs to boot an image, and nothing specific to
 * the fixture. The real Stack Auth image is just another manifest (manifests/stack-auth.json).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { StackEmulatorError } from '../errors.js'
import { checkPathPart } from '../instance/paths.js'
import { fixtureRuntimeEnv } from '../stack/runtime-env.js'
import { ARCHES, type Arch } from './names.js'

export interface HealthCheck {
  path: string
  /** Expected HTTP status. @default 200 */
  status: number
}

/** The one default of a health check: HTTP 200. */
export const DEFAULT_HEALTH_STATUS = 200

/** `services` with every health check's status filled in: each loader applies it once, and no reader again. */
export function withHealthDefaults<S extends { health?: { path: string; status?: number } }>(services: S[]): S[] {
  return services.map((s) => (s.health ? { ...s, health: { ...s.health, status: s.health.status ?? DEFAULT_HEALTH_STATUS } } : s))
}

export interface ServiceSpec {
  name: string
  guestPort: number
  /** Host port used unless the `ports` option says otherwise; absent or 0 = the driver picks a free one. */
  hostPort?: number
  health?: HealthCheck
}

export type BootSpec =
  /** `kernel` and `initrd`: relative to the manifest's folder, or absolute. */
  { kind: 'kernel'; kernel: string; initrd?: string; append: string; bios?: 'qboot' | 'default' } | { kind: 'disk' }

/**
 * The read-only ISO (volume label `label`) the driver writes for each instance before it boots:
 * the generated env file (`runtimeEnv`: each service's host port, the VM folder, `env`) and files
 * copied from the image's folder.
 */
export interface RuntimeVolumeSpec {
  label: string
  /** Name in the volume -> source file, relative to the manifest's folder (base.env). */
  files: Record<string, string>
  /** Name of the generated env file (runtime.env). */
  runtimeEnv?: string
  /** Fixed lines of the generated env file (STACK_EMULATOR_PORT_PREFIX). */
  env?: Record<string, string>
  /**
   * The guest bakes host ports into what it serves. `true`: every service's (the real image's
   * browser URLs): snapshots are captured per set of host ports, and every port must be fixed
   * (not 0). A list of services: only theirs (the fixture's mock OAuth sign-in page, which a
   * browser visits on its host port): snapshots are per value of those ports, 0 where none is given.
   */
  hostPortsInSnapshot?: boolean | string[]
}

/**
 * A host folder shared over 9p: mount tag `tag`, mounted by the guest at `guestPath`. Snapshots
 * hold it unmounted; after each restore `mountCommand` runs in the guest through the guest agent.
 */
export interface HostShareSpec {
  tag: string
  guestPath: string
  mountCommand: string[]
}

/** The internal project's key the guest publishes into the VM folder, and where it keeps it. */
export interface InternalKeySpec {
  /** File name in the VM folder (internal-pck). */
  file: string
  /** The same key inside the guest, read through the guest agent when a snapshot is captured. */
  guestPath: string
}

export type Firmware = 'default' | 'uefi'

export interface EndpointRef {
  service: string
  path: string
}

/** What a pulled image's manifest says about where it came from. */
export interface ImageSource {
  repo: string
  tag: string
  arch: Arch
  /** The release asset's API URL (never with a token). */
  assetUrl: string
  pulledAt: string
  sizeBytes: number
  /** The stack-auth/stack-auth commit the release says it was built from; absent when it does not say. */
  commit?: string
  /** Where the release said it: its tag's sha8, its notes, or its target. */
  commitFrom?: 'tag' | 'body' | 'target_commitish'
  /** The user's own files used instead of the shipped ones (`image pull --manifest`, `--base-env`), as given. */
  userFiles?: { manifest?: string; baseEnv?: string }
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
  /** Guest architecture. @default 'amd64' (see `platform` for every default below) */
  arch?: Arch
  /** QEMU machine type: pc or q35 on amd64, virt on arm64. */
  machine?: string
  /** CPU model under TCG (hardware accelerators always pass the host's). */
  cpu?: string
  /** `default`: QEMU's own (SeaBIOS on amd64); `uefi`: edk2 in pflash. arm64 is always uefi. */
  firmware?: Firmware
  runtimeVolume?: RuntimeVolumeSpec
  hostShare?: HostShareSpec
  /** A virtio-serial port for qemu-guest-agent (org.qemu.guest_agent.0). */
  guestAgent?: boolean
  /**
   * The systemd unit that runs the services (Stack Auth's `stack.service`): `stack-emulator logs`
   * reads its journal through the guest agent, where a restored guest's output is.
   */
  serviceUnit?: string
  services: ServiceSpec[]
  /** Guest endpoint that sets the guest clock after a snapshot restore. */
  clock?: EndpointRef
  /** Stack Auth's local-emulator credential route, and the internal key that opens it. */
  credentials?: EndpointRef & { internalKey?: InternalKeySpec }
  /** Where a pulled image came from (release, asset, time); absent for built images. */
  source?: ImageSource
  /** The manifest file and its folder; resolved when loaded. */
  file: string
  dir: string
}

/**
 * Reads and checks a manifest. `env` adds the user's lines to the runtime volume's env (the
 * fixture's STACK_EMULATOR_FIXTURE_HEADERS): applied here, once, so the volume written and the
 * digest of it in every snapshot's fingerprint both see them, and each value gets its own snapshot.
 */
export async function loadManifest(file: string, env: NodeJS.ProcessEnv = process.env): Promise<ImageManifest> {
  let text: string
  try {
    text = await fs.readFile(file, 'utf8')
  } catch (cause) {
    throw new StackEmulatorError(`Image manifest ${file} cannot be read`, {
      code: 'IMAGE_NOT_FOUND',
      fix: 'Point the image option (--image, STACK_EMULATOR_IMAGE) at a manifest.json, or leave it unset for the built fixture image.',
      cause,
    })
  }
  let raw: Partial<ImageManifest>
  try {
    raw = JSON.parse(text) as Partial<ImageManifest>
    if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) throw new Error('not an object')
  } catch (cause) {
    throw new StackEmulatorError(`Image manifest ${file} is not valid JSON`, {
      code: 'IMAGE_NOT_FOUND',
      fix: 'Fix the file or rebuild the image (stack-emulator image build).',
      cause,
    })
  }
  const manifest = { ...raw, file: path.resolve(file), dir: path.dirname(path.resolve(file)) } as ImageManifest
  validate(manifest, file)
  manifest.services = withHealthDefaults(manifest.services)
  if (manifest.runtimeVolume) manifest.runtimeVolume.env = { ...manifest.runtimeVolume.env, ...fixtureRuntimeEnv(manifest.name, env) }
  await assertFile(path.join(manifest.dir, manifest.disk), file)
  for (const source of Object.values(manifest.runtimeVolume?.files ?? {})) await assertFile(path.resolve(manifest.dir, source), file)
  if (manifest.boot.kind === 'kernel') {
    await assertFile(path.resolve(manifest.dir, manifest.boot.kernel), file)
    if (manifest.boot.initrd) await assertFile(path.resolve(manifest.dir, manifest.boot.initrd), file)
  }
  return manifest
}

/** The manifest's machine fields with every default filled in. */
export interface Platform {
  arch: Arch
  machine: string
  /** The CPU model under TCG. */
  tcgCpu: string
  firmware: Firmware
}

/**
 * Every default of the machine fields, written once: amd64; `pc` for a kernel boot (qboot), `q35`
 * for a disk boot (the real image, whose share's root port needs PCIe), `virt` on arm64; under
 * TCG a fixed, portable model on amd64 (RDRAND seeds the guest's RNG at once: without it
 * PostgreSQL waits about 3 s for entropy) and `max` on arm64; QEMU's own firmware on amd64, UEFI
 * on arm64 (its only choice).
 */
export function platform(m: Pick<ImageManifest, 'arch' | 'machine' | 'cpu' | 'firmware' | 'boot'>): Platform {
  const arch = m.arch ?? 'amd64'
  return {
    arch,
    machine: m.machine ?? (arch === 'arm64' ? 'virt' : m.boot.kind === 'kernel' ? 'pc' : 'q35'),
    tcgCpu: m.cpu ?? (arch === 'arm64' ? 'max' : 'qemu64,+rdrand'),
    firmware: m.firmware ?? (arch === 'arm64' ? 'uefi' : 'default'),
  }
}

/** Machine types per arch (a versioned one such as pc-q35-7.2 too); those with a PCIe root bus can take the share's root port. */
const MACHINES: Record<Arch, RegExp> = { amd64: /^(pc|q35|pc-(i440fx|q35)-\d+\.\d+)$/, arm64: /^virt(-\d+\.\d+)?$/ }
const PCIE_MACHINE = /^(q35|pc-q35-\d+\.\d+|virt(-\d+\.\d+)?)$/
const CPU_MODEL = /^[A-Za-z0-9_.+=-]+(,[A-Za-z0-9_.+=-]+)*$/
const VOLUME_LABEL = /^[A-Z0-9_]{1,32}$/
const VOLUME_FILE = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$/
const ENV_NAME = /^[A-Z_][A-Z0-9_]{0,63}$/
const GUEST_PATH = /^\/[\x21-\x7e]{0,199}$/
const MOUNT_TAG = /^[A-Za-z0-9_-]{1,31}$/

const SERVICE_NAME = /^[a-z][a-z0-9_-]{0,31}$/

/** Every field checked, so a malformed manifest gets one error listing what is wrong, never a TypeError. */
function validate(m: ImageManifest, file: string): void {
  const problems: string[] = []
  const isObject = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v)
  const port = (v: unknown, min: number) => Number.isInteger(v) && (v as number) >= min && (v as number) <= 65_535
  const urlPath = (v: unknown) => typeof v === 'string' && v.startsWith('/') && v.length < 500
  try {
    checkPathPart('name', m.name)
  } catch {
    problems.push('"name" must be letters, digits, ".", "_" or "-" (at most 63, not starting with a symbol)')
  }
  if (typeof m.fingerprint !== 'string' || !/^[\x21-\x7e]{1,200}$/.test(m.fingerprint))
    problems.push('"fingerprint" must be a string of 1 to 200 visible characters')
  if (typeof m.disk !== 'string' || !m.disk) problems.push('"disk" must be a path')
  if (!Number.isInteger(m.memoryMb) || m.memoryMb < 64 || m.memoryMb > 65_536) problems.push('"memoryMb" must be an integer from 64 to 65536')
  if (!Number.isInteger(m.cpus) || m.cpus < 1 || m.cpus > 64) problems.push('"cpus" must be an integer from 1 to 64')
  const boot = m.boot as unknown
  if (!isObject(boot) || (boot.kind !== 'kernel' && boot.kind !== 'disk')) problems.push('"boot.kind" must be kernel or disk')
  else if (boot.kind === 'kernel') {
    if (typeof boot.kernel !== 'string' || typeof boot.append !== 'string') problems.push('"boot" of kind kernel needs "kernel" and "append" strings')
    if (boot.initrd !== undefined && typeof boot.initrd !== 'string') problems.push('"boot.initrd" must be a path')
    if (boot.bios !== undefined && boot.bios !== 'qboot' && boot.bios !== 'default') problems.push('"boot.bios" must be qboot or default')
  }
  const services = m.services as unknown
  if (!Array.isArray(services) || services.length === 0) problems.push('"services" must list at least one service')
  const names: string[] = []
  for (const s of Array.isArray(services) ? (services as unknown[]) : []) {
    const shown = JSON.stringify(s)?.slice(0, 80)
    if (!isObject(s) || typeof s.name !== 'string' || !SERVICE_NAME.test(s.name) || !port(s.guestPort, 1)) {
      problems.push(`service ${shown} needs a "name" (lower-case letters, digits, "_", "-") and a "guestPort" (1 to 65535)`)
      continue
    }
    names.push(s.name)
    if (s.hostPort !== undefined && !port(s.hostPort, 0)) problems.push(`service ${s.name}: "hostPort" must be 0 to 65535`)
    if (s.health !== undefined && (!isObject(s.health) || !urlPath(s.health.path) || (s.health.status !== undefined && !Number.isInteger(s.health.status)))) {
      problems.push(`service ${s.name}: "health" must be { "path": "/...", "status": 200 }`)
    }
  }
  for (const key of ['clock', 'credentials'] as const) {
    const ref = m[key] as unknown
    if (ref !== undefined && (!isObject(ref) || !names.includes(ref.service as string) || !urlPath(ref.path))) {
      problems.push(`"${key}" must be { "service": one of the services, "path": "/..." }`)
    }
  }
  if (m.serviceUnit !== undefined && !(typeof m.serviceUnit === 'string' && /^[\w@.-]+\.service$/.test(m.serviceUnit))) {
    problems.push('"serviceUnit" must be a systemd unit name such as "stack.service"')
  }
  problems.push(...platformProblems(m, isObject))
  if (problems.length > 0) {
    throw new StackEmulatorError(`Image manifest ${file} is invalid: ${problems.join('; ')}`, {
      code: 'IMAGE_NOT_FOUND',
      fix: 'Fix the manifest (see manifests/stack-auth.json for a complete one).',
    })
  }
}

function platformProblems(m: ImageManifest, isObject: (v: unknown) => v is Record<string, unknown>): string[] {
  const problems: string[] = []
  if (m.arch !== undefined && !ARCHES.includes(m.arch)) problems.push(`"arch" must be ${ARCHES.join(' or ')}`)
  if (m.machine !== undefined && typeof m.machine !== 'string') problems.push('"machine" must be a string')
  if (m.cpu !== undefined && (typeof m.cpu !== 'string' || m.cpu.length > 200 || !CPU_MODEL.test(m.cpu)))
    problems.push('"cpu" must be a QEMU CPU model such as max or qemu64,+rdrand')
  if (m.firmware !== undefined && m.firmware !== 'default' && m.firmware !== 'uefi') problems.push('"firmware" must be default or uefi')
  const volume = m.runtimeVolume as unknown
  const files = isObject(volume) && isObject(volume.files) ? Object.entries(volume.files) : []
  if (
    volume !== undefined &&
    (!isObject(volume) ||
      typeof volume.label !== 'string' ||
      !VOLUME_LABEL.test(volume.label) ||
      !isObject(volume.files) ||
      !files.every(([name, source]) => VOLUME_FILE.test(name) && typeof source === 'string' && source.length > 0) ||
      (volume.runtimeEnv !== undefined &&
        (typeof volume.runtimeEnv !== 'string' || !VOLUME_FILE.test(volume.runtimeEnv) || files.some(([name]) => name === volume.runtimeEnv))) ||
      (volume.env !== undefined &&
        (!isObject(volume.env) || !Object.entries(volume.env).every(([k, v]) => ENV_NAME.test(k) && typeof v === 'string' && !/[\n\r]/.test(v)))) ||
      (volume.hostPortsInSnapshot !== undefined &&
        typeof volume.hostPortsInSnapshot !== 'boolean' &&
        !(Array.isArray(volume.hostPortsInSnapshot) && volume.hostPortsInSnapshot.every((name: unknown) => typeof name === 'string'))))
  ) {
    problems.push(
      '"runtimeVolume" must be { "label": upper-case letters, digits or "_" (at most 32), "files": { "name in the volume": "source file" }, "runtimeEnv"?: a file name not in "files", "env"?: { "NAME": "value" }, "hostPortsInSnapshot"?: true, false or a list of service names }',
    )
  }
  const share = m.hostShare as unknown
  const shareValid =
    isObject(share) &&
    typeof share.tag === 'string' &&
    MOUNT_TAG.test(share.tag) &&
    typeof share.guestPath === 'string' &&
    GUEST_PATH.test(share.guestPath) &&
    Array.isArray(share.mountCommand) &&
    share.mountCommand.length > 0 &&
    share.mountCommand.every((a) => typeof a === 'string') &&
    GUEST_PATH.test(share.mountCommand[0] as string)
  if (share !== undefined && !shareValid)
    problems.push(
      '"hostShare" must be { "tag": letters, digits, "_" or "-" (at most 31), "guestPath": "/...", "mountCommand": ["/absolute/program", "args"...] }',
    )
  const key = isObject(m.credentials) ? (m.credentials.internalKey as unknown) : undefined
  if (
    key !== undefined &&
    (!isObject(key) || typeof key.file !== 'string' || !VOLUME_FILE.test(key.file) || typeof key.guestPath !== 'string' || !GUEST_PATH.test(key.guestPath))
  ) {
    problems.push('"credentials.internalKey" must be { "file": a file name, "guestPath": "/..." }')
  }
  if (m.guestAgent !== undefined && typeof m.guestAgent !== 'boolean') problems.push('"guestAgent" must be true or false')
  // How the fields fit together, once each is well-formed.
  if (!isObject(m.boot) || problems.length > 0) return problems
  const { arch, machine, firmware } = platform(m)
  if (!MACHINES[arch].test(machine)) problems.push(`"machine" must be ${arch === 'arm64' ? 'virt' : 'pc or q35'} on ${arch}, not ${JSON.stringify(machine)}`)
  if (arch === 'arm64' && firmware !== 'uefi') problems.push('"firmware" must be uefi on arm64 (its only firmware)')
  if (m.boot.kind === 'kernel' && m.boot.bios === 'qboot' && (arch !== 'amd64' || firmware !== 'default'))
    problems.push('"boot.bios" qboot needs arch amd64 and firmware default')
  if (key !== undefined && (share === undefined || m.guestAgent !== true))
    problems.push('"credentials.internalKey" needs a "hostShare" (where the key appears) and "guestAgent": true (how it is read at capture)')
  if (share !== undefined && m.guestAgent !== true)
    problems.push('"hostShare" needs "guestAgent": true (the share is mounted through the agent after a restore)')
  if (share !== undefined && !PCIE_MACHINE.test(machine)) {
    problems.push(`"hostShare" needs a PCIe machine (q35 on amd64, virt on arm64) for its root port, not ${JSON.stringify(machine)}`)
  }
  return problems
}

async function assertFile(file: string, manifestFile: string): Promise<void> {
  try {
    await fs.access(file)
  } catch {
    throw new StackEmulatorError(`Image file ${file} named by ${manifestFile} is missing`, {
      code: 'IMAGE_NOT_FOUND',
      fix: 'Get it with stack-emulator image pull (the real Stack Auth image; then use --image stack-auth) or stack-emulator image build (the fixture), or fix the path in the manifest.',
    })
  }
}
