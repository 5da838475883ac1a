/**
 * acquire(): boot or reuse the instance's VM, hold a lease on it, and return a handle with its
 * URLs, environment and credentials. The lease lasts until release() or until this process dies.
 */
import { StackEmulatorError } from '../errors.js'
import { driverFor } from '../drivers/registry.js'
import type { EmulatorManifest } from '../drivers/manifest.js'
import { local } from '../local-failure.js'
import { Stopwatch } from '../stopwatch.js'
import { withInstanceLock } from '../instance/lock.js'
import { ensureInstanceDir, instancePaths, type InstancePaths } from '../instance/paths.js'
import { sha256 } from '../digest.js'
import { readSettings, type Settings } from '../settings.js'
import { emulatorEnv, type StackCredentials } from '../stack/environment.js'
import { resolveConfigFile } from '../stack/credentials.js'
import { readConfigFile } from '../stack/config-file.js'
import { headerGenerationWarning } from '../stack/header-generation.js'
import { mailFor, type MailClient } from '../stack/mail.js'
import { signInHelpers, type PasswordSignIn, type SignInHelpers, type TestUser, type UserSession } from '../stack/test-users.js'
import type { AcquireResult, SeededSnapshotRequest, SeedSource, InstanceInfo } from '../supervisor/protocol.js'
import { attachExisting, spawnSupervisor, type Attached } from './attach.js'
import { mintProject, type MintedProject } from './projects.js'
import type { SupervisorConnection } from './connection.js'
import { assertCompatible, driverOptions, resolveOptions, type DriverOptions, type EmulatorOptions, type ResolvedOptions, seedIdentity } from './options.js'
import { pollUntil } from '../poll.js'
import type { Emulator, EmulatorInfo, Startup } from './emulator.js'

export type { Emulator, EmulatorInfo, Startup } from './emulator.js'

export function acquire(options: EmulatorOptions = {}): Promise<Emulator> {
  return acquireWith(options, options.seed ? 'self' : options.seedVersion ? 'later' : 'self')
}

/**
 * A test worker's own VM (isolation 'worker'): it restores the seeded snapshot the run's lease took
 * and fails, saying why, where there is none: it never runs on data without the seed.
 */
export function acquireForWorker(options: EmulatorOptions): Promise<Emulator> {
  return acquireWith(options, options.seed ? 'self' : 'none')
}

async function acquireWith(options: EmulatorOptions, seedFrom: SeedSource): Promise<Emulator> {
  const stopwatch = new Stopwatch()
  const settings = readSettings()
  const resolved = resolveOptions(options, settings)
  const paths = instancePaths(settings.stateRoot, resolved.name)
  const log = resolved.onLog
  const progress = resolved.onProgress
  await local(paths.dir, () => ensureInstanceDir(paths))
  const manifest = await driverFor(resolved.driver).resolve(resolved.image, { settings, progress, log })
  const driver = driverOptions(resolved, manifest)
  // Resolved once: a generated default lives in the state root, one per project (package.json
  // folder), so every instance of this project (one per worker, too) mints for the same file and
  // restores the same seeded snapshot, and another project keeps its own.
  const configFile =
    manifest.credentials && resolved.configFile !== false ? await resolveConfigFile(resolved.configFile, process.cwd(), settings.stateRoot) : undefined
  const seededSnapshot = configFile ? await seededSnapshotRequest(configFile, resolved, seedFrom) : undefined
  stopwatch.lap('options and image')
  const attached = await attachOrStart(paths, manifest, { ...settings, image: resolved.image }, driver, seededSnapshot, log, stopwatch)
  const { connection } = attached
  try {
    assertCompatible(paths.name, resolved.requested, attached.hello.driver)
    const said = new Set<string>() // a line replayed from the supervisor's history and sent live is said once
    connection.on('event', (event) => {
      if (event.event === 'progress') progress(event.phase)
      else if (event.event === 'log' && !said.has(event.line)) {
        said.add(event.line)
        log(event.line)
      }
    })
    const result = await connection.request<AcquireResult>({
      op: 'acquire',
      isolation: resolved.isolation,
      keepAlive: resolved.keepAlive,
      idleTimeoutMs: resolved.idleTimeoutMs,
      seededSnapshot,
    })
    stopwatch.lap('VM')
    // Beside the credentials, not after them: an SDK sending headers this backend ignores gets one line.
    const [handle, mismatch] = await Promise.all([
      EmulatorHandle.create(paths, configFile, connection, result),
      headerGenerationWarning(result.urls.backend ?? '', process.cwd(), manifest.source ? `${manifest.name} ${manifest.source.tag}` : manifest.name),
    ])
    if (mismatch) log(mismatch)
    stopwatch.lap('credentials')
    if (result.seeding) {
      // This suite takes the seeded snapshot that resets return to: its seed runs once, here.
      if (resolved.seed) {
        progress('seeding')
        await withSeedTimeout(resolved.seed(handle), resolved.seedTimeoutMs)
        stopwatch.lap('seed')
      }
      progress('saving the seeded snapshot')
      await handle.seededSnapshot()
      stopwatch.lap('seeded snapshot')
    }
    handle.startup = { durationMs: stopwatch.totalMs, startedVm: Boolean(attached.spawned), phases: stopwatch.phases, vmPhases: result.startupPhases }
    return handle
  } catch (error) {
    connection.close()
    throw error
  }
}

