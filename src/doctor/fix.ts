/** `doctor --fix`: installs the missing Debian packages with apt-get (as root). */
import { execa } from 'execa'

/** An argv, never a shell string; apt's output goes to stderr so stdout stays --json's. */
function aptGet(args: string[]) {
  return execa('apt-get', args, { env: { DEBIAN_FRONTEND: 'noninteractive' }, stdin: 'ignore', stdout: 2, stderr: 'inherit', reject: false })
}

/** undefined when installed; otherwise what went wrong, in one line. */
export async function aptInstall(packages: string[], log: (line: string) => void): Promise<string | undefined> {
  const install = () => aptGet(['install', '-y', '--no-install-recommends', ...packages])
  let result = await install()
  if (result.code === 'ENOENT') return `apt-get not found; install ${packages.join(' ')} with this system's package manager`
  if (result.failed) {
    // Most often stale package lists (a package or a version that is gone): update, then again.
    log('apt-get install failed; running apt-get update and trying again')
    await aptGet(['update'])
    result = await install()
  }
  return result.failed ? `apt-get install ${packages.join(' ')} failed (exit code ${result.exitCode}); see its output above` : undefined
}

export function aptCommand(packages: string[]): string {
  return `sudo apt-get update && sudo apt-get install -y --no-install-recommends ${packages.join(' ')}`
}
