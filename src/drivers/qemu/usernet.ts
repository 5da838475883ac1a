/** Reads the host ports QEMU actually bound from HMP `info usernet` (port 0 = QEMU picked). */
export interface HostForward {
  hostPort: number
  guestPort: number
}

// Lines look like: "  TCP[HOST_FORWARD]  13  127.0.0.1 40123  10.0.2.15  8102  0  0"
export function parseUsernet(text: string): HostForward[] {
  const forwards: HostForward[] = []
  for (const line of text.split('\n')) {
    const m = /TCP\[HOST_FORWARD\]\s+\d+\s+\S+\s+(\d+)\s+\S+\s+(\d+)/.exec(line)
    if (m) forwards.push({ hostPort: Number(m[1]), guestPort: Number(m[2]) })
  }
  return forwards
}
