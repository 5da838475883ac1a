/**
 * Turns the `image` option into a loaded manifest: the built fixture (unset or `fixture`), a
 * pulled image by name (`stack-auth`: the newest pulled for this machine; `stack-auth@<tag>`),
 * pulled first when it is missing, or a manifest path. A cached image's use is recorded (for
 * `image prune`).
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { local } from '../local-failure.js'
import type { Settings } from '../settings.js'
import { imageEntries, imagesRoot, touch, type SnapshotStore } from './cache.js'
import { ensureFixtureImage } from './fixture.js'
import { loadManifest, type ImageManifest } from './manifest.js'
import { DEFAULT_BRANCH, IMAGE_NAME, assetName, hostArch, latestTag, parseImageRef, pulledFolderName } from './names.js'

export interface ResolveContext {
  settings: Pick<Settings, 'cacheRoot' | 'releasesUrl' | 'pullIdleTimeoutMs'>
  /** The driver's snapshot store: a pull that replaces an image drops its snapshots there. */
  snapshots: SnapshotStore
  progress: (phase: string) => void
  log: (line: string) => void
}

export async function resolveImage(image: string | undefined, ctx: ResolveContext): Promise<ImageManifest> {
  const ref = parseImageRef(image)
  if (ref.kind === 'path') return loadManifest(path.resolve(ref.path))
  const { cacheRoot } = ctx.settings
  // A read-only or full cache without the image is named as such, with the fix.
  const file =
    ref.kind === 'fixture' ? await local(cacheRoot, () => ensureFixtureImage({ cacheRoot, progress: ctx.progress })) : await pulledManifest(ref.tag, ctx)
  await touch(file)
  return loadManifest(file)
}

async function pulledManifest(tag: string | undefined, ctx: ResolveContext): Promise<string> {
  const arch = hostArch()
  if (!tag) {
    const pulled = (await imageEntries(ctx.settings.cacheRoot)).filter((i) => i.name === IMAGE_NAME && i.arch === arch)
    const newest = pulled.sort((a, b) => String(b.pulledAt).localeCompare(String(a.pulledAt)))[0]
    if (newest) return newest.manifest
  }
  const wanted = tag ?? latestTag(DEFAULT_BRANCH)
  const manifest = path.join(imagesRoot(ctx.settings.cacheRoot), pulledFolderName(arch, wanted), 'manifest.json')
  if (
    await fs.access(manifest).then(
      () => true,
      () => false,
    )
  )
    return manifest
  ctx.progress(`pulling ${IMAGE_NAME}@${wanted} (${arch}), which is not in the cache yet`)
  // Loaded only for a pull: undici is not on the start-up path.
  const [{ DEFAULT_TEMPLATE, pullRelease }, { describeDownload }] = await Promise.all([import('./pull.js'), import('./download.js')])
  const pulled = await pullRelease({
    tag: wanted,
    arch,
    sha256: undefined,
    manifestTemplate: DEFAULT_TEMPLATE,
    settings: ctx.settings,
    snapshots: ctx.snapshots,
    onProgress: (p) => ctx.progress(describeDownload(assetName(arch), p)),
    onLog: ctx.log,
  })
  return pulled.manifest
}
