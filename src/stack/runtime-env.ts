/**
 * The generated file of Stack Auth's runtime volume (`runtime.env` on the `STACKCFG` ISO): the
 * host port of each service, which the guest turns into the URLs it hands to browsers, and the
 * VM folder through which it publishes its internal key (empty while a snapshot is captured, as
 * Stack Auth's own script does). Names from `write_runtime_config_iso` in its run-emulator.sh
 * (docs/stack-auth-contract.md).
 */
export function runtimeEnvText(options: {
  /** Host port per service name (dashboard, backend, minio, inbucket, mock-oauth). */
  hostPorts: Record<string, number>
  /** The VM folder as the guest sees it under the share, or '' for none. */
  vmDir: string
  /** Fixed lines from the manifest (STACK_EMULATOR_PORT_PREFIX). */
  env: Record<string, string>
}): string {
  const lines = Object.entries(options.env).map(([name, value]) => `${name}=${value}`)
  for (const [service, port] of Object.entries(options.hostPorts)) {
    lines.push(`STACK_EMULATOR_${service.toUpperCase().replace(/-/g, '_')}_HOST_PORT=${port}`)
  }
  lines.push(`STACK_EMULATOR_VM_DIR_HOST=${options.vmDir}`)
  return `${lines.join('\n')}\n`
}
