/**
 * The runtime volume (manifest `runtimeVolume`): a small read-only ISO 9660 image the guest finds
 * by its label, holding the generated env file and files copied from the image's folder. Written
 * with xorriso (an argument array, no shell) into a staging folder, then renamed into place.
 */
import fs from 'node:fs/promises'
import path from 'node:path'
import { StackEmulatorError } from '../../errors.js'
import { sha256 } from '../../digest.js'
import type { ImageManifest } from '../../image/manifest.js'
import { runtimeEnvText } from '../../stack/runtime-env.js'

export interface RuntimeVolumeInput {
  manifest: ImageManifest
  hostPorts: Record<string, number>
  /** The VM folder named to the guest, or '' (a capture: the share is not there). */
  vmDir: string
}

/**
 * Writes the volume unless `iso` already holds these very contents (a digest of the inputs sits
 * beside it): an instance's next start skips xorriso.
 */
export async function writeRuntimeVolume(iso: string, input: RuntimeVolumeInput): Promise<void> {
  const spec = input.manifest.runtimeVolume
  if (!spec) throw new Error(`Image ${input.manifest.name} has no runtime volume`)
  const contents = await copiedFiles(input.manifest)
  if (spec.runtimeEnv) contents.push([spec.runtimeEnv, Buffer.from(runtimeEnvText({ hostPorts: input.hostPorts, vmDir: input.vmDir, env: spec.env ?? {} }))])
  const digest = sha256(JSON.stringify([spec.label, contents.map(([name, data]) => [name, sha256(data)])]))
  const digestFile = `${iso}.sha256`
  if (
    (await fs.readFile(digestFile, 'utf8').catch(() => '')) === digest &&
    (await fs.access(iso).then(
      () => true,
      () => false,
    ))
  )
    return
  const staging = `${iso}.d`
  await fs.rm(staging, { recursive: true, force: true })
  await fs.mkdir(staging, { mode: 0o700 })
  try {
    for (const [name, data] of contents) await fs.writeFile(path.join(staging, name), data)
    const { execa } = await import('execa')
    const result = await execa('xorriso', ['-as', 'mkisofs', '-quiet', '-V', spec.label, '-J', '-r', '-o', `${iso}.tmp`, staging], { reject: false })
    if (result.failed) {
      throw new StackEmulatorError(`Writing the runtime volume ${spec.label} failed${result.code === 'ENOENT' ? ': xorriso is not installed' : ''}`, {
        code: 'BOOT_FAILED',
        fix: 'Install xorriso (apt-get install xorriso, or stack-emulator doctor --fix).',
        details: result.stderr,
      })
    }
    await fs.rm(digestFile, { force: true })
    await fs.rename(`${iso}.tmp`, iso)
    await fs.writeFile(digestFile, digest)
  } finally {
    await fs.rm(staging, { recursive: true, force: true })
  }
}

/**
 * What of the runtime volume a snapshot depends on: its label and every file as captured, and
 * the host ports when the guest bakes them into what it serves.
 */
export async function runtimeVolumeDigest(manifest: ImageManifest, hostPorts: Record<string, number>): Promise<string> {
  const spec = manifest.runtimeVolume
  if (!spec) return ''
  const parts = [spec.label, spec.runtimeEnv ?? '', JSON.stringify(spec.env ?? {})]
  for (const [name, data] of await copiedFiles(manifest)) parts.push(name, sha256(data))
  const baked = spec.hostPortsInSnapshot
  if (baked === true) parts.push(JSON.stringify(hostPorts))
  else if (Array.isArray(baked) && baked.length > 0) parts.push(JSON.stringify(baked.map((service) => [service, hostPorts[service] ?? 0])))
  return sha256(parts.join('\0')).slice(0, 16)
}

/** The files the volume copies from the image's folder, by their names in the volume. */
async function copiedFiles(manifest: ImageManifest): Promise<[string, Buffer][]> {
  const files = Object.entries(manifest.runtimeVolume?.files ?? {})
  return Promise.all(files.map(async ([name, source]) => [name, await fs.readFile(path.resolve(manifest.dir, source))] as [string, Buffer]))
}
