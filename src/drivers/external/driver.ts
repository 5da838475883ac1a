/**
 * The external driver: an emulator someone else runs (a team server, a Kubernetes service) at
 * given URLs. No lifecycle: start only checks it by the same probes, stop leaves it running.
 * Credentials go through the same route, opened with the given internal key (the handshake file
 * is out of reach). A reset is refused unless the manifest names a reset endpoint.
 */
import { httpRequest } from '../../http.js'
import { StackEmulatorError } from '../../errors.js'
import { Stopwatch } from '../../stopwatch.js'
import { waitHealthy } from '../../stack/readiness.js'
import { healthTargets } from '../manifest.js'
import type { ServiceManifest } from '../service-manifest.js'
import type { Capabilities, Driver, DriverStartOptions, ResetResult, RunningInstance } from '../types.js'

export type ExternalStartOptions = DriverStartOptions & { manifest: ServiceManifest & { reset?: { service: string; path: string } } }

export const externalDriver: Driver<ServiceManifest> = {
  name: 'external',
  async start(options: ExternalStartOptions): Promise<RunningInstance> {
    const stopwatch = new Stopwatch()
    const urls = checkUrls(options)
    const targets = healthTargets(options.manifest.services, urls)
    options.progress(`checking the emulator at ${urls.backend ?? Object.values(urls)[0]}`)
    try {
      await waitHealthy({ targets, timeoutMs: options.bootTimeoutMs, intervalMs: 250 })
    } catch (error) {
      throw new StackEmulatorError(`The external emulator is not healthy: ${(error as Error).message}`, {
        code: 'NOT_HEALTHY',
        fix: 'Check that it runs and that the URLs (--url, STACK_EMULATOR_<SERVICE>_URL) point at it; raise --timeout to wait longer.',
        cause: error,
      })
    }
    stopwatch.lap('health checks')
    return new ExternalInstance(options, urls, stopwatch.phases)
  },
}

function checkUrls(options: ExternalStartOptions): Record<string, string> {
  const urls = options.urls ?? {}
  if (!urls.backend) {
    throw new StackEmulatorError("The external driver needs the emulator's backend URL", {
      code: 'BAD_OPTION',
      fix: 'Pass urls: { backend, dashboard, ... } (--url backend=<url>), or set STACK_EMULATOR_BACKEND_URL.',
    })
  }
  for (const [service, url] of Object.entries(urls)) {
    const parsed = URL.canParse(url) ? new URL(url) : undefined
    if (!parsed || !/^https?:$/.test(parsed.protocol)) {
      throw new StackEmulatorError(`The URL of service ${service} is not an http(s) URL: ${JSON.stringify(url)}`, {
        code: 'BAD_OPTION',
        fix: `Give it as http://host:port (urls.${service}, or STACK_EMULATOR_${service.toUpperCase().replace(/-/g, '_')}_URL).`,
      })
    }
  }
  return Object.fromEntries(Object.entries(urls).map(([k, v]) => [k, v.replace(/\/+$/, '')]))
}

class ExternalInstance implements RunningInstance {
  readonly driver = 'external'
  readonly accel = 'remote'
  readonly origin = 'attached' as const
  readonly capabilities: Capabilities
  readonly died = new Promise<string>(() => {})
  readonly internalKey: string | undefined

  constructor(
    private readonly options: ExternalStartOptions,
    readonly urls: Record<string, string>,
    readonly startupPhases: Record<string, number>,
  ) {
    this.capabilities = { snapshots: false, reset: Boolean(options.manifest.reset), clock: false, lifecycle: false }
    this.internalKey = options.internalKey
  }

  get id(): string {
    return this.urls.backend!
  }

  async reset(): Promise<ResetResult> {
    const endpoint = this.options.manifest.reset
    if (!endpoint) {
      throw new StackEmulatorError(`The external emulator at ${this.id} cannot be reset from here: someone else runs it and it offers no reset`, {
        code: 'RESET_UNSUPPORTED',
        fix: 'Use isolation "none" with it and keep tests independent of each other\'s data, or run your own emulator (driver qemu or docker).',
      })
    }
    const started = performance.now()
    const response = await httpRequest(this.urls[endpoint.service] + endpoint.path, { method: 'POST', json: {}, timeoutMs: 60_000 })
    if (response.status >= 300) throw new StackEmulatorError(`The external emulator refused the reset: HTTP ${response.status}`, { code: 'RESET_FAILED' })
    return { durationMs: Math.round(performance.now() - started), origin: this.origin }
  }

  problem(): undefined {
    return undefined
  }

  async stop(): Promise<void> {
    // Someone else runs it.
  }
}
