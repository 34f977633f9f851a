export type OrgRole = 'admin' | 'member';
export const ORG_ROLES: readonly OrgRole[] = ['admin', 'member'];

export interface Organization {
  id: string;
  name: string;
  storageQuotaBytes: number | null;
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
