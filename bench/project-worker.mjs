// One test worker under isolation 'project' (bench/run.mjs): holds a lease on the shared VM, keeps
// MINT_AHEAD projects minted ahead, and runs TESTS tests of WORK_MS each, timing each test's wait
// for its project. Prints the waits (ms) as one JSON line.
import { acquire } from '../dist/index.js'
import { startProjectPool } from '../dist/client/projects.js'

const { NAME, MINT_AHEAD = '2', TESTS = '25', WORK_MS = '250' } = process.env
const emulator = await acquire({ name: NAME, onLog: () => {} })
const pool = await startProjectPool(emulator, { per: 'test', mintAhead: Number(MINT_AHEAD), seedProject: undefined })
const waits = []
for (let i = 0; i < Number(TESTS); i++) {
  await new Promise((r) => setTimeout(r, Number(WORK_MS))) // the test's own work
  const started = performance.now()
  await pool.take()
  waits.push(performance.now() - started)
}
await pool.close()
await emulator.release()
process.stdout.write(`${JSON.stringify(waits)}\n`)
