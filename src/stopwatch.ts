/** Named phases of one wait, measured back to back, so they add up to the whole. */
export class Stopwatch {
  private last = performance.now()
  private readonly started = this.last
  readonly phases: Record<string, number> = {}

  /** Ends the current phase under `name` (phases of one name add up). */
  lap(name: string): void {
    const now = performance.now()
    this.phases[name] = Math.round(((this.phases[name] ?? 0) + now - this.last) * 10) / 10
    this.last = now
  }

  get totalMs(): number {
    return Math.round(performance.now() - this.started)
  }
}
