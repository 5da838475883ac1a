// npm run bench [-- --json] [-- --runs N] [-- --resets N (default 50)]
// Measures, side by side in one run on this machine: cold boot to healthy, snapshot start to
// healthy, reset to healthy, QEMU RSS of a restored VM, attach time of a second suite, and the
// time for 16 simultaneous acquirers to all be ready, resets to a seeded snapshot, a pool of VMs,
// a fresh project per test on one VM, and a signed-in first page through the sign-in helpers
// beside the example app's own pages. Medians of N runs (default 5).
// --driver docker: the QEMU and Docker drivers' start and reset side by side (bench/drivers.mjs).
if (process.argv.includes('--driver') && process.argv[process.argv.indexOf('--driver') + 1] !== 'qemu') {
  await import('./drivers.mjs')
  process.exit(0)
}
import { execa } from 'execa'
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { fileURLToPath } from 'node:url'
import { acquire, stopInstance } from '../dist/index.js'
import { startQemuVm } from '../dist/drivers/qemu/vm.js'
import { resolveImage } from '../dist/image/resolve.js'
import { driverOptions, resolveOptions } from '../dist/client/options.js'
import { readSettings } from '../dist/settings.js'

const json = process.argv.includes('--json')
const runsArg = process.argv.indexOf('--runs')
const runs = runsArg > 0 ? Number(process.argv[runsArg + 1]) : 5
const resetsArg = process.argv.indexOf('--resets')
const resetCount = resetsArg > 0 ? Number(process.argv[resetsArg + 1]) : 50
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..')
const said = new Set()
const say = (line) => {
  if (json || said.has(line)) return
  said.add(line)
  process.stderr.write(`${line}\n`)
}

process.env.STACK_EMULATOR_CACHE_DIR = readSettings().cacheRoot
process.env.STACK_EMULATOR_HOME = fs.mkdtempSync(path.join(os.tmpdir(), 'se-bench-'))
const settings = readSettings()
const manifest = await resolveImage(undefined, { settings, progress: say, log: say })
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]
const instanceDir = (name) => path.join(settings.stateRoot, name)
// The driver options every surface gets by default, from the one place that applies them.
const defaults = driverOptions(resolveOptions({}, settings), manifest)
const driver = (name, extra) => {
  fs.mkdirSync(instanceDir(name), { recursive: true, mode: 0o700 })
  return startQemuVm({ ...defaults, manifest, settings, instanceDir: instanceDir(name), log: say, progress: () => {}, ...extra })
}
const rssMb = (pid) => Number(/VmRSS:\s+(\d+)/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) / 1024

async function time(fn) {
  const started = performance.now()
  const value = await fn()
  return { ms: performance.now() - started, value }
}

// Make sure the snapshot exists before timing anything (its capture is a one-off cost).
await (await driver('warmup', {})).stop()

const cold = []
for (let i = 0; i < runs; i++) {
  const { ms, value: vm } = await time(() => driver('cold', { snapshot: false, fresh: true }))
  cold.push(ms)
  await vm.stop()
  say(`cold boot ${i + 1}/${runs}: ${ms.toFixed(0)} ms`)
}

const snapshotStarts = []
const rss = []
for (let i = 0; i < runs; i++) {
  const { ms, value: vm } = await time(() => driver('snap', {}))
  snapshotStarts.push(ms)
  rss.push(rssMb(vm.pid))
  await vm.stop()
  say(`snapshot start ${i + 1}/${runs}: ${ms.toFixed(0)} ms, RSS ${rss.at(-1).toFixed(0)} MB`)
}

// The first reset of a VM, before it keeps a spare: a restore beside it, then the ports move over.
const plainResets = []
for (let i = 0; i < runs; i++) {
  const vm = await driver('reset-plain', {})
  plainResets.push((await time(() => vm.reset())).ms)
  await vm.stop()
  say(`reset without a spare ${i + 1}/${runs}: ${plainResets.at(-1).toFixed(0)} ms`)
}

// Reset by swapping in the warm spare a VM keeps after its first reset.
const resets = []
const vm = await driver('reset', {})
await vm.reset()
for (let i = 0; i < runs; i++) {
  await new Promise((r) => setTimeout(r, 1500)) // the spare is restored in the background
  const { ms } = await time(() => vm.reset())
  resets.push(ms)
  say(`reset with the warm spare ${i + 1}/${runs}: ${ms.toFixed(0)} ms`)
}
await vm.stop()

