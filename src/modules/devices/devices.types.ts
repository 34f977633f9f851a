export interface Device {
  /** Server-issued, never reused: the key of this device's entry in every vector clock. */
  id: string;
  userId: string;
  name: string;
  /** Highest push mutation id applied from this device (idempotent retries). */
  lastMutationId: number;
  createdAt: string;
  lastSeenAt: string | null;
  retiredAt: string | null;
}
