/**
 * A vitest.config.ts outside the tsconfig's `include` gets the typed inject() from
 * `/// <reference types="stack-emulator/vitest" />` or `"types": ["stack-emulator/vitest"]`,
 * resolved through the package's exports as in a user's project: tsc on a consumer whose
 * node_modules links this package (its built dist/).
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'

const root = path.resolve(import.meta.dirname, '../..')
const tsc = path.join(root, 'node_modules/typescript/bin/tsc')
const test = `import { inject } from 'vitest'\nexport const url: string = inject('stackEmulator')!.backendUrl\n`

let consumer: string

beforeAll(() => {
  expect(fs.existsSync(path.join(root, 'dist/integrations/vitest/index.d.ts')), 'run `npm run build` first').toBe(true)
  consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'se-types-'))
  fs.mkdirSync(path.join(consumer, 'node_modules'))
  fs.symlinkSync(root, path.join(consumer, 'node_modules/stack-emulator'))
  fs.symlinkSync(path.join(root, 'node_modules/vitest'), path.join(consumer, 'node_modules/vitest'))
  fs.symlinkSync(path.join(root, 'node_modules/vite'), path.join(consumer, 'node_modules/vite'))
  fs.mkdirSync(path.join(consumer, 'node_modules/@types'))
  fs.symlinkSync(path.join(root, 'node_modules/@types/node'), path.join(consumer, 'node_modules/@types/node'))
})

afterAll(() => fs.rmSync(consumer, { recursive: true, force: true }))

async function typecheck(source: string, types: string[]) {
  const dir = fs.mkdtempSync(path.join(consumer, 'p-'))
  fs.writeFileSync(path.join(dir, 'vitest.config.ts'), source)
  const compilerOptions = { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types }
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['vitest.config.ts'] }))
  return execa(process.execPath, [tsc, '-p', dir], { reject: false })
}

// tsc takes seconds per project, more while other test files run beside it.
describe('stack-emulator/vitest typings outside the include', { timeout: 60_000 }, () => {
  it('a reference line types inject()', async () => {
    const result = await typecheck(`/// <reference types="stack-emulator/vitest" />\n${test}`, [])
    expect(result.exitCode, result.stdout).toBe(0)
  })

  it('"types" in compilerOptions types inject()', async () => {
    const result = await typecheck(test, ['stack-emulator/vitest'])
    expect(result.exitCode, result.stdout).toBe(0)
  })

  it("useStackEmulator() gives the injected context with a typed mail helper, from the package's exports alone", async () => {
    const use = `import { useStackEmulator } from 'stack-emulator/vitest/test'
const { backendUrl, mail } = useStackEmulator()
export const url: string = backendUrl
export const link: Promise<string | undefined> = mail.waitForMessage('ada@example.com', { subject: /Verify/ }).then((m) => m.links.find((l) => l.includes('code=')))
`
    const result = await typecheck(use, [])
    expect(result.exitCode, result.stdout).toBe(0)
    const wrong = await typecheck(use.replace('subject: /Verify/', 'subject: 5'), [])
    expect(wrong.stdout).toContain("Type 'number' is not assignable to type 'string | RegExp | undefined'")
  })

  it('without either, inject() knows no stackEmulator (so the two above prove something)', async () => {
    const result = await typecheck(test, [])
    expect(result.stdout).toMatch(/"stackEmulator"/)
  })
})

/**
 * Vite's templates: tsconfig.json references tsconfig.node.json (the config files) and
 * tsconfig.app.json (src/, where the tests are). The augmentation reaches the tests only through
 * the project that holds them: the README's fixes, as written there, are what make it typed.
 */
describe("Vite's template layout (tsconfig.app.json holds the tests, tsconfig.node.json the config)", { timeout: 60_000 }, () => {
  const readme = fs.readFileSync(path.join(root, 'README.md'), 'utf8')
  const common = {
    skipLibCheck: true,
    moduleResolution: 'bundler',
    module: 'ESNext',
    allowImportingTsExtensions: true,
    verbatimModuleSyntax: true,
    moduleDetection: 'force',
    noEmit: true,
    strict: true,
  }

  function project(appTypes: string[], files: Record<string, string> = {}) {
    const dir = fs.mkdtempSync(path.join(consumer, 'vite-'))
    const write = (name: string, text: string) => (
      fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true }), fs.writeFileSync(path.join(dir, name), text)
    )
    write('tsconfig.json', JSON.stringify({ files: [], references: [{ path: './tsconfig.app.json' }, { path: './tsconfig.node.json' }] }))
    write(
      'tsconfig.app.json',
      JSON.stringify({
        compilerOptions: { ...common, tsBuildInfoFile: './node_modules/.tmp/app.tsbuildinfo', lib: ['ES2022', 'DOM'], types: appTypes },
        include: ['src'],
      }),
    )
    write(
      'tsconfig.node.json',
      JSON.stringify({
        compilerOptions: { ...common, tsBuildInfoFile: './node_modules/.tmp/node.tsbuildinfo', lib: ['ES2023'], types: ['node'] },
        include: ['vitest.config.ts'],
      }),
    )
    write(
      'vitest.config.ts',
      "import { defineConfig } from 'vitest/config'\nimport { stackEmulator } from 'stack-emulator/vitest'\n\nexport default defineConfig({ plugins: [stackEmulator()] })\n",
    )
    write('src/app.test.ts', test)
    for (const [name, text] of Object.entries(files)) write(name, text)
    return execa(process.execPath, [tsc, '-b', dir], { reject: false })
  }

  it("without a fix, inject() in src/ takes no key: the config project has the types, the tests' project does not", async () => {
    const result = await project(['vite/client'])
    expect(result.stdout).toContain(`src/app.test.ts`)
    expect(result.stdout).toContain(`Argument of type '"stackEmulator"' is not assignable to parameter of type 'never'`)
  })

  it('the README\'s "types" line for tsconfig.app.json types it', async () => {
    const line = /^"types": (\[[^\]\n]*"stack-emulator\/vitest"[^\]\n]*\])$/m.exec(readme)
    expect(line, 'the README shows the "types" line for tsconfig.app.json').not.toBeNull()
    const result = await project(JSON.parse(line![1]!))
    expect(result.exitCode, result.stdout).toBe(0)
  })

  it("the README's reference line in a .d.ts under src/ types it", async () => {
    expect(readme).toContain('`/// <reference types="stack-emulator/vitest" />` in one `.d.ts` file')
    const result = await project(['vite/client'], {
      'src/vite-env.d.ts': '/// <reference types="vite/client" />\n/// <reference types="stack-emulator/vitest" />\n',
    })
    expect(result.exitCode, result.stdout).toBe(0)
  })
})
