/**
 * The Docker driver: the emulator as one container, started through testcontainers. Each
 * service's host port is chosen here (the `ports` option, else a free one), so the container is
 * told the ports its browser URLs name (`containerPorts`). With a bridge they are published, on
 * 127.0.0.1 for a local engine; with host networking (engines started with --bridge=none) the
 * services listen on them, on 127.0.0.1, told through the container's environment (`portEnv`).
 * Config files reach the credential route through a per-instance folder mounted at `container.hostMount`; the internal key is chosen here
 * and passed in. A lifeline socket stops the container when this process dies, however it dies.
 */
import crypto from 'node:crypto'
import fs from 'node:fs/promises'
import net from 'node:net'
import path from 'node:path'
import { StackEmulatorError } from '../../errors.js'
import { Stopwatch } from '../../stopwatch.js'
import { HostShare } from '../host-share.js'
import { serviceUrls } from '../manifest.js'
import type { ServiceManifest } from '../service-manifest.js'
import type { Capabilities, Driver, DriverStartOptions, ResetResult, RunningInstance } from '../types.js'
import type { WaitStrategy } from 'testcontainers'
import { connectEngine, hasBridge, isLocal, loadTestcontainers, type Testcontainers } from './engine.js'
import { ensureContainerImage } from './image.js'

export type ContainerStartOptions = DriverStartOptions & { manifest: ServiceManifest }

const INSTANCE_LABEL = 'stack-emulator.instance'
const LIFELINE_MOUNT = '/run/stack-emulator-lifeline'

export const dockerDriver: Driver<ServiceManifest> = {
  name: 'docker',
  async start(options: ContainerStartOptions): Promise<RunningInstance> {
    const stopwatch = new Stopwatch()
    const tc = await loadTestcontainers()
    const client = await connectEngine(tc)
    const image = await ensureContainerImage(client, options.manifest, { cacheRoot: options.settings.cacheRoot, progress: options.progress, log: options.log })
    await removeLeftovers(client, options.instanceDir)
    const bridge = await hasBridge(client)
    stopwatch.lap('engine and image')
    const instance = new DockerInstance(tc, options, image, bridge, isLocal(client))
    await instance.launch(stopwatch)
    return instance
  },
}

/** Containers of this instance a killed supervisor left on a remote engine (a local one stops them by the lifeline). */
async function removeLeftovers(client: Awaited<ReturnType<typeof connectEngine>>, instanceDir: string): Promise<void> {
  const found = await client.container.dockerode.listContainers({ all: true, filters: { label: [`${INSTANCE_LABEL}=${instanceDir}`] } })
  await Promise.all(
    found.map((c) =>
      client.container.dockerode
        .getContainer(c.Id)
        .remove({ force: true })
        .catch(() => {}),
    ),
  )
}

type Started = Awaited<ReturnType<InstanceType<Testcontainers['GenericContainer']>['start']>>

class DockerInstance implements RunningInstance {
  readonly driver = 'docker'
  readonly capabilities: Capabilities = { snapshots: false, reset: true, clock: false, lifecycle: true }
  readonly origin = 'cold-boot' as const
  readonly accel: string
  readonly internalKey = crypto.randomBytes(32).toString('hex')
  readonly shared: HostShare | undefined
  urls: Record<string, string> = {}
  startupPhases: Record<string, number> = {}
  private container: Started | undefined
  private ports: Record<string, number> = {}
  private lifeline: net.Server | undefined
  private stopped = false
  private resolveDied!: (reason: string) => void
  readonly died = new Promise<string>((resolve) => (this.resolveDied = resolve))

  constructor(
    private readonly tc: Testcontainers,
    private readonly options: ContainerStartOptions,
    private readonly image: string,
    private readonly bridge: boolean,
    private readonly local: boolean,
  ) {
    this.accel = bridge ? 'container' : 'container, host network'
    this.shared = options.manifest.container?.hostMount ? new HostShare(options.instanceDir, 'internal-pck') : undefined
  }

  get id(): string {
    return this.container?.getId() ?? ''
  }

