/**
 * The environment variables handed to tests and apps, named as Stack Auth's SDKs and CLI read
 * them, plus the emulator's own.
 */
export interface StackCredentials {
  projectId: string
  publishableClientKey: string
  secretServerKey: string
  superSecretAdminKey: string
}

export interface ServiceUrls {
  [service: string]: string
}

const PUBLIC_PREFIXES = ['', 'NEXT_PUBLIC_', 'VITE_', 'EXPO_PUBLIC_']

export function emulatorEnv(name: string, urls: ServiceUrls, credentials?: StackCredentials): Record<string, string> {
  const env: Record<string, string> = { STACK_EMULATOR_NAME: name }
  for (const [service, url] of Object.entries(urls)) env[`STACK_EMULATOR_${service.toUpperCase()}_URL`] = url
  if (urls.backend) for (const prefix of PUBLIC_PREFIXES) env[`${prefix}STACK_API_URL`] = urls.backend
  if (credentials) {
    for (const prefix of PUBLIC_PREFIXES) {
      env[`${prefix}STACK_PROJECT_ID`] = credentials.projectId
      env[`${prefix}STACK_PUBLISHABLE_CLIENT_KEY`] = credentials.publishableClientKey
    }
    env.STACK_SECRET_SERVER_KEY = credentials.secretServerKey
    env.STACK_SUPER_SECRET_ADMIN_KEY = credentials.superSecretAdminKey
  }
  return env
}
