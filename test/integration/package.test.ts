/**
 * The package as a user gets it: `npm pack` (which builds), installed into a fresh project
 * beside the vitest and @playwright/test versions this repository uses, then a Vitest suite and
 * a Playwright suite there against the real VM, and the installed CLI. It installs from the
 * registry, so it needs network access (about a minute).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { stopInstance } from '../../src/client/control.js'
import { leftoversUnder, root, useTempHome } from '../helpers.js'

const home = useTempHome()
const consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'se-consumer-'))
const instance = `pkg-${process.pid}`
const readJson = (file: string) => JSON.parse(fs.readFileSync(file, 'utf8'))
const versionOf = (pkg: string) => readJson(path.join(root, 'node_modules', pkg, 'package.json')).version as string

// Without the npm_* variables of the `npm test` running this file: the consumer is a project of its own.
const env = Object.fromEntries(Object.entries(process.env).filter(([key]) => !/^npm_/i.test(key)))
const run = (file: string, args: string[], options: { cwd?: string; timeout?: number } = {}) =>
  execa(file, args, { cwd: consumer, env, extendEnv: false, reject: false, all: true, ...options })

let packed: { filename: string; files: { path: string }[] }

const write = (file: string, text: string) => {
  fs.mkdirSync(path.dirname(path.join(consumer, file)), { recursive: true })
  fs.writeFileSync(path.join(consumer, file), text)
}

beforeAll(async () => {
  const pack = await run('npm', ['pack', '--json', '--pack-destination', consumer], { cwd: root })
  expect(pack.exitCode, pack.all).toBe(0)
  ;[packed] = JSON.parse(pack.stdout)
  write('package.json', JSON.stringify({ name: 'consumer', private: true, type: 'module' }))
  const install = await run('npm', [
    'install',
    '--no-audit',
    '--no-fund',
    path.join(consumer, packed.filename),
    `vitest@${versionOf('vitest')}`,
    `@playwright/test@${versionOf('@playwright/test')}`,
  ])
  expect(install.exitCode, install.all).toBe(0)

  write(
    'vitest.config.ts',
    `import { defineConfig } from 'vitest/config'
import { stackEmulator } from 'stack-emulator/vitest'

export default defineConfig({ plugins: [stackEmulator({ name: ${JSON.stringify(instance)} })], test: { include: ['test/**/*.test.ts'] } })
`,
  )
  write(
    'test/health.test.ts',
    `import { expect, inject, test } from 'vitest'

test('the backend answers, and its URL is in process.env', async () => {
  const { backendUrl, name } = inject('stackEmulator')
  expect(name).toBe(${JSON.stringify(instance)})
  expect(process.env.STACK_API_URL).toBe(backendUrl)
  expect((await fetch(backendUrl + '/health?db=1')).status).toBe(200)
})
`,
  )
  write(
    'playwright.config.ts',
    `import { defineConfig } from '@playwright/test'
import { globalSetup } from 'stack-emulator/playwright'

export default defineConfig({
  testDir: 'e2e',
  globalSetup,
  use: {
    stackEmulatorOptions: { name: ${JSON.stringify(instance)} },
    launchOptions: { executablePath: '/usr/bin/chromium', args: ['--no-sandbox'] },
  },
})
`,
  )
  write(
    'e2e/health.spec.ts',
    `import { expect, test } from 'stack-emulator/playwright'

test('the backend answers through the request fixture', async ({ request, stackEmulator }) => {
  expect((await request.get(stackEmulator.backendUrl + '/health?db=1')).status()).toBe(200)
})
`,
  )
}, 600_000)

afterAll(async () => {
  await stopInstance(instance)
  expect(await leftoversUnder(home)).toEqual([])
  fs.rmSync(consumer, { recursive: true, force: true })
})

describe('the npm package', () => {
  it('ships the built code and what it reads at run time, without source maps', () => {
    const files = packed.files.map((f) => f.path)
    expect(files).toEqual(
      expect.arrayContaining([
        'dist/cli/main.js',
        'dist/index.d.ts',
        'dist/supervisor/main.js',
        'fixtures/image/build.sh',
        'fixtures/image/manifest.template.json',
        'fixtures/image/rootfs.sh',
        'fixtures/image/customize.sh',
        'fixtures/image/base.env',
        'cloud-init/user-data',
        'LICENSE',
        'README.md',
        'CHANGELOG.md',
        // The README's links into docs/ resolve in the installed package too.
        'docs/how-it-works.md',
        'docs/images.md',
        'docs/benchmarks.md',
        // What the real image's manifest and the Docker driver need beside the code.
        'manifests/stack-auth.json',
        'manifests/stack-auth.base.env',
        'docker/manifest.json',
        'docker/build.sh',
      ]),
    )
    expect(files.filter((f) => f.endsWith('.map') || f.startsWith('src/'))).toEqual([])
    // scripts/ serves this repository (its npm scripts, .ci/run, the driver tests): nothing in the package runs it.
    expect(files.filter((f) => f.startsWith('scripts/'))).toEqual([])
  })

  it('works with Vitest in a fresh project', async () => {
    const result = await run('npx', ['vitest', 'run'], { timeout: 300_000 })
    expect(result.exitCode, result.all).toBe(0)
  }, 300_000)

  it('works with Playwright in a fresh project', async () => {
    const result = await run('npx', ['playwright', 'test', '--reporter', 'line'], { timeout: 300_000 })
    expect(result.exitCode, result.all).toBe(0)
  }, 300_000)

  it('installs the CLI', async () => {
    const result = await run(path.join(consumer, 'node_modules/.bin/stack-emulator'), ['--version'])
    expect(result.stdout).toBe(readJson(path.join(root, 'package.json')).version)
  })
})