// Sharing: a second suite attaching to a running VM, and 16 processes acquiring at once.
const holder = await acquire({ name: 'share', onLog: () => {} })
const attach = []
const attachWithKeys = []
for (let i = 0; i < runs; i++) {
  const bare = await time(() => acquire({ name: 'share', configFile: false, onLog: () => {} }))
  attach.push(bare.ms)
  await bare.value.release()
  const withKeys = await time(() => acquire({ name: 'share', onLog: () => {} }))
  attachWithKeys.push(withKeys.ms)
  await withKeys.value.release()
}
await holder.release()
await stopInstance('share')

const acquirer = path.join(root, 'test/programs/acquirer.mjs')
// Baseline: 16 node processes that load the package and exit, to tell start-up from acquiring.
const startups = []
for (let i = 0; i < runs; i++) {
  const { ms } = await time(() =>
    Promise.all(
      Array.from({ length: 16 }, () =>
        execa(process.execPath, ['--input-type=module', '-e', `await import(${JSON.stringify(path.join(root, 'dist/index.js'))})`]),
      ),
    ),
  )
  startups.push(ms)
}
const crowd = []
for (let i = 0; i < runs; i++) {
  // From nothing running: every process spawned at once, timed until each printed its lease.
  const children = Array.from({ length: 16 }, () => execa(process.execPath, [acquirer, JSON.stringify({ name: 'crowd' })], { env: { HOLD_MS: '1000' } }))
  const { ms } = await time(() => Promise.all(children.map((c) => new Promise((resolve) => c.stdout.once('data', resolve)))))
  await Promise.all(children)
  crowd.push(ms)
  say(`16 acquirers ${i + 1}/${runs}: ${ms.toFixed(0)} ms`)
}
await stopInstance('crowd')

// What a user waits for (issue 15): one acquire() from nothing running, in this process, and
// `stack-emulator start --json` as a process; each with its phases (medians per phase).
const medianPhases = (list) => Object.fromEntries(Object.keys(list[0] ?? {}).map((k) => [k, Math.round(median(list.map((p) => p[k] ?? 0)))]))
const fromNothing = []
for (let i = 0; i < Math.max(runs, 5); i++) {
  const { ms, value: emulator } = await time(() => acquire({ name: 'nothing', onLog: () => {} }))
  fromNothing.push({ ms, phases: emulator.startup.phases, vmPhases: emulator.startup.vmPhases })
  await emulator.release()
  await stopInstance('nothing')
  say(`acquire() from nothing ${i + 1}: ${ms.toFixed(0)} ms ${JSON.stringify(emulator.startup.phases)}`)
}
const cliStarts = []
for (let i = 0; i < Math.max(runs, 5); i++) {
  const { ms, value } = await time(() => execa(process.execPath, [path.join(root, 'dist/cli/main.js'), 'start', '--name', 'cli', '--json']))
  cliStarts.push({ ms, phases: JSON.parse(value.stdout).startup.phases })
  await stopInstance('cli')
  say(`stack-emulator start ${i + 1}: ${ms.toFixed(0)} ms`)
}

// Isolation (issue 13): resets to a seeded snapshot as a test sees them, and a pool of VMs from it.
const pssMb = (pid) => Number(/^Pss:\s+(\d+)/m.exec(fs.readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8'))[1]) / 1024
const seed = async (e) => {
  const response = await fetch(`${e.backendUrl}/api/v1/users`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      'x-stack-project-id': e.credentials.projectId,
      'x-stack-access-type': 'server',
      'x-stack-secret-server-key': e.credentials.secretServerKey,
    },
    body: JSON.stringify({ primary_email: 'seeded@example.com' }),
  })
  if (response.status !== 201) throw new Error(`seed: HTTP ${response.status}`)
}
const seeded = await acquire({ name: 'seeded', seed, seedVersion: 'bench', onLog: () => {} })
const seededKeys = JSON.stringify(seeded.credentials)
const timedResets = async (count, pauseMs) => {
  const times = []
  for (let i = 0; i < count; i++) {
    if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs)) // the test's own work
    const { ms } = await time(() => seeded.reset())
    if (JSON.stringify(seeded.credentials) !== seededKeys) throw new Error('the keys changed across a seeded reset')
    times.push(ms)
  }
  return times
}
const seededResets = await timedResets(runs, 3000) // the warm spare is ready each time
const every250 = await timedResets(resetCount, 250)
const backToBack = await timedResets(resetCount, 0)
say(
  `seeded resets: ${seededResets.map(Math.round).join(' ')}; every 250 ms: median ${Math.round(median(every250))}; back to back: median ${Math.round(median(backToBack))}`,
)
await seeded.release()
await stopInstance('seeded')

