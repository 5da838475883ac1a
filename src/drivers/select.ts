/**
 * Picks the driver from the `driver` option and loads what it runs: the QEMU driver an image
 * manifest, the Docker and external drivers a service manifest. Each driver is imported only
 * when chosen (testcontainers is optional).
 */
import { loadManifest } from '../image/manifest.js'
import type { SupervisorConfig } from '../supervisor/config.js'
import { loadServiceManifest } from './service-manifest.js'
import type { DriverStartOptions, RunningInstance } from './types.js'

type Hooks = { log: (line: string) => void; progress: (phase: string) => void }

export async function startDriver(
  config: SupervisorConfig,
  checkpoint?: DriverStartOptions['checkpoint'],
): Promise<{
  manifest: { name: string; fingerprint: string; credentials?: { service: string; path: string } }
  start: (hooks: Hooks) => Promise<RunningInstance>
}> {
  const common = { ...config.driver, settings: config.settings, instanceDir: config.paths.dir }
  if (config.driver.kind === 'qemu') {
    const manifest = await loadManifest(config.manifestPath)
    const { qemuDriver } = await import('./qemu/driver.js')
    return { manifest, start: (hooks) => qemuDriver.start({ ...common, manifest, checkpoint, ...hooks }) }
  }
  const manifest = await loadServiceManifest(config.manifestPath)
  const { dockerDriver } = await import('./docker/driver.js')
  const { externalDriver } = await import('./external/driver.js')
  const driver = config.driver.kind === 'docker' ? dockerDriver : externalDriver
  return { manifest, start: (hooks) => driver.start({ ...common, manifest, ...hooks }) }
}
