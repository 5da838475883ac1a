/**
 * Entry of the detached supervisor process: `node main.js <supervisor.json>`.
 * Its stdout and stderr go to the instance's supervisor.log.
 */
import fs from 'node:fs/promises'
import { startQemuVm } from '../drivers/qemu/vm.js'
import { loadManifest } from '../image/manifest.js'
import type { SupervisorConfig } from './config.js'
import { Supervisor } from './supervisor.js'

const configPath = process.argv[2]
if (!configPath) {
  process.stderr.write('usage: supervisor <supervisor.json>\n')
  process.exit(2)
}
const config = JSON.parse(await fs.readFile(configPath, 'utf8')) as SupervisorConfig
const manifest = await loadManifest(config.manifestPath)
const supervisor = new Supervisor(config, manifest, (hooks) =>
  startQemuVm({ ...config.driver, manifest, settings: config.settings, instanceDir: config.paths.dir, ...hooks }),
)
await supervisor.listen()
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(signal, () => void supervisor.shutdown(`received ${signal}`))
}
