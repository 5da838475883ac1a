/** One prefix for every line stack-emulator writes on stderr: the CLI's and the integrations'. */
export function log(line: string): void {
  process.stderr.write(`stack-emulator: ${line}\n`)
}
