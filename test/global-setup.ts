/**
 * Builds the fixture image once before any test (minutes on a fresh machine, then cached), so
 * no test's timeout pays for it. Tests then use a private state folder and the shared cache.
 */
import { ensureFixtureImage } from '../src/image/fixture.js'
import { readSettings } from '../src/settings.js'

export default async function setup(): Promise<void> {
  const started = Date.now()
  const manifest = await ensureFixtureImage({
    cacheRoot: readSettings().cacheRoot,
    progress: (line) => process.stderr.write(`[global-setup] ${line}\n`),
  })
  process.stderr.write(`[global-setup] fixture image: ${manifest} (${Date.now() - started} ms)\n`)
}
