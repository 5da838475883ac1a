/** The per-test config copies of isolation 'project': where they go, their names, their cleanup. */
import fs from 'node:fs'
import os from 'node:os'
import path from 'node:path'
import { describe, expect, it } from 'vitest'
import { dropProjectCopies, projectDisplayName, writeProjectCopy } from '../../src/stack/project-copy.js'

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'se-copy-'))

describe('project copies', () => {
  it("copy the app's config to a new file per project, named so that its display name is its own", async () => {
    const dir = tmp()
    const app = path.join(dir, 'stack.config.ts')
    fs.writeFileSync(app, 'export const config = { auth: { password: { allowSignIn: true } } }\n')
    const a = await writeProjectCopy(path.join(dir, 'inst'), 3, app)
    const b = await writeProjectCopy(path.join(dir, 'inst'), 3, app)
    expect(a.file).not.toBe(b.file)
    expect(path.dirname(a.file)).toBe(path.join(dir, 'inst', 'projects', '3'))
    expect(a.file).toMatch(/stack\.config\.[0-9a-f]{12}\.ts$/)
    expect(fs.readFileSync(a.file, 'utf8')).toBe(fs.readFileSync(app, 'utf8'))
    expect(fs.statSync(a.file).mode & 0o777).toBe(0o600)
    expect(a.displayName).toBe(`Local Emulator: ${path.basename(a.file)}`)
    expect(a.displayName).not.toBe(b.displayName)
  })

  it('refuse what the share refuses (not a config file, a link)', async () => {
    const dir = tmp()
    fs.writeFileSync(path.join(dir, 'secret.pem'), 'x')
    await expect(writeProjectCopy(dir, 1, path.join(dir, 'secret.pem'))).rejects.toMatchObject({ code: 'CREDENTIALS' })
    fs.writeFileSync(path.join(dir, 'real.ts'), 'export const config = {}\n')
    fs.symlinkSync(path.join(dir, 'real.ts'), path.join(dir, 'link.ts'))
    await expect(writeProjectCopy(dir, 1, path.join(dir, 'link.ts'))).rejects.toMatchObject({ code: 'CREDENTIALS' })
  })

  it('are dropped by generation, keeping the current one', async () => {
    const dir = tmp()
    const app = path.join(dir, 'stack.config.ts')
    fs.writeFileSync(app, 'export const config = {}\n')
    await writeProjectCopy(dir, 1, app)
    const kept = await writeProjectCopy(dir, 2, app)
    await dropProjectCopies(dir, 2)
    expect(fs.readdirSync(path.join(dir, 'projects'))).toEqual(['2'])
    expect(fs.existsSync(kept.file)).toBe(true)
    await dropProjectCopies(dir)
    expect(fs.readdirSync(path.join(dir, 'projects'))).toEqual([])
    await dropProjectCopies(path.join(dir, 'none')) // nothing there: fine
  })

  it('name the project as the route does', () => {
    expect(projectDisplayName('/x/stack.config.ab.ts')).toBe('Local Emulator: stack.config.ab.ts')
  })
})
