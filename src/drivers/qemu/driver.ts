/** The QEMU driver: its image manifest in, a QemuVm (vm.ts) out, which is the contract's RunningInstance itself. */
import type { ImageManifest } from '../../image/manifest.js'
import type { Driver } from '../types.js'
import { startQemuVm } from './vm.js'

export const qemuDriver: Driver<ImageManifest> = { name: 'qemu', start: startQemuVm }
