/** A dead property (RFC 4918 §4.2): an expanded name and its value as namespace-complete XML. */
export interface DeadProperty {
  namespace: string;
  name: string;
  valueXml: string;
}

/** A write lock (RFC 4918 §6). */
export interface DavLock {
  /** `urn:uuid:…`, the lock token. */
  token: string;
  ownerId: string;
  /** The lock root, in the files index's form ('' = the user's root). */
  path: string;
  scope: 'exclusive' | 'shared';
  depth: '0' | 'infinity';
  ownerXml: string | null;
  timeoutSeconds: number;
  expiresAt: string;
  createdAt: string;
}
