/**
 * The Vitest plugin from the packed package in a fresh project per Vitest major: the README's
 * vitest.config.ts and test as written, plus a test file that imports the test side
 * (`stack-emulator/vitest/test`), type-checked and run. Vitest 3 refuses a config that loads
 * `vitest` ("Vitest failed to access its internal state"), hence the two entries (issue 24).
 * No VM: the plugin attaches (driver external) to a stand-in HTTP server that answers the health
 * probes and the credential route. Installs from the registry, once per major (seconds each).
 */
import fs from 'node:fs'
import http from 'node:http'
import type net from 'node:net'
import os from 'node:os'
import path from 'node:path'
import { stripVTControlCharacters } from 'node:util'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stopInstance } from '../../src/client/control.js'
import { leftoversUnder, root, useTempHome } from '../helpers.js'

const home = useTempHome('se-majors-')
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'))
const versionOf = (pkg: string) => readJson(path.join(root, 'node_modules', pkg, 'package.json')).version as string
const [nodeMajor, nodeMinor] = process.versions.node.split('.').map(Number) as [number, number]

/** Exact versions, so a run is repeatable: the floor of the peer range, the one this repo uses, the newest major. */
const MAJORS = [
  { vitest: '3.2.0', node: true },
  { vitest: versionOf('vitest'), node: true },
  // vitest 5's engines: ^22.12.0 || ^24.0.0 || >=26.0.0.
  { vitest: '5.1.2', node: (nodeMajor === 22 && nodeMinor >= 12) || nodeMajor === 24 || nodeMajor >= 26 },
]

const CREDENTIALS = { project_id: 'stand-in-project', publishable_client_key: 'pck-stand-in', secret_server_key: 'ssk-stand-in', super_secret_admin_key: 'sak-stand-in' }
let standIn: http.Server
let standInUrl: string
let tarball: string

// The consumer is a project of its own: none of this run's npm_*, VITEST* or STACK_EMULATOR_* variables.
const env = () => ({
  ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^(npm_|VITEST|STACK_EMULATOR_)/i.test(key))),
  STACK_EMULATOR_HOME: home,
  STACK_EMULATOR_CACHE_DIR: path.join(home, 'cache'),
  STACK_EMULATOR_DRIVER: 'external',
  STACK_EMULATOR_BACKEND_URL: standInUrl,
  STACK_EMULATOR_DASHBOARD_URL: standInUrl,
})
const run = (cwd: string, file: string, args: string[], extraEnv: Record<string, string> = {}) =>
  execa(file, args, { cwd, env: { ...env(), ...extraEnv }, extendEnv: false, reject: false, all: true, timeout: 300_000 })

const instanceOf = (vitest: string) => `majors-${vitest.replace(/\W/g, '-')}`

const FILES = {
  'package.json': JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  'tsconfig.json': JSON.stringify({ compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] }, include: ['vitest.config.ts', 'test'] }),
  // The README's snippets as written.
  'vitest.config.ts': `import { defineConfig } from 'vitest/config'
import { stackEmulator } from 'stack-emulator/vitest'

export default defineConfig({ plugins: [stackEmulator()] })
`,
  'test/readme.test.ts': `import { inject, test, expect } from 'vitest'

test('talks to Stack Auth', async () => {
  const { backendUrl, projectId, secretServerKey } = inject('stackEmulator')! // typed; see below
  expect(process.env.NEXT_PUBLIC_STACK_API_URL).toBe(backendUrl)             // also set
  expect([projectId, secretServerKey]).toEqual(${JSON.stringify([CREDENTIALS.project_id, CREDENTIALS.secret_server_key])})
})
`,
  'test/fixture.test.ts': `import { expect } from 'vitest'
import { test, useStackEmulator } from 'stack-emulator/vitest/test'

test('the fixture and useStackEmulator() give the injected emulator', ({ stackEmulator }) => {
  const { mail, backendUrl, projectId } = useStackEmulator()
  expect([backendUrl, projectId]).toEqual([stackEmulator.backendUrl, stackEmulator.projectId])
  expect(projectId).toBe(process.env.STACK_PROJECT_ID)
  expect(typeof mail.waitForMessage).toBe('function')
})
`,
}

