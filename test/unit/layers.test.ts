// The layer map (docs/development.md, ../shared/ARCHITECTURE.md) as a check on the source's imports:
// arrows point down only, no circle, and only drivers/ (with the registry) names a driver.
import fs from 'node:fs'
import path from 'node:path'
import { describe, expect, it } from 'vitest'

const SRC = path.resolve(import.meta.dirname, '../../src')

/** Higher imports lower only; top-level leaves (errors.ts, poll.ts, settings.ts, ...) are at the bottom. */
const LAYERS: Record<string, number> = {
  'index.ts': 8,
  integrations: 7,
  cli: 7,
  doctor: 6,
  client: 5,
  supervisor: 4,
  drivers: 3,
  image: 2,
  instance: 1.5,
  stack: 1,
}
const layer = (file: string) => LAYERS[file.split('/')[0]!] ?? 0

function sourceFiles(dir = SRC): string[] {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const full = path.join(dir, e.name)
    return e.isDirectory() ? sourceFiles(full) : e.name.endsWith('.ts') ? [path.relative(SRC, full)] : []
  })
}

/** Each file's relative imports (static, type-only and dynamic), as paths under src/. */
function importGraph(): Map<string, string[]> {
  const graph = new Map<string, string[]>()
  for (const file of sourceFiles()) {
    const text = fs.readFileSync(path.join(SRC, file), 'utf8')
    const targets = [...text.matchAll(/(?:from|import\()\s*'(\.[^']+)'/g)].map((m) =>
      path.relative(SRC, path.resolve(SRC, path.dirname(file), m[1]!)).replace(/\.js$/, '.ts'),
    )
    graph.set(file, targets)
  }
  return graph
}

describe('the layers of src/', () => {
  const graph = importGraph()

  it('reads every file and its imports', () => {
    expect(graph.size).toBeGreaterThan(100)
    for (const [file, targets] of graph) for (const target of targets) expect(graph.has(target), `${file} imports ${target}`).toBe(true)
  })

  it('has no import running up the layers', () => {
    const upward = [...graph].flatMap(([file, targets]) => targets.filter((t) => layer(t) > layer(file)).map((t) => `${file} -> ${t}`))
    expect(upward).toEqual([])
  })

  it('has no circle', () => {
    const circles: string[] = []
    const state = new Map<string, 'open' | 'done'>()
    const visit = (file: string, trail: string[]) => {
      if (state.get(file) === 'done') return
      if (state.get(file) === 'open') return void circles.push([...trail.slice(trail.indexOf(file)), file].join(' -> '))
      state.set(file, 'open')
      for (const target of graph.get(file) ?? []) visit(target, [...trail, file])
      state.set(file, 'done')
    }
    for (const file of graph.keys()) visit(file, [])
    expect(circles).toEqual([])
  })

  it('names a driver only inside drivers/: no other file imports a driver of its own folder', () => {
    const reaching = [...graph].flatMap(([file, targets]) =>
      file.startsWith('drivers/') ? [] : targets.filter((t) => /^drivers\/(qemu|docker|external)\//.test(t)).map((t) => `${file} -> ${t}`),
    )
    expect(reaching).toEqual([])
  })
})
