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
const test = `import { inject } from 'vitest'\nexport const url: string = inject('stackEmulator').backendUrl\n`

let consumer: string

beforeAll(() => {
  expect(fs.existsSync(path.join(root, 'dist/integrations/vitest/index.d.ts')), 'run `npm run build` first').toBe(true)
  consumer = fs.mkdtempSync(path.join(os.tmpdir(), 'se-types-'))
  fs.mkdirSync(path.join(consumer, 'node_modules'))
  fs.symlinkSync(root, path.join(consumer, 'node_modules/stack-emulator'))
  fs.symlinkSync(path.join(root, 'node_modules/vitest'), path.join(consumer, 'node_modules/vitest'))
})

afterAll(() => fs.rmSync(consumer, { recursive: true, force: true }))

async function typecheck(source: string, types: string[]) {
  const dir = fs.mkdtempSync(path.join(consumer, 'p-'))
  fs.writeFileSync(path.join(dir, 'vitest.config.ts'), source)
  const compilerOptions = { module: 'NodeNext', moduleResolution: 'NodeNext', strict: true, noEmit: true, skipLibCheck: true, types }
  fs.writeFileSync(path.join(dir, 'tsconfig.json'), JSON.stringify({ compilerOptions, files: ['vitest.config.ts'] }))
  return execa(process.execPath, [tsc, '-p', dir], { reject: false })
}

describe('stack-emulator/vitest typings outside the include', () => {
  it('a reference line types inject()', async () => {
    const result = await typecheck(`/// <reference types="stack-emulator/vitest" />\n${test}`, [])
    expect(result.exitCode, result.stdout).toBe(0)
  })

  it('"types" in compilerOptions types inject()', async () => {
    const result = await typecheck(test, ['stack-emulator/vitest'])
    expect(result.exitCode, result.stdout).toBe(0)
  })

  it('useStackEmulator() gives the injected context with a typed mail helper, from the package\'s exports alone', async () => {
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