  async launch(stopwatch: Stopwatch): Promise<void> {
    const { manifest } = this.options
    await this.shared?.prepare()
    await this.shared?.writeVmFile('internal-pck', this.internalKey)
    for (const s of manifest.services) this.ports[s.name] = this.options.ports[s.name] || (await freePort())
    this.lifeline = await this.openLifeline()
    this.container = await this.startContainer()
    const host = this.container.getHost() === 'localhost' ? '127.0.0.1' : this.container.getHost()
    this.urls = serviceUrls(manifest.services, host, this.ports)
    stopwatch.lap('container start to healthy')
    this.startupPhases = stopwatch.phases
  }

  private async startContainer(): Promise<Started> {
    const { manifest, instanceDir, bootTimeoutMs } = this.options
    const spec = manifest.container ?? {}
    const tc = this.tc
    const plan = containerPorts(manifest, this.ports, this.bridge)
    const env: Record<string, string> = { ...spec.env, ...plan.env, STACK_EMULATOR_LIFELINE: `${LIFELINE_MOUNT}/sock` }
    if (spec.internalKeyEnv) env[spec.internalKeyEnv] = this.internalKey
    if (env.STACK_EMULATOR_BACKEND_HOST_PORT) env.NEXT_PUBLIC_STACK_API_URL ??= `http://localhost:${env.STACK_EMULATOR_BACKEND_HOST_PORT}`
    const mounts = [{ source: path.join(instanceDir, 'lifeline'), target: LIFELINE_MOUNT, mode: 'rw' as const }]
    if (this.shared && spec.hostMount) mounts.push({ source: this.shared.root, target: spec.hostMount, mode: 'rw' as const })
    // Health through testcontainers' wait strategies on the manifest's health paths.
    const checks = manifest.services
      .filter((s) => s.health)
      .map((s) => {
        const wait = tc.Wait.forHttp(s.health!.path, s.guestPort).forStatusCode(s.health!.status)
        return this.bridge ? wait : new HostNetworkWait(tc, wait, s.guestPort, this.ports[s.name]!)
      })
    const Container = autoRemoved(tc, this.local ? '127.0.0.1' : undefined)
    let container = new Container(this.image)
      .withEnvironment(env)
      .withBindMounts(mounts)
      .withLabels({ [INSTANCE_LABEL]: instanceDir })
      .withWaitStrategy(tc.Wait.forAll(checks).withStartupTimeout(bootTimeoutMs))
      .withStartupTimeout(bootTimeoutMs)
    if (plan.published) {
      container = container.withExposedPorts(...plan.published)
    } else {
      container = container.withNetworkMode('host')
    }
    this.options.progress(`starting the container (${this.image})`)
    try {
      return await container.start()
    } catch (cause) {
      throw new StackEmulatorError(`The container ${this.image} did not become healthy: ${String((cause as Error).message).split('\n')[0]}`, {
        code: 'NOT_HEALTHY',
        fix: 'See the supervisor log (stack-emulator logs --supervisor); raise the timeout with --timeout if the machine is just slow.',
        cause,
      })
    }
  }

  /** The socket whose other end the container holds: when this process dies, the container stops. */
  private async openLifeline(): Promise<net.Server> {
    const dir = path.join(this.options.instanceDir, 'lifeline')
    await fs.rm(dir, { recursive: true, force: true })
    await fs.mkdir(dir, { mode: 0o700 })
    const server = net.createServer((socket) => {
      socket.on('error', () => {})
      socket.on('close', () => {
        if (!this.stopped && !this.resetting) this.resolveDied(`the container ${this.id.slice(0, 12)} exited unexpectedly`)
      })
    })
    await new Promise<void>((resolve, reject) => server.once('error', reject).listen(path.join(dir, 'sock'), resolve))
    server.unref()
    return server
  }

  private resetting = false

  async reset(): Promise<ResetResult> {
    const started = performance.now()
    const command = this.options.manifest.container?.reset
    if (command) {
      const result = await this.container!.exec(command)
      if (result.exitCode !== 0)
        throw new StackEmulatorError(`The reset command ${command.join(' ')} failed (exit ${result.exitCode}): ${result.output.slice(-300)}`, {
          code: 'RESET_FAILED',
        })
    } else {
      // No reset command: a new container from the image, on the same ports.
      this.resetting = true
      try {
        await this.container!.stop({ timeout: 0, remove: false })
        this.container = await this.startContainer()
      } finally {
        this.resetting = false
      }
    }
    return { durationMs: Math.round(performance.now() - started), origin: this.origin }
  }

