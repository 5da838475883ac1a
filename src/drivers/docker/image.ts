/**
 * The container image: a manifest's `container.image` as the engine has it, or the fixture's,
 * built from docker/ (a debootstrap root file system, `docker/build.sh`) into the cache once per
 * fingerprint, under the image lock, and imported (`docker import`: no registry is needed).
 */
import { createReadStream } from 'node:fs'
import fs from 'node:fs/promises'
import path from 'node:path'
import { execa } from 'execa'
import { StackEmulatorError } from '../../errors.js'
import { imagesRoot } from '../../image/cache.js'
import { withImageLock } from '../../image/lock.js'
import type { ServiceManifest } from '../service-manifest.js'
import type { RuntimeClient } from './engine.js'

export async function ensureContainerImage(
  client: RuntimeClient,
  manifest: ServiceManifest,
  ctx: { cacheRoot: string; progress: (phase: string) => void; log: (line: string) => void },
): Promise<string> {
  const spec = manifest.container
  if (spec?.image) return spec.image
  if (!spec?.build) {
    throw new StackEmulatorError(`Manifest ${manifest.file} has neither "container.image" nor "container.build"`, {
      code: 'IMAGE_NOT_FOUND',
      fix: 'Name the image the engine has (container.image: "name:tag").',
    })
  }
  const tag = `stack-emulator/${manifest.name}:${manifest.fingerprint.slice(0, 16)}`
  const dockerode = client.container.dockerode
  const has = () =>
    dockerode
      .getImage(tag)
      .inspect()
      .then(
        () => true,
        () => false,
      )
  if (await has()) return tag
  const dir = path.join(imagesRoot(ctx.cacheRoot), `container-${manifest.name}-${manifest.fingerprint.slice(0, 16)}`)
  await withImageLock(dir, { waiting: `waiting for another process building ${tag}`, onLog: ctx.log, maxWaitMs: 20 * 60_000 }, async () => {
    if (await has()) return
    const tar = path.join(dir, 'rootfs.tar')
    if (
      !(await fs.access(tar).then(
        () => true,
        () => false,
      ))
    ) {
      ctx.progress(`building the container image ${tag} (about 1 to 3 minutes, once)`)
      const result = await execa('bash', [path.resolve(manifest.dir, spec.build!), dir], { reject: false, all: true })
      if (result.exitCode !== 0) {
        throw new StackEmulatorError(`Building the container image failed (${spec.build}, exit ${result.exitCode})`, {
          code: 'IMAGE_BUILD_FAILED',
          fix: 'It needs root and debootstrap (apt-get install debootstrap); see the details.',
          details: result.all?.split('\n').slice(-20).join('\n'),
        })
      }
    }
    ctx.progress(`importing ${tag} into the Docker engine`)
    const [repo, version] = tag.split(':') as [string, string]
    const stream = (await dockerode.importImage(
      createReadStream(tar) as never,
      { repo, tag: version, changes: ['CMD ["/usr/local/bin/entrypoint"]'] } as never,
    )) as unknown as NodeJS.ReadableStream
    await new Promise<void>((resolve, reject) => dockerode.modem.followProgress(stream, (error: Error | null) => (error ? reject(error) : resolve())))
  })
  return tag
}
