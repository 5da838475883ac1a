/**
 * The config file a project without its own stack.config.ts gets (issue 24, item 3): one per
 * project root, so each project keeps a seeded snapshot of its own; made safely in the state root.
 */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { execa } from 'execa'
import { describe, expect, it } from 'vitest'
import { sha256 } from '../../src/digest.js'
import { resolveConfigFile } from '../../src/stack/credentials.js'
import { GENERATED_CONFIG, generatedConfigProject, projectRoot } from '../../src/stack/project-config.js'
import { seededSnapshotOwner, seededSnapshotRetired } from '../../src/supervisor/seeded-snapshot-policy.js'

const root = path.resolve(import.meta.dirname, '../..')
const temp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'se-project-'))
const mode = (file: string) => (fs.statSync(file).mode & 0o777).toString(8)

/** A project folder with a package.json (and a subfolder a runner may start from). */
function project(parent: string, name: string): string {
  const dir = path.join(parent, name)
  fs.mkdirSync(path.join(dir, 'src', 'deep'), { recursive: true })
  fs.writeFileSync(path.join(dir, 'package.json'), '{}\n')
  return dir
}

describe('the project a working directory belongs to', () => {
  it('is the nearest folder up with a package.json, else the working directory', () => {
    const base = temp()
    const app = project(base, 'app')
    const nested = project(app, 'packages-web') // a workspace package is its own project
    expect(projectRoot(path.join(app, 'src', 'deep'))).toBe(app)
    expect(projectRoot(app)).toBe(app)
    expect(projectRoot(path.join(nested, 'src'))).toBe(nested)
    const loose = path.join(base, 'loose', 'sub')
    fs.mkdirSync(loose, { recursive: true })
    const above = path
      .dirname(base)
      .split(path.sep)
      .map((_, i, parts) => parts.slice(0, i + 1).join(path.sep) || path.sep)
    expect(above.filter((dir) => fs.existsSync(path.join(dir, 'package.json')))).toEqual([]) // the test's premise
    expect(projectRoot(loose)).toBe(loose)
  })
})