/** Saving a seeded snapshot migrates the VM and restores it: seconds under TCG, more on a loaded machine. */
const SEEDED_SNAPSHOT_TIMEOUT_MS = 180_000

/** What this suite's seeded snapshot is taken for: its config file as it is now, and its seed. */
async function seededSnapshotRequest(configFile: string, resolved: ResolvedOptions, seedFrom: SeedSource): Promise<SeededSnapshotRequest> {
  // Checked here, before anything starts: a missing or unsuitable file is the user's to fix.
  const contents = await readConfigFile(configFile)
  return { configFile, configDigest: sha256(contents), seedId: seedIdentity(resolved), seedFrom, seedTimeoutMs: resolved.seedTimeoutMs }
}

/** The seed, bounded: one that hangs fails this suite, and the others stop waiting for it. */
async function withSeedTimeout(seed: Promise<void> | void, timeoutMs: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new StackEmulatorError(`The seed did not finish within ${Math.round(timeoutMs / 1000)} s`, {
            code: 'SEED_TIMEOUT',
            fix: 'Make the seed faster (or find what it waits for), or raise seedTimeoutMs.',
          }),
        ),
      timeoutMs,
    )
  })
  try {
    await Promise.race([seed, timeout])
  } finally {
    clearTimeout(timer)
  }
}

/** How long a client waits for a supervisor that is shutting down to be gone. */
const SHUTDOWN_WAIT_MS = 30_000

async function attachOrStart(
  paths: InstancePaths,
  manifest: EmulatorManifest,
  settings: Settings,
  driver: DriverOptions,
  seededSnapshot: SeededSnapshotRequest | undefined,
  log: (line: string) => void,
  stopwatch: Stopwatch,
): Promise<Attached> {
  // A supervisor that was shutting down as we arrived: once it is gone, a new one starts.
  let shuttingDown: StackEmulatorError | undefined
  return pollUntil(
    async () => {
      try {
        const attached = await withInstanceLock(paths, async () => {
          stopwatch.lap('lock')
          const existing = await attachExisting(paths, true, log)
          if (existing) return existing
          return local(paths.dir, () => spawnSupervisor({ paths, manifestPath: manifest.file, settings, driver, seededSnapshot }, true))
        })
        stopwatch.lap('supervisor')
        if (attached.hello.imageFingerprint !== manifest.fingerprint) {
          attached.connection.close()
          throw new StackEmulatorError(
            `Instance "${paths.name}" runs image ${attached.hello.imageName} (${attached.hello.imageFingerprint.slice(0, 12)}), not ${manifest.name} (${manifest.fingerprint.slice(0, 12)})`,
            { code: 'IMAGE_MISMATCH', fix: `Use another instance name (name option, --name), or stop it first (stack-emulator stop --name ${paths.name}).` },
          )
        }
        return attached
      } catch (error) {
        if (!(error instanceof StackEmulatorError && error.code === 'SHUTTING_DOWN')) throw error
        shuttingDown = error
        return undefined
      }
    },
    { timeoutMs: SHUTDOWN_WAIT_MS, intervalMs: 50, timeoutError: () => shuttingDown! },
  )
}

class EmulatorHandle implements Emulator {
  private released: Promise<void> | undefined
  private readonly generationListeners = new Set<(generation: number) => void>()
  private resolveLost!: (reason: string) => void
  readonly lost = new Promise<string>((resolve) => (this.resolveLost = resolve))
  credentials: StackCredentials | undefined
  env: Record<string, string> = {}
  startup: Startup = { durationMs: 0, startedVm: false, phases: {}, vmPhases: {} }