// A pool of 4 from that seeded snapshot (isolation 'worker'), and what each extra VM costs.
const pool4 = []
const extraPss = []
for (let i = 0; i < runs; i++) {
  const { ms, value: pool } = await time(() => Promise.all([0, 1, 2, 3].map((n) => acquire({ name: `pool-${n}`, seedVersion: 'bench', onLog: () => {} }))))
  pool4.push(ms)
  const sum4 = pool.reduce((sum, e) => sum + pssMb(Number(e.id)), 0)
  await Promise.all(pool.slice(1).map((e) => e.release()))
  await Promise.all([1, 2, 3].map((n) => stopInstance(`pool-${n}`)))
  const sum1 = pssMb(Number(pool[0].id))
  extraPss.push((sum4 - sum1) / 3)
  await pool[0].release()
  await stopInstance('pool-0')
  say(`pool of 4 ${i + 1}/${runs}: all ready in ${ms.toFixed(0)} ms; each extra VM ${extraPss.at(-1).toFixed(0)} MB Pss`)
}

// Isolation by tenant (issue 25): a fresh project per test on one VM. One worker with 2 projects
// minted ahead and without, each test 250 ms of its own work (as the resets above); then 4 worker
// processes of 25 tests each on one VM: the wait per test.
const projectWorker = path.join(root, 'bench/project-worker.mjs')
const projectWaits = async (workers, mintAhead) => {
  const children = Array.from({ length: workers }, () =>
    execa(process.execPath, [projectWorker], { env: { NAME: 'projects', MINT_AHEAD: String(mintAhead), TESTS: '25' } }),
  )
  return (await Promise.all(children)).flatMap((child) => JSON.parse(child.stdout))
}
const projectHolder = await acquire({ name: 'projects', onLog: () => {} })
const projectOnDemand = await projectWaits(1, 0)
const projectAhead = await projectWaits(1, 2)
const project4Workers = await projectWaits(4, 2)
say(
  `project per test: on demand ${Math.round(median(projectOnDemand))} ms, 2 ahead ${Math.round(median(projectAhead))} ms, 4 workers ${Math.round(median(project4Workers))} ms`,
)
await projectHolder.release()
await stopInstance('projects')

// Signed in (issue 27): the helpers beside the app's own sign-up and sign-in pages.
const signIn = await (await import('./sign-in.mjs')).measureSignIn({ root, runs, say })

