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

/**
 * Exact versions, so a run is repeatable: the floor of the peer range, the one this repo uses, the
 * newest major. `node`: a Node to run it on where this one is outside its engines (vitest 5's:
 * ^22.12.0 || ^24.0.0 || >=26.0.0), the official binary as the npm registry ships it.
 */
const MAJORS = [
  { vitest: '3.2.0' },
  { vitest: versionOf('vitest') },
  { vitest: '5.1.2', ...((nodeMajor === 22 && nodeMinor >= 12) || nodeMajor === 24 || nodeMajor >= 26 ? {} : { node: '24.22.3', typesNode: '24.19.4' }) },
]

const CREDENTIALS = {
  project_id: 'stand-in-project',
  publishable_client_key: 'pck-stand-in',
  secret_server_key: 'ssk-stand-in',
  super_secret_admin_key: 'sak-stand-in',
}
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

/** Installs Node `version` (the registry's node-<platform>-<arch> package) and returns its bin folder. */
async function installNode(version: string): Promise<string> {
  const prefix = path.join(home, `node-${version}`)
  const pkg = `node-${process.platform}-${process.arch}`
  const install = await run(home, 'npm', ['install', '--prefix', prefix, '--no-audit', '--no-fund', '--prefer-offline', `${pkg}@${version}`])
  expect(install.exitCode, install.all).toBe(0)
  const bin = path.join(prefix, 'node_modules', pkg, 'bin')
  expect((await execa(path.join(bin, 'node'), ['-v'])).stdout).toBe(`v${version}`)
  return bin
}

const instanceOf = (vitest: string) => `majors-${vitest.replace(/\W/g, '-')}`

const FILES = {
  'package.json': JSON.stringify({ name: 'consumer', private: true, type: 'module' }),
  'tsconfig.json': JSON.stringify({
    compilerOptions: { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types: ['node'] },
    include: ['vitest.config.ts', 'test'],
  }),
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
  expect(process.version).toBe(process.env.EXPECTED_NODE)
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

for (const { vitest, node, typesNode = versionOf('@types/node') } of MAJORS as { vitest: string; node?: string; typesNode?: string }[]) {
  describe(`vitest ${vitest}${node ? ` on Node ${node}` : ''}`, () => {
    const consumer = path.join(home, `consumer-${vitest}`)
    // The consumer's tools (#!/usr/bin/env node) and the supervisor they spawn run on this Node.
    let nodePath: Record<string, string> = {}

    beforeAll(async () => {
      for (const [file, text] of Object.entries(FILES)) {
        fs.mkdirSync(path.dirname(path.join(consumer, file)), { recursive: true })
        fs.writeFileSync(path.join(consumer, file), text)
      }
      if (node) nodePath = { PATH: `${await installNode(node)}${path.delimiter}${process.env.PATH}` }
      const install = await run(
        consumer,
        'npm',
        [
          'install',
          '--no-audit',
          '--no-fund',
          '--prefer-offline',
          tarball,
          `vitest@${vitest}`,
          `typescript@${versionOf('typescript')}`,
          `@types/node@${typesNode}`,
        ],
        nodePath,
      )
      expect(install.exitCode, install.all).toBe(0)
    }, 300_000)

    it('type-checks the config and both kinds of test', async () => {
      const tsc = await run(consumer, path.join(consumer, 'node_modules/.bin/tsc'), ['-p', '.'], nodePath)
      expect(tsc.exitCode, tsc.all).toBe(0)
    })

    it('loads the plugin in vitest.config.ts and runs tests that import either side', async () => {
      const result = await run(consumer, path.join(consumer, 'node_modules/.bin/vitest'), ['run'], {
        ...nodePath,
        STACK_EMULATOR_NAME: instanceOf(vitest),
        EXPECTED_NODE: node ? `v${node}` : process.version,
      })
      expect(result.exitCode, result.all).toBe(0)
      expect(stripVTControlCharacters(result.all)).toMatch(/Tests +2 passed/)
      expect(readJson(path.join(consumer, 'node_modules/vitest/package.json')).version).toBe(vitest)
    })

    it("puts the emulator's side of a failed test into its report: the task's meta and a printed block", async () => {
      const failing = path.join(consumer, 'test/failing.test.ts')
      fs.writeFileSync(failing, "import { expect, test } from 'vitest'\n\ntest('fails on purpose', () => expect(1).toBe(2))\n")
      try {
        const report = path.join(consumer, 'report.json')
        const result = await run(
          consumer,
          path.join(consumer, 'node_modules/.bin/vitest'),
          ['run', 'test/failing.test.ts', '--reporter=default', '--reporter=json', `--outputFile.json=${report}`],
          { ...nodePath, STACK_EMULATOR_NAME: instanceOf(vitest) },
        )
        expect(result.exitCode, result.all).toBe(1)
        const [failed] = readJson(report).testResults[0].assertionResults
        // The stand-in is an external emulator: no services' output to read, the supervisor's log.
        const header = `stack-emulator: instance "${instanceOf(vitest)}", `
        expect(failed.meta.stackEmulatorLogs).toMatch(
          new RegExp(`^${header}.*\\n--- the services' output ---\\nthis driver does not read it\\n--- the supervisor's log: `),
        )
        expect(stripVTControlCharacters(result.all)).toContain(header)
      } finally {
        fs.rmSync(failing)
      }
    })
  })
}