  private constructor(
    private readonly paths: InstancePaths,
    private readonly configFile: string | undefined,
    private readonly connection: SupervisorConnection,
    private info: InstanceInfo,
    readonly wasReset: boolean,
    readonly lease: number,
  ) {
    connection.on('event', (event) => {
      if (event.event === 'stopped') this.resolveLost(event.reason)
      if (event.event === 'generation') for (const listener of this.generationListeners) listener(event.generation)
    })
    // Not after release(): its own release is not a loss.
    connection.on('close', () => this.released || this.resolveLost('the connection to the emulator closed'))
  }

  static async create(paths: InstancePaths, configFile: string | undefined, connection: SupervisorConnection, result: AcquireResult): Promise<EmulatorHandle> {
    const handle = new EmulatorHandle(paths, configFile, connection, result, result.reset, result.lease)
    await handle.refresh()
    return handle
  }

  get name(): string {
    return this.paths.name
  }
  get services(): Record<string, string> {
    return this.info.urls
  }
  get backendUrl(): string {
    return this.info.urls.backend ?? ''
  }
  get dashboardUrl(): string {
    return this.info.urls.dashboard ?? ''
  }
  get accel(): string {
    return this.info.accel
  }
  get origin(): InstanceInfo['origin'] {
    return this.info.origin
  }
  get driver(): InstanceInfo['driver'] {
    return this.info.driver
  }
  get id(): string {
    return this.info.id
  }
  get mail(): MailClient {
    return mailFor(this.info.urls)
  }

  private readonly signInHelpers = signInHelpers(() => {
    if (!this.credentials) {
      throw new StackEmulatorError(
        "The sign-in helpers need the project's keys, and this emulator has none (configFile: false, or an image without a credential route)",
        {
          code: 'CREDENTIALS',
          fix: 'Drop configFile: false.',
        },
      )
    }
    return { backendUrl: this.backendUrl, ...this.credentials }
  })
  get users(): SignInHelpers['users'] {
    return this.signInHelpers.users
  }
  sessionFor(user: TestUser): Promise<UserSession> {
    return this.signInHelpers.sessionFor(user)
  }
  signIn(app: PasswordSignIn, user: TestUser): Promise<void> {
    return this.signInHelpers.signIn(app, user)
  }
  authHeaders(user: TestUser): Promise<Record<string, string>> {
    return this.signInHelpers.authHeaders(user)
  }

  /**
   * Asks the supervisor for the credentials (a seeded snapshot's, or minted once per VM state and
   * shared by every suite on the VM) and rebuilds env.
   */
  private async refresh(): Promise<void> {
    if (this.configFile) this.credentials = await this.connection.request<StackCredentials>({ op: 'credentials', configFile: this.configFile })
    this.env = emulatorEnv(this.paths.name, this.info.urls, this.credentials)
  }

  /** Saves the VM as this suite's seeded snapshot (the supervisor asked this lease to seed it). */
  async seededSnapshot(): Promise<void> {
    this.info = await this.connection.request<InstanceInfo>({ op: 'saveSeededSnapshot' }, SEEDED_SNAPSHOT_TIMEOUT_MS)
    await this.refresh()
  }

  async reset(options: { force?: boolean } = {}): Promise<{ durationMs: number }> {
    const started = performance.now()
    this.info = await this.connection.request<InstanceInfo>({ op: 'reset', force: options.force ?? false })
    await this.refresh()
    return { durationMs: Math.round(performance.now() - started) }
  }

  newProject(): Promise<MintedProject> {
    return mintProject({ name: this.name, configFile: this.configFile, services: this.services, connection: this.connection })
  }

  onNewGeneration(listener: (generation: number) => void): () => void {
    this.generationListeners.add(listener)
    return () => this.generationListeners.delete(listener)
  }

  release(): Promise<void> {
    this.released ??= new Promise<void>((resolve) => {
      if (this.connection.closed) return resolve()
      this.connection.once('close', () => resolve())
      this.connection.close()
    })
    return this.released
  }

  [Symbol.asyncDispose](): Promise<void> {
    return this.release()
  }

  toJSON(): EmulatorInfo {
    const { name, services, backendUrl, dashboardUrl, env, credentials, accel, origin, driver, id } = this
    return { name, services, backendUrl, dashboardUrl, env, credentials, accel, origin, driver, id }
  }
}
