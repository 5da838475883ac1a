/**
 * The environment of what the package starts and leaves running: the supervisor, and under it
 * QEMU and the drivers' helpers. Not the client's whole environment: a test runner's holds
 * GITHUB_TOKEN, cloud keys and the like, which a long-lived process must not carry (readable
 * in /proc/<pid>/environ, inherited by everything it runs). Only what they read goes through.
 */
const NAMES = new Set([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'TMPDIR',
  'TZ',
  'LANG',
  'LANGUAGE',
  // Docker driver (testcontainers): the engine, and rootless Docker's socket under XDG_RUNTIME_DIR.
  'DOCKER_HOST',
  'DOCKER_TLS_VERIFY',
  'DOCKER_CERT_PATH',
  'DOCKER_CONFIG',
  'DOCKER_CONTEXT',
  'XDG_RUNTIME_DIR',
  // An external emulator behind a private CA.
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'SSL_CERT_DIR',
  // The Docker driver's image build (debootstrap, apt) fetches packages.
  'http_proxy',
  'https_proxy',
  'no_proxy',
  'HTTP_PROXY',
  'HTTPS_PROXY',
  'NO_PROXY',
])
/** STACK_EMULATOR_*: the package's own settings (the fixture's headers are read in the supervisor). */
const PREFIXES = ['STACK_EMULATOR_', 'LC_', 'TESTCONTAINERS_']

export function childEnvironment(env: NodeJS.ProcessEnv = process.env): Record<string, string> {
  return Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => {
      const [name, value] = entry
      return value !== undefined && (NAMES.has(name) || PREFIXES.some((prefix) => name.startsWith(prefix)))
    }),
  )
}
