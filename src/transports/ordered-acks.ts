interface Pending {
  packetId: number
  settled: boolean
}

/**
 * PUBACKs of one MQTT connection, sent in the order their PUBLISH packets
 * arrived (MQTT 5, 4.6: a client sends PUBACKs in that order) however their
 * commits finish. Messages are handled concurrently; an acknowledgement that
 * is ready waits only for the earlier ones still being written.
 *
 * A sequence serves one connection: when it drops, `abandon()` forgets every
 * pending acknowledgement, since the broker resends those messages on the
 * next connection of the session (the ledger makes the copies duplicates).
 */
export class OrderedAcks {
  private readonly pending: Pending[] = []
  private abandoned = false

  constructor (private readonly send: (packetId: number) => void) {}

  /** Registers a message in arrival order; call the returned function once it may be acknowledged. */
  track (packetId: number): () => void {
    const entry: Pending = { packetId, settled: false }
    this.pending.push(entry)
    return () => {
      entry.settled = true
      this.flush()
    }
  }

  /** Acknowledgements held back, waiting for their message or an earlier one. */
  get waiting (): number {
    return this.pending.length
  }

  abandon (): void {
    this.abandoned = true
    this.pending.length = 0
  }

  private flush (): void {
    if (this.abandoned) return
    while (this.pending[0]?.settled === true) {
      this.send((this.pending.shift() as Pending).packetId)
    }
  }
}
