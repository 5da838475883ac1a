/** What tests get from `inject('stackEmulator')`. */
export interface StackEmulatorContext {
  backendUrl: string
  dashboardUrl: string
  /** Base URL per service. */
  services: Record<string, string>
  projectId: string
  publishableClientKey: string
  secretServerKey: string
  superSecretAdminKey: string
  /** The environment variables also set in process.env. */
  env: Record<string, string>
}
