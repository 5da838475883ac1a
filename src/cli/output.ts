/** --json: exactly one JSON object on stdout. */
export function print(value: unknown): void {
  process.stdout.write(JSON.stringify(value, null, 2) + '\n')
}
