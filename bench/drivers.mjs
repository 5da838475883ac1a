// npm run bench -- --driver docker [--runs N] [--json]
// The Docker driver's start and reset, measured as the QEMU bench measures them: acquire() from
// nothing running to healthy with credentials (cold start: a new container), and reset to
// healthy. Medians of N runs (default 5). QEMU's figures come from `npm run bench` itself.
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { acquire, stopInstance } from '../dist/index.js'

const json = process.argv.includes('--json')
const runsArg = process.argv.indexOf('--runs')
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5
const driver = process.argv[process.argv.indexOf('--driver') + 1]
const say = (line) => json || process.stderr.write(`${line}\n`)
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
process.env.STACK_EMULATOR_HOME ??= fs.mkdtempSync(path.join(os.tmpdir(), 'se-bench-'))
process.env.TESTCONTAINERS_RYUK_DISABLED = 'true'
if (driver !== 'docker') throw new Error('--driver takes docker here (qemu: npm run bench; external has no lifecycle to time)')

// The first acquire builds and imports the image when missing: not timed.
await (await acquire({ name: 'warm', driver, onLog: say, onProgress: say })).release()
const starts = []
const resets = []
for (let i = 0; i < runs; i++) {
  const started = performance.now()
  const emulator = await acquire({ name: 'bench', driver, onLog: say })
  starts.push(performance.now() - started)
  const reset = performance.now()
  await emulator.reset({ force: true })
  resets.push(performance.now() - reset)
  say(`run ${i + 1}: start ${starts.at(-1).toFixed(0)} ms, reset ${resets.at(-1).toFixed(0)} ms ${JSON.stringify(emulator.startup.vmPhases)}`)
  await emulator.release()
  await stopInstance('bench')
}
const result = { driver, runs, startMs: Math.round(median(starts)), resetMs: Math.round(median(resets)) }
if (json) process.stdout.write(JSON.stringify(result) + '\n')
else process.stdout.write(`| ${driver} | acquire() from nothing (new container, healthy, credentials) ${result.startMs} ms | reset (database-level, healthy, credentials) ${result.resetMs} ms |\n`)