  problem(): StackEmulatorError | undefined {
    return undefined
  }

  async stop(): Promise<void> {
    if (this.stopped) return
    this.stopped = true
    await this.shared?.syncBack().catch(() => {})
    await this.container?.stop({ timeout: 0, remove: false }).catch((error: Error) => this.options.log(`stopping the container: ${error.message}`))
    this.lifeline?.close()
  }
}

/**
 * Where each service listens in the container, what the container is told, and what the engine
 * publishes. `hostPorts` are this machine's ports, already chosen. With a bridge the services
 * keep their own ports inside and each is published on its host port; with host networking they
 * listen on their host ports, on 127.0.0.1 (`bindEnv`). Either way the container is told the host
 * ports (`STACK_EMULATOR_<SERVICE>_HOST_PORT`): its browser URLs name them.
 */
export function containerPorts(
  manifest: Pick<ServiceManifest, 'services' | 'container'>,
  hostPorts: Record<string, number>,
  bridge: boolean,
): {
  env: Record<string, string>
  /** For the engine's port bindings; undefined with host networking. */
  published: { container: number; host: number }[] | undefined
} {
  const env: Record<string, string> = {}
  if (!bridge && manifest.container?.bindEnv) env[manifest.container.bindEnv] = '127.0.0.1'
  for (const s of manifest.services) {
    const host = hostPorts[s.name]!
    if (s.portEnv) env[s.portEnv] = String(bridge ? s.guestPort : host)
    env[`STACK_EMULATOR_${s.name.toUpperCase().replace(/-/g, '_')}_HOST_PORT`] = String(host)
  }
  return { env, published: bridge ? manifest.services.map((s) => ({ container: s.guestPort, host: hostPorts[s.name]! })) : undefined }
}

/**
 * The engine removes the container once it exits: after stop(), and when the lifeline makes it
 * exit after this process died (testcontainers sets AutoRemove only for its reaper). Published
 * ports go on `hostIp` (testcontainers publishes on every interface: the emulator's admin routes
 * are not for the network).
 */
function autoRemoved(tc: Testcontainers, hostIp: string | undefined) {
  return class extends tc.GenericContainer {
    constructor(image: string) {
      super(image)
      this.hostConfig.AutoRemove = true
    }
    override withExposedPorts(...ports: Parameters<InstanceType<Testcontainers['GenericContainer']>['withExposedPorts']>): this {
      super.withExposedPorts(...ports)
      for (const bindings of Object.values(this.hostConfig.PortBindings ?? {})) {
        for (const binding of (bindings ?? []) as { HostIp?: string }[]) if (hostIp) binding.HostIp = hostIp
      }
      return this
    }
  }
}

/** With host networking nothing is mapped: the wait strategy is told each port maps to itself. */
class HostNetworkWait {
  constructor(
    private readonly tc: Testcontainers,
    private readonly inner: ReturnType<Testcontainers['Wait']['forHttp']>,
    private readonly guestPort: number,
    private readonly hostPort: number,
  ) {}
  waitUntilReady(container: Parameters<WaitStrategy['waitUntilReady']>[0]): Promise<void> {
    const ports = new this.tc.BoundPorts()
    ports.setBinding(this.guestPort, this.hostPort)
    return this.inner.waitUntilReady(container, ports)
  }
  withStartupTimeout(ms: number) {
    this.inner.withStartupTimeout(ms)
    return this
  }
  isStartupTimeoutSet() {
    return this.inner.isStartupTimeoutSet()
  }
  getStartupTimeout() {
    return this.inner.getStartupTimeout()
  }
}

async function freePort(): Promise<number> {
  const server = net.createServer()
  await new Promise<void>((resolve, reject) => server.once('error', reject).listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as net.AddressInfo
  await new Promise((resolve) => server.close(resolve))
  return port
}
