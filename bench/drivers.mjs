// npm run bench -- --driver docker [--runs N] [--json] [--only qemu|docker]
// The QEMU and Docker drivers side by side, in one run, by the same procedure: acquire() from
// nothing running to healthy with credentials (QEMU: a VM restored from its snapshot; Docker: a
// new container), then reset to healthy with credentials. Medians of N runs (default 5); one
// table row per driver, or with --json one object holding both. The first acquire of each driver
// builds what is missing (image, snapshot, container image) and is not timed.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { acquire, stopInstance } from '../dist/index.js'
import { readSettings } from '../dist/settings.js'

const json = process.argv.includes('--json')
const option = (name) => (process.argv.includes(name) ? process.argv[process.argv.indexOf(name) + 1] : undefined)
const runs = Number(option('--runs') ?? 5)
const only = option('--only')
const drivers = only ? [only] : ['qemu', 'docker']
if (!drivers.every((d) => d === 'qemu' || d === 'docker')) throw new Error('--only takes qemu or docker (external has no lifecycle to time)')
const say = (line) => json || process.stderr.write(`${line}\n`)
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
// A state root of its own (no instance of the user's is touched), the user's image cache.
process.env.STACK_EMULATOR_CACHE_DIR = readSettings().cacheRoot
process.env.STACK_EMULATOR_HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'se-bench-drivers-'))
process.env.TESTCONTAINERS_RYUK_DISABLED = 'true'

async function measure(driver) {
  await (await acquire({ name: `${driver}-warm`, driver, onLog: say, onProgress: say })).release()
  await stopInstance(`${driver}-warm`)
  const starts = []
  const resets = []
  let accel
  for (let i = 0; i < runs; i++) {
    const name = `${driver}-bench`
    const started = performance.now()
    const emulator = await acquire({ name, driver, onLog: say })
    starts.push(performance.now() - started)
    accel = emulator.accel
    const reset = performance.now()
    await emulator.reset({ force: true }) // includes minting the credentials again
    resets.push(performance.now() - reset)
    say(
      `${driver} run ${i + 1}/${runs}: start ${starts.at(-1).toFixed(0)} ms, reset ${resets.at(-1).toFixed(0)} ms ${JSON.stringify(emulator.startup.vmPhases)}`,
    )
    await emulator.release()
    await stopInstance(name)
  }
  return { driver, accel, startMs: Math.round(median(starts)), resetMs: Math.round(median(resets)) }
}

const results = []
try {
  for (const driver of drivers) results.push(await measure(driver))
} finally {
  fs.rmSync(process.env.STACK_EMULATOR_HOME, { recursive: true, force: true })
}
if (json) {
  process.stdout.write(`${JSON.stringify({ runs, drivers: results })}\n`)
} else {
  process.stdout.write(
    `medians of ${runs} runs; start = acquire() from nothing running to healthy with credentials, reset = reset() to healthy with credentials\n`,
  )
  process.stdout.write('| driver | how it runs | start | reset |\n| --- | --- | --- | --- |\n')
  for (const r of results) process.stdout.write(`| ${r.driver} | ${r.accel} | ${r.startMs} ms | ${r.resetMs} ms |\n`)
}
