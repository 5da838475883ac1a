/** Turns the `image` option into a loaded manifest: a manifest path, or the built fixture. */
import path from 'node:path'
import { local } from '../local-failure.js'
import { ensureFixtureImage } from './fixture.js'
import { loadManifest, type ImageManifest } from './manifest.js'

export async function resolveImage(options: {
  image: string | undefined
  cacheRoot: string
  progress: (line: string) => void
}): Promise<ImageManifest> {
  if (options.image && options.image !== 'fixture') return loadManifest(path.resolve(options.image))
  // A read-only or full cache without the image is named as such, with the fix.
  return loadManifest(await local(options.cacheRoot, () => ensureFixtureImage({ cacheRoot: options.cacheRoot, progress: options.progress })))
}
