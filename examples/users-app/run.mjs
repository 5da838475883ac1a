// npm run example: the Vitest suite and the Playwright suite of the example app, at the same
// time, sharing one VM. Exits non-zero if either fails or if a VM is left running. The fixture
// image is built (or found in the cache) first, with its progress shown, so that neither
// runner's timeout pays for a build of a few minutes.
import { execa } from 'execa'
import { instanceStatus } from 'stack-emulator'
import path from 'node:path'
import { fileURLToPath } from 'node:url'

const dir = path.dirname(fileURLToPath(import.meta.url))
const bin = (name) => path.join(dir, '../../node_modules/.bin', name)

const image = await execa(process.execPath, [path.join(dir, '../../dist/cli/main.js'), 'image', 'build'], { stdio: 'inherit', reject: false })
if (image.exitCode !== 0) process.exit(image.exitCode ?? 1)

const runId = Date.now().toString(36)
const env = { ...process.env, EXAMPLE_RUN_ID: runId }

const suites = [
  ['vitest', [bin('vitest'), 'run', '--root', dir]],
  ['playwright', [bin('playwright'), 'test', '--config', path.join(dir, 'playwright.config.ts'), '--reporter', 'list']],
]
const results = await Promise.all(
  suites.map(async ([name, [file, ...args]]) => {
    const child = execa(file, args, { cwd: dir, env, reject: false, all: true })
    child.all.on('data', (chunk) => process.stdout.write(chunk.toString().replace(/^(?=.)/gm, `[${name}] `)))
    const result = await child
    return { name, exitCode: result.exitCode }
  }),
)
// The last lease out stops the VM: give it a moment, then make sure nothing is left.
let leftover = await instanceStatus()
for (let i = 0; leftover && i < 50; i++) {
  await new Promise((r) => setTimeout(r, 100))
  leftover = await instanceStatus()
}
for (const r of results) console.log(`example: ${r.name} ${r.exitCode === 0 ? 'passed' : `FAILED (exit ${r.exitCode})`}`)
if (leftover) console.log(`example: the VM is still running after both suites (leases: ${JSON.stringify(leftover.leases)})`)
process.exit(results.every((r) => r.exitCode === 0) && !leftover ? 0 : 1)