describe('the generated config file', () => {
  it('is one per project, under <state>/.projects/<name>-<sha16(root)>, the same from any folder of the project', async () => {
    const base = temp()
    const state = path.join(base, 'state')
    const a = project(base, 'app a')
    const b = project(base, 'b')
    const fileA = await resolveConfigFile(undefined, path.join(a, 'src', 'deep'), state)
    const fileB = await resolveConfigFile(undefined, b, state)
    expect(fileA).toBe(path.join(state, '.projects', `app-a-${sha256(a).slice(0, 16)}`, 'stack.config.ts'))
    expect(fileB).toBe(path.join(state, '.projects', `b-${sha256(b).slice(0, 16)}`, 'stack.config.ts'))
    expect(await resolveConfigFile(undefined, a, state)).toBe(fileA)
    for (const file of [fileA, fileB]) {
      expect(fs.readFileSync(file, 'utf8')).toBe(GENERATED_CONFIG)
      expect([mode(path.dirname(path.dirname(file))), mode(path.dirname(file)), mode(file)]).toEqual(['700', '700', '600'])
    }
    expect([generatedConfigProject(fileA), generatedConfigProject(fileB)]).toEqual([a, b])
    // A project's own file, or the option, still wins.
    fs.writeFileSync(path.join(b, 'stack.config.ts'), 'export const config = {}\n')
    expect(await resolveConfigFile(undefined, b, state)).toBe(path.join(b, 'stack.config.ts'))
    expect(await resolveConfigFile('../x.config.ts', b, state)).toBe(path.join(base, 'x.config.ts'))
  })

  it('is written again when changed, never through a link planted at its name, and a 0755 folder is closed to 0700', async () => {
    const base = temp()
    const state = path.join(base, 'state')
    const app = project(base, 'app')
    const file = await resolveConfigFile(undefined, app, state)
    fs.writeFileSync(file, 'export const config = { changed: true }\n')
    expect(await resolveConfigFile(undefined, app, state)).toBe(file)
    expect(fs.readFileSync(file, 'utf8')).toBe(GENERATED_CONFIG)

    const victim = path.join(base, 'victim.ts')
    fs.writeFileSync(victim, 'mine\n')
    fs.rmSync(file)
    fs.symlinkSync(victim, file)
    fs.chmodSync(path.dirname(file), 0o755)
    await resolveConfigFile(undefined, app, state)
    expect(fs.readFileSync(victim, 'utf8')).toBe('mine\n')
    expect(fs.lstatSync(file).isFile()).toBe(true)
    expect(fs.readFileSync(file, 'utf8')).toBe(GENERATED_CONFIG)
    expect(mode(path.dirname(file))).toBe('700')
  })

  it('refuses a link or a file where its folders go, naming it', async () => {
    const base = temp()
    const app = project(base, 'app')
    const elsewhere = fs.mkdtempSync(path.join(os.tmpdir(), 'se-elsewhere-'))
    fs.mkdirSync(path.join(base, 'state'))
    fs.symlinkSync(elsewhere, path.join(base, 'state', '.projects'))
    await expect(resolveConfigFile(undefined, app, path.join(base, 'state'))).rejects.toMatchObject({
      code: 'STATE_UNSAFE',
      message: expect.stringMatching(/\.projects, where stack-emulator keeps generated config files, is a symbolic link\. Remove it/),
    })
    expect(fs.readdirSync(elsewhere)).toEqual([])

    const other = path.join(base, 'other')
    fs.mkdirSync(path.join(other, '.projects'), { recursive: true })
    const slot = path.join(other, '.projects', `app-${sha256(app).slice(0, 16)}`)
    fs.writeFileSync(slot, '')
    await expect(resolveConfigFile(undefined, app, other)).rejects.toMatchObject({ code: 'STATE_UNSAFE', message: expect.stringContaining('is not a folder') })
  })

  it('is made once by creators racing in this process and in others, with nothing left behind', async () => {
    const base = temp()
    const state = path.join(base, 'state')
    const app = project(base, 'app')
    const script = `import { resolveConfigFile } from ${JSON.stringify(path.join(root, 'src/stack/credentials.ts'))}
for (let i = 0; i < 20; i++) process.stdout.write(await resolveConfigFile(undefined, process.argv[1], process.argv[2]) + '\\n')`
    const others = Array.from({ length: 4 }, () =>
      execa(process.execPath, ['--import', 'tsx/esm', '--input-type=module', '-e', script, app, state], { cwd: root }),
    )
    const here = await Promise.all(Array.from({ length: 40 }, () => resolveConfigFile(undefined, app, state)))
    const there = (await Promise.all(others)).flatMap((r) => r.stdout.trim().split('\n'))
    expect(new Set([...here, ...there]).size).toBe(1)
    expect(there).toHaveLength(80)
    expect(fs.readdirSync(path.dirname(here[0]!)).sort()).toEqual(['project-root', 'stack.config.ts'])
    expect(fs.readFileSync(here[0]!, 'utf8')).toBe(GENERATED_CONFIG)
  })
})

describe('a seeded snapshot of a generated config', () => {
  it('names its project in log lines, and retires once the project folder is gone', async () => {
    const base = temp()
    const app = project(base, 'app')
    const configFile = await resolveConfigFile(undefined, app, path.join(base, 'state'))
    const meta = { configFile, configDigests: [], seedId: '', credentials: {} }
    expect(seededSnapshotOwner(meta)).toBe(`the project at ${app}`)
    expect(seededSnapshotOwner({ ...meta, configFile: '/app/stack.config.ts' })).toBe('/app/stack.config.ts')
    expect(seededSnapshotRetired(meta)).toBe(false)
    fs.rmSync(app, { recursive: true })
    expect(seededSnapshotRetired(meta)).toBe(true)
  })
})