beforeAll(async () => {
  // Stands in for an emulator someone else runs: health probes 200, the credential route mints.
  standIn = http.createServer((req, res) => {
    if (req.method === 'POST' && req.url === '/api/v1/internal/local-emulator/project') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(CREDENTIALS))
    } else {
      res.writeHead(200, { 'content-type': 'text/plain' }).end('ok')
    }
  })
  await new Promise<void>((resolve) => standIn.listen(0, '127.0.0.1', resolve))
  standInUrl = `http://127.0.0.1:${(standIn.address() as net.AddressInfo).port}`
  // From the built dist/ as it is: prepack's `rm -rf dist` would pull it from under other test files.
  expect(fs.existsSync(path.join(root, 'dist/integrations/vitest/index.js')), 'run `npm run build` first').toBe(true)
  const pack = await run(root, 'npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', home])
  expect(pack.exitCode, pack.all).toBe(0)
  tarball = path.join(home, (JSON.parse(pack.stdout) as { filename: string }[])[0]!.filename)
}, 120_000)

afterAll(async () => {
  for (const { vitest } of MAJORS) await stopInstance(instanceOf(vitest))
  await new Promise((resolve) => standIn.close(resolve))
  expect(await leftoversUnder(home)).toEqual([])
})

for (const { vitest, node } of MAJORS) {
  const title = `vitest ${vitest}${node ? '' : ` (not on Node ${process.versions.node}: its engines want Node 22.12 or later)`}`
  if (!node) console.warn(`vitest-majors.test.ts: skipped ${title}`)
  describe.skipIf(!node)(title, () => {
    const consumer = path.join(home, `consumer-${vitest}`)

    beforeAll(async () => {
      for (const [file, text] of Object.entries(FILES)) {
        fs.mkdirSync(path.dirname(path.join(consumer, file)), { recursive: true })
        fs.writeFileSync(path.join(consumer, file), text)
      }
      const install = await run(consumer, 'npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball, `vitest@${vitest}`, `typescript@${versionOf('typescript')}`, `@types/node@${versionOf('@types/node')}`])
      expect(install.exitCode, install.all).toBe(0)
    }, 300_000)

    it('type-checks the config and both kinds of test', async () => {
      const tsc = await run(consumer, path.join(consumer, 'node_modules/.bin/tsc'), ['-p', '.'])
      expect(tsc.exitCode, tsc.all).toBe(0)
    })

    it('loads the plugin in vitest.config.ts and runs tests that import either side', async () => {
      const result = await run(consumer, path.join(consumer, 'node_modules/.bin/vitest'), ['run'], { STACK_EMULATOR_NAME: instanceOf(vitest) })
      expect(result.exitCode, result.all).toBe(0)
      expect(stripVTControlCharacters(result.all)).toMatch(/Tests +2 passed/)
      expect(readJson(path.join(consumer, 'node_modules/vitest/package.json')).version).toBe(vitest)
    })

    it("puts the emulator's side of a failed test into its report: the task's meta and a printed block", async () => {
      const failing = path.join(consumer, 'test/failing.test.ts')
      fs.writeFileSync(failing, "import { expect, test } from 'vitest'\n\ntest('fails on purpose', () => expect(1).toBe(2))\n")
      try {
        const report = path.join(consumer, 'report.json')
        const result = await run(consumer, path.join(consumer, 'node_modules/.bin/vitest'), ['run', 'test/failing.test.ts', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`], { STACK_EMULATOR_NAME: instanceOf(vitest) })
        expect(result.exitCode, result.all).toBe(1)
        const [failed] = readJson(report).testResults[0].assertionResults
        // The stand-in is an external emulator: no services' output to read, the supervisor's log.
        const header = `stack-emulator: instance "${instanceOf(vitest)}", `
        expect(failed.meta.stackEmulatorLogs).toMatch(new RegExp(`^${header}.*\\n--- the services' output ---\\nthis driver does not read it\\n--- the supervisor's log: `))
        expect(stripVTControlCharacters(result.all)).toContain(header)
      } finally {
        fs.rmSync(failing)
      }
    })
  })
}