const result = {
  runs,
  acquireFromNothingMs: Math.round(median(fromNothing.map((r) => r.ms))),
  acquireFromNothingPhases: medianPhases(fromNothing.map((r) => r.phases)),
  acquireFromNothingVmPhases: medianPhases(fromNothing.map((r) => r.vmPhases)),
  cliStartMs: Math.round(median(cliStarts.map((r) => r.ms))),
  cliStartPhases: medianPhases(cliStarts.map((r) => r.phases)),
  accel: await (async () => {
    const v = await driver('accel', {})
    const a = v.accel
    await v.stop()
    return a
  })(),
  coldBootMs: Math.round(median(cold)),
  snapshotStartMs: Math.round(median(snapshotStarts)),
  resetMs: Math.round(median(resets)),
  resetWithoutSpareMs: Math.round(median(plainResets)),
  restoredRssMb: Math.round(median(rss)),
  startRatio: Number((median(cold) / median(snapshotStarts)).toFixed(1)),
  resetRatio: Number((median(cold) / median(resets)).toFixed(1)),
  attachMs: Math.round(median(attach)),
  attachWithCredentialsMs: Math.round(median(attachWithKeys)),
  acquire16Ms: Math.round(median(crowd)),
  nodeStartup16Ms: Math.round(median(startups)),
  acquire16OverheadMs: Math.round(median(crowd) - median(startups)),
  seededResetMs: Math.round(median(seededResets)),
  resetEvery250msMs: Math.round(median(every250)),
  resetBackToBackMs: Math.round(median(backToBack)),
  pool4ReadyMs: Math.round(median(pool4)),
  extraVmPssMb: Math.round(median(extraPss)),
  // Tenths of a millisecond: a project minted ahead is taken in well under one.
  projectMintMs: Number(median(projectOnDemand).toFixed(1)),
  projectIsolationMs: Number(median(projectAhead).toFixed(1)),
  projectIsolation4WorkersMs: Number(median(project4Workers).toFixed(1)),
  signInMs: Math.round(median(signIn.helper)),
  uiSignUpSignInMs: Math.round(median(signIn.ui)),
}
result.coldToAcquireRatio = Number((result.coldBootMs / result.acquireFromNothingMs).toFixed(1))
fs.rmSync(process.env.STACK_EMULATOR_HOME, { recursive: true, force: true })
if (json) {
  process.stdout.write(`${JSON.stringify(result)}\n`)
} else {
  const rows = [
    ['cold boot to healthy', `${result.coldBootMs} ms`],
    ['snapshot start to healthy', `${result.snapshotStartMs} ms`, `${result.startRatio}x faster than cold`],
    ['reset to healthy (warm spare)', `${result.resetMs} ms`, `${result.resetRatio}x faster than cold`],
    ['reset to healthy (first: restore beside, then swap)', `${result.resetWithoutSpareMs} ms`],
    ['QEMU RSS, restored VM', `${result.restoredRssMb} MB`],
    ['second suite attach', `${result.attachMs} ms`, 'lease only'],
    ['second suite attach with credentials', `${result.attachWithCredentialsMs} ms`, 'lease + credential route'],
    ['16 simultaneous acquirers, all ready', `${result.acquire16Ms} ms`, 'from nothing running'],
    ['16 node start-ups, for comparison', `${result.nodeStartup16Ms} ms`, 'load the package and exit'],
    ['16 acquirers minus 16 node start-ups', `${result.acquire16OverheadMs} ms`],
    ['acquire() from nothing running', `${result.acquireFromNothingMs} ms`, `${result.coldToAcquireRatio}x faster than cold`],
    ['stack-emulator start from nothing', `${result.cliStartMs} ms`, 'a process, as a user runs it'],
    ['reset to the seeded snapshot (spare ready)', `${result.seededResetMs} ms`, 'keys unchanged, as a test sees it'],
    [`reset, 250 ms of test between (${resetCount})`, `${result.resetEvery250msMs} ms`, 'median'],
    [`reset, back to back (${resetCount})`, `${result.resetBackToBackMs} ms`, 'median'],
    ['pool of 4 VMs from the snapshot, all ready', `${result.pool4ReadyMs} ms`, "isolation 'worker'"],
    ['each extra VM of the pool', `${result.extraVmPssMb} MB`, 'Pss'],
    ['a fresh project per test, minted on demand', `${result.projectMintMs} ms`, "isolation 'project', mintAhead 0"],
    ['a fresh project per test, 2 minted ahead', `${result.projectIsolationMs} ms`, "isolation 'project', the default"],
    ['the same, 4 workers x 25 tests on one VM', `${result.projectIsolation4WorkersMs} ms`, 'wait per test, no extra VM'],
    ['signed-in first page: the helpers', `${result.signInMs} ms`, 'users.create, signIn(context, user), one page load'],
    ["signed-in first page: the app's pages", `${result.uiSignUpSignInMs} ms`, 'sign up, then sign in, as a visitor'],
  ]
  process.stdout.write(`medians of ${runs} runs, accel ${result.accel}\n`)
  for (const [what, value, note = ''] of rows) process.stdout.write(`  ${what.padEnd(42)} ${value.padStart(9)}  ${note}\n`)
  const phases = (o) =>
    Object.entries(o)
      .map(([k, v]) => `${k} ${v}`)
      .join(', ')
  process.stdout.write(
    `acquire() phases (ms): ${phases(result.acquireFromNothingPhases)}\n  VM start inside them: ${phases(result.acquireFromNothingVmPhases)}\n`,
  )
  process.stdout.write(`start phases (ms, after Node's start-up): ${phases(result.cliStartPhases)}\n`)
}
