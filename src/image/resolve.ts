/** Turns the `image` option into a loaded manifest: a manifest path, or the built fixture. */
import path from 'node:path'
import { ensureFixtureImage } from './fixture.js'
import { loadManifest, type ImageManifest } from './manifest.js'

export async function resolveImage(options: {
  image: string | undefined
  cacheRoot: string
  progress: (line: string) => void
}): Promise<ImageManifest> {
  if (options.image && options.image !== 'fixture') return loadManifest(path.resolve(options.image))
  return loadManifest(await ensureFixtureImage({ cacheRoot: options.cacheRoot, progress: options.progress }))
}
