// A test runner stand-in: acquires a lease from the built package, prints one JSON line, then
// holds the lease until stdin closes or says "release" (or for HOLD_MS), and releases.
// Options come as JSON in argv[2]; `seedWith` names a seed: "user" (creates seeded@example.com),
// "hang" (never ends), "fill:<file>" (writes zeros into <file> until its disk is full), or
// "fill-write:<file>" (then has the guest write).
// "write:<email>" on stdin creates a user first; "reset" resets (force) and prints the handle or the error.
// MINT_LOOP=1: mints projects (isolation 'project') one after another, a line each, until killed.
import { spawnSync } from 'node:child_process'
import readline from 'node:readline'
import { acquire } from '../../dist/index.js'
import { pollUntil } from '../../dist/poll.js'

const { seedWith, ...options } = JSON.parse(process.argv[2] ?? '{}')
const seeds = {
  user: async (e) => {
    const headers = {
      'content-type': 'application/json',
      'x-stack-project-id': e.credentials.projectId,
      'x-stack-access-type': 'server',
      'x-stack-secret-server-key': e.credentials.secretServerKey,
    }
    const response = await fetch(`${e.backendUrl}/api/v1/users`, { method: 'POST', headers, body: JSON.stringify({ primary_email: 'seeded@example.com' }) })
    if (response.status !== 201) throw new Error(`seed: HTTP ${response.status}`)
  },
  hang: () => new Promise(() => {}),
  fill: async () => void spawnSync('dd', ['if=/dev/zero', `of=${seedWith.split(':')[1]}`, 'bs=1M', 'count=100000']),
  // Fills the disk, then has the guest write (a user's row): QEMU pauses it on the full disk, and
  // the request never answers, so it is left behind once the pause is reported (or after 60 s,
  // when the test then fails on the missing line: a fixed wait lost the race on a loaded machine).
  'fill-write': async (e) => {
    await seeds.fill()
    void seeds.user(e).catch(() => {})
    await pollUntil(() => logs.some((line) => line.startsWith('The VM is paused')), { timeoutMs: 60_000, intervalMs: 100 })
  },
}
if (seedWith) options.seed = seeds[seedWith.split(':')[0]]
const started = Date.now()
const logs = []
let emulator
try {
  emulator = await acquire({ ...options, onLog: (line) => logs.push(line) })
} catch (error) {
  process.stdout.write(`${JSON.stringify({ error: error.message, code: error.code, logs })}\n`)
  process.exit(1)
}
const print = (extra = {}) =>
  process.stdout.write(
    `${JSON.stringify({
      pid: process.pid,
      qemuPid: emulator.driver === 'qemu' ? Number(emulator.id) : undefined,
      urls: emulator.services,
      env: emulator.env,
      origin: emulator.origin,
      wasReset: emulator.wasReset,
      ms: Date.now() - started,
      logs,
      ...extra,
    })}\n`,
  )
print()
// The emulator stopped under us (stack-emulator stop, a crash): say so and end, as a runner would.
void emulator.lost.then((reason) => {
  process.stdout.write(`${JSON.stringify({ lost: reason })}\n`)
  process.exit(0)
})
if (process.env.MINT_LOOP) {
  for (;;) process.stdout.write(`${JSON.stringify({ minted: (await emulator.newProject()).projectId })}\n`)
}
if (process.env.HOLD_MS) {
  await new Promise((r) => setTimeout(r, Number(process.env.HOLD_MS)))
} else {
  // Stack Auth's REST API as the project's server: access type and secret server key (new ones after a reset without a seed).
  const serverHeaders = () => ({
    'x-stack-project-id': emulator.env.STACK_PROJECT_ID,
    'x-stack-access-type': 'server',
    'x-stack-secret-server-key': emulator.env.STACK_SECRET_SERVER_KEY,
  })
  const lines = readline.createInterface({ input: process.stdin })
  for await (const line of lines) {
    if (line === 'release') break
    if (line === 'reset') {
      await emulator.reset({ force: true }).then(
        (reset) => print({ reset }),
        (error) => process.stdout.write(`${JSON.stringify({ error: error.message, code: error.code })}\n`),
      )
    }
    if (line.startsWith('write:')) {
      const response = await fetch(`${emulator.backendUrl}/api/v1/users`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', ...serverHeaders() },
        body: JSON.stringify({ primary_email: line.slice(6) }),
      })
      process.stdout.write(`${JSON.stringify({ wrote: response.status })}\n`)
    }
    if (line === 'list') {
      const response = await fetch(`${emulator.backendUrl}/api/v1/users`, {
        headers: serverHeaders(),
      })
      process.stdout.write(`${JSON.stringify({ users: (await response.json()).items.map((u) => u.primary_email) })}\n`)
    }
  }
}
await emulator.release()
// As a runner does once it has released: stdin may still be open, and it would keep the process alive.
process.exit(0)
