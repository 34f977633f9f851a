export type OrgRole = 'admin' | 'member';
export const ORG_ROLES: readonly OrgRole[] = ['admin', 'member'];

export interface Organization {
  id: string;
  name: string;
  /** Limits storageUsedBytes: bytes of the client-written text of live records (null = unlimited). */
  storageQuotaBytes: number | null;
  storageUsedBytes: number;
  createdAt: string;
}

export interface Membership {
  organization: Organization;
  role: OrgRole;
}

export interface Member {
  userId: string;
  username: string;
  role: OrgRole;
  joinedAt: string;
}

/** Who acts, in which organization, with which role: every records query is scoped by it. */
export interface OrgContext {
  organizationId: string;
  userId: string;
  role: OrgRole;
}
