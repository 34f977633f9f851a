import type { DbOrTx, OrganizationsTable } from '../../db/schema.ts';
import type { Member, Membership, Organization, OrgRole } from './organizations.types.ts';

function toOrganization(row: Pick<OrganizationsTable, 'id' | 'name' | 'storage_quota_bytes' | 'created_at'> & { storage_used_bytes: number }): Organization {
  return { id: row.id, name: row.name, storageQuotaBytes: row.storage_quota_bytes === null ? null : Number(row.storage_quota_bytes), storageUsedBytes: Number(row.storage_used_bytes), createdAt: row.created_at };
}

export class OrganizationsRepository {
  constructor(private readonly db: DbOrTx) {}

  /** The same repository on another handle, e.g. a transaction the service opened (db/transaction.ts). */
  on(db: DbOrTx): OrganizationsRepository {
    return new OrganizationsRepository(db);
  }

  /** Creates an organization with its first (admin) member; call it in a transaction. */
  async createWithAdmin(org: { id: string; name: string; storageQuotaBytes: number | null; now: string }, adminUserId: string): Promise<Organization> {
    await this.db
      .insertInto('organizations')
      .values({ id: org.id, name: org.name, storage_quota_bytes: org.storageQuotaBytes, change_seq: 0, purged_seq: 0, created_at: org.now, updated_at: org.now })
      .execute();
    await this.db.insertInto('organization_members').values({ organization_id: org.id, user_id: adminUserId, role: 'admin', created_at: org.now }).execute();
    return { id: org.id, name: org.name, storageQuotaBytes: org.storageQuotaBytes, storageUsedBytes: 0, createdAt: org.now };
  }

  /**
   * Creates the user's personal organization (id = the user's id) unless it exists. Idempotent, so
   * concurrent first requests of a new user end up in one organization, not one each. Call it in a transaction.
   */
  async ensurePersonal(userId: string, name: string, now: string): Promise<void> {
    await this.db
      .insertInto('organizations')
      .values({ id: userId, name, storage_quota_bytes: null, change_seq: 0, purged_seq: 0, created_at: now, updated_at: now })
      .onConflict((oc) => oc.column('id').doNothing())
      .execute();
    await this.db
      .insertInto('organization_members')
      .values({ organization_id: userId, user_id: userId, role: 'admin', created_at: now })
      .onConflict((oc) => oc.columns(['organization_id', 'user_id']).doNothing())
      .execute();
  }

  /** The user's memberships, oldest first (the first is the default organization). */
  async listForUser(userId: string): Promise<Membership[]> {
    const rows = await this.db
      .selectFrom('organization_members as m')
      .innerJoin('organizations as o', 'o.id', 'm.organization_id')
      .select(['o.id', 'o.name', 'o.storage_quota_bytes', 'o.storage_used_bytes', 'o.created_at', 'm.role', 'm.created_at as joined_at'])
      .where('m.user_id', '=', userId)
      .orderBy('m.created_at')
      .orderBy('o.id')
      .execute();
    return rows.map((r) => ({ organization: toOrganization(r), role: r.role }));
  }

  async findRole(organizationId: string, userId: string): Promise<OrgRole | undefined> {
    const row = await this.db
      .selectFrom('organization_members')
      .select('role')
      .where('organization_id', '=', organizationId)
      .where('user_id', '=', userId)
      .executeTakeFirst();
    return row?.role;
  }

  async listMembers(organizationId: string): Promise<Member[]> {
    const rows = await this.db
      .selectFrom('organization_members as m')
      .innerJoin('users as u', 'u.id', 'm.user_id')
      .select(['m.user_id', 'u.username', 'm.role', 'm.created_at'])
      .where('m.organization_id', '=', organizationId)
      .orderBy('u.username')
      .execute();
    return rows.map((r) => ({ userId: r.user_id, username: r.username, role: r.role, joinedAt: r.created_at }));
  }

  async upsertMember(organizationId: string, userId: string, role: OrgRole, now: string): Promise<void> {
    await this.db
      .insertInto('organization_members')
      .values({ organization_id: organizationId, user_id: userId, role, created_at: now })
      .onConflict((oc) => oc.columns(['organization_id', 'user_id']).doUpdateSet({ role }))
      .execute();
  }

  async removeMember(organizationId: string, userId: string): Promise<boolean> {
    const result = await this.db.deleteFrom('organization_members').where('organization_id', '=', organizationId).where('user_id', '=', userId).executeTakeFirst();
    return Number(result.numDeletedRows) > 0;
  }

  async countAdmins(organizationId: string): Promise<number> {
    const row = await this.db
      .selectFrom('organization_members')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('organization_id', '=', organizationId)
      .where('role', '=', 'admin')
      .executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async listIds(): Promise<string[]> {
    const rows = await this.db.selectFrom('organizations').select('id').orderBy('id').execute();
    return rows.map((r) => r.id);
  }
}
