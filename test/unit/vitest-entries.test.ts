/**
 * The two Vitest entries of the built package (issue 24): what vitest.config.ts and the plugin's
 * globalSetup load must load nothing from `vitest`, which Vitest 3 refuses there ("Vitest failed
 * to access its internal state"); each entry exports only its public names. The real Vitest
 * majors run in test/integration/vitest-majors.test.ts.
 */
import fs from 'node:fs'
import path from 'node:path'
import { beforeAll, describe, expect, it } from 'vitest'

const root = path.resolve(import.meta.dirname, '../..')
const dist = path.join(root, 'dist/integrations/vitest')

/** The bare specifiers a built module loads at run time, following its relative imports. */
function bareImports(entry: string): Set<string> {
  const seen = new Set<string>()
  const bare = new Set<string>()
  const visit = (file: string) => {
    if (seen.has(file)) return
    seen.add(file)
    const text = fs.readFileSync(file, 'utf8')
    const specifiers = [
      ...text.matchAll(/^\s*(?:import|export)\s(?:[^'";()=]*?\sfrom\s*)?['"]([^'"]+)['"]/gm),
      ...text.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g),
    ].map((m) => m[1]!)
    for (const specifier of specifiers) {
      if (specifier.startsWith('.')) visit(path.resolve(path.dirname(file), specifier))
      else bare.add(specifier)
    }
  }
  visit(entry)
  return bare
}

const fromVitest = (specifiers: Set<string>) => [...specifiers].filter((s) => /^(vitest|@vitest\/)/.test(s) || s.startsWith('vitest/'))

beforeAll(() => expect(fs.existsSync(path.join(dist, 'index.js')), 'run `npm run build` first').toBe(true))

describe('the Vitest entries', () => {
  it('the config entry and the globalSetup load nothing from vitest at run time; the test entry does', () => {
    expect(fromVitest(bareImports(path.join(dist, 'index.js')))).toEqual([])
    expect(fromVitest(bareImports(path.join(dist, 'global-setup.js')))).toEqual([])
    expect(fromVitest(bareImports(path.join(dist, 'test.js')))).toEqual(['vitest']) // so the walk sees imports
  })

  it("are in the package's exports, each with only its public names", async () => {
    const { exports } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { exports: Record<string, { default: string }> }
    expect(exports['./vitest']?.default).toBe('./dist/integrations/vitest/index.js')
    expect(exports['./vitest/test']?.default).toBe('./dist/integrations/vitest/test.js')
    // Through the exports map, as a user's project resolves them.
    const load = (specifier: string): Promise<object> => import(/* @vite-ignore */ specifier)
    expect(Object.keys(await load('stack-emulator/vitest')).sort()).toEqual(['stackEmulator'])
    expect(Object.keys(await load('stack-emulator/vitest/test')).sort()).toEqual(['test', 'useStackEmulator'])
  })
})
