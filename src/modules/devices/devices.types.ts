/** Server-issued device ids: `dev_` + 16 hex digits (64 random bits). Vector clocks accept only these and `server`. */
export const DEVICE_ID_PATTERN = /^dev_[0-9a-f]{16}$/;

export interface Device {
  /** Server-issued, never reused: the key of this device's entry in every vector clock. */
  id: string;
  userId: string;
  name: string;
  /** Highest push mutation id processed from this device, across its organizations (replays are decided per organization). */
  lastMutationId: number;
  createdAt: string;
  lastSeenAt: string | null;
  retiredAt: string | null;
}
