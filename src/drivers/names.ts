/**
 * The drivers' names and the default one: a leaf (it imports nothing), so that settings.ts can
 * check STACK_EMULATOR_DRIVER without importing the drivers' contract, which imports it back.
 */
export type DriverName = 'qemu' | 'docker' | 'external'
export const DRIVER_NAMES: readonly DriverName[] = ['qemu', 'docker', 'external']
/** The driver unless the `driver` option or STACK_EMULATOR_DRIVER names another. */
export const DEFAULT_DRIVER: DriverName = 'qemu'
