/**
 * Entry of the detached supervisor process: `node main.js <instance folder>/supervisor.json`.
 * Its stdout and stderr go to the instance's supervisor.log. It claims the instance before it
 * reads or writes anything, so a second supervisor leaves the first one's files alone.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { driverFor } from '../drivers/registry.js'
import { claimOwnership } from '../instance/lock.js'
import { ALREADY_OWNED_EXIT_CODE, type SupervisorConfig } from './config.js'
import { Supervisor } from './supervisor.js'
import { seededSnapshotMisfit, seededSnapshotSlot } from './seeded-snapshot-policy.js'

// The log is a file in the instance folder: a full disk must not take the supervisor (and its
// VM) down through an unhandled write error; its clients still hear every line.
for (const stream of [process.stdout, process.stderr]) stream.on('error', () => {})

const configPath = process.argv[2]
if (!configPath) {
  process.stderr.write('usage: supervisor <supervisor.json>\n')
  process.exit(2)
}
const ownership = await claimOwnership(path.dirname(path.resolve(configPath)))
if (!ownership) {
  process.stdout.write(`${new Date().toISOString()} another supervisor owns this instance; exiting\n`)
  process.exit(ALREADY_OWNED_EXIT_CODE)
}
const config = JSON.parse(await fs.readFile(configPath, 'utf8')) as SupervisorConfig
const request = config.seededSnapshot
const seededSnapshot = request && { slot: seededSnapshotSlot(request.configFile), check: (meta: unknown) => seededSnapshotMisfit(request, meta) }
const { manifest, start } = await driverFor(config.driver.kind).open(config.manifestPath)
const supervisor = new Supervisor(config, manifest, (hooks) =>
  start({ ...config.driver, settings: config.settings, instanceDir: config.paths.dir, seededSnapshot, ...hooks }),
)
await supervisor.listen()
for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) {
  process.on(signal, () => void supervisor.shutdown(`received ${signal}`))
}
