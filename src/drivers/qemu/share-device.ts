/**
 * The 9p share's device across snapshots, as Stack Auth's own script handles it: never in a
 * snapshot (the guest's services hold their own mount of the share, which QEMU's migration
 * blocker then keeps), hot-plugged into its empty root port after each restore and mounted through
 * the guest agent, and unplugged again before a seeded snapshot is saved.
 */
import { StackEmulatorError } from '../../errors.js'
import type { ImageManifest } from '../../image/manifest.js'
import { HOST_SHARE, hostShareDevice } from './argv.js'
import { guestExec } from './guest-agent.js'
import type { QemuProcess } from './process.js'
import type { QmpClient } from './qmp.js'
import { pollUntil } from '../../poll.js'

/** Stack Auth's script waits as long for its share to mount after a restore. */
const MOUNT_TIMEOUT_MS = 20_000
const UNPLUG_TIMEOUT_MS = 20_000

/**
 * Plugs the device and mounts the share. The guest probes a hot-plugged device a moment after
 * `device_add` returns, and the real `mount-host-fs --post-resume` tries once: it is retried
 * until the device is there.
 */
export async function plugShare(manifest: ImageManifest, proc: QemuProcess, agent: QmpClient): Promise<void> {
  const share = manifest.hostShare
  if (!share) return
  await proc.qmp.execute('device_add', hostShareDevice(manifest))
  let lastError: unknown
  await pollUntil(
    async () => {
      try {
        await guestExec(agent, share.mountCommand, MOUNT_TIMEOUT_MS)
        return true
      } catch (error) {
        lastError = error
        return false
      }
    },
    {
      timeoutMs: MOUNT_TIMEOUT_MS,
      intervalMs: 50,
      timeoutError: () =>
        new StackEmulatorError(`The guest did not mount the share within ${MOUNT_TIMEOUT_MS} ms of its hot-plug`, {
          code: 'BOOT_FAILED',
          details: lastError instanceof Error ? lastError.message : undefined,
          fix: 'See the serial console log (stack-emulator logs).',
        }),
    },
  )
}

/**
 * Unmounts the share in the guest's root namespace and unplugs its device, so that QEMU can
 * migrate. The guest releases the device only once nothing holds the share: a guest whose services
 * hold a mount of their own (started after the share was mounted) never does, and this says so.
 */
export async function unplugShare(manifest: ImageManifest, proc: QemuProcess, agent: QmpClient): Promise<void> {
  const share = manifest.hostShare
  if (!share) return
  const unmount = 'if grep -q " $0 9p " /proc/mounts; then exec umount "$0"; fi'
  await guestExec(agent, ['/bin/sh', '-c', unmount, share.guestPath], UNPLUG_TIMEOUT_MS)
  // Listening before device_del: the event may come before its answer. Removed either way.
  let listener: ((event: { event: string; data?: Record<string, unknown> }) => void) | undefined
  let timer: NodeJS.Timeout | undefined
  const deleted = new Promise<void>((resolve, reject) => {
    listener = (event) => {
      if (event.event === 'DEVICE_DELETED' && event.data?.device === HOST_SHARE.device) resolve()
    }
    proc.qmp.on('event', listener)
    timer = setTimeout(
      () =>
        reject(
          new StackEmulatorError(`The guest did not release the share within ${UNPLUG_TIMEOUT_MS} ms (something in the guest still holds ${share.guestPath})`, {
            code: 'SNAPSHOT',
          }),
        ),
      UNPLUG_TIMEOUT_MS,
    )
  })
  deleted.catch(() => {}) // awaited below, after device_del's answer
  try {
    await proc.qmp.execute('device_del', { id: HOST_SHARE.device })
    await deleted
  } finally {
    clearTimeout(timer)
    proc.qmp.off('event', listener!)
  }
}
