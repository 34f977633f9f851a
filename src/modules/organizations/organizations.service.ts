import { randomUUID } from 'node:crypto';
import type { Clock } from '../../clock.ts';
import type { DbOrTx } from '../../db/schema.ts';
import { inTransaction } from '../../db/transaction.ts';
import { AppError } from '../../errors.ts';
import type { UsersService } from '../users/users.service.ts';
import type { OrganizationsRepository } from './organizations.repository.ts';
import { ORG_ROLES, type Member, type Membership, type OrgContext, type Organization, type OrgRole } from './organizations.types.ts';

const ORG_ID = /^[A-Za-z0-9_-]{1,64}$/;

/** The users this module looks up (the users module's service satisfies it). */
export type UserDirectory = Pick<UsersService, 'findById' | 'findByUsername'>;

export class OrganizationsService {
  constructor(
    private readonly db: DbOrTx,
    private readonly orgs: OrganizationsRepository,
    private readonly users: UserDirectory,
    private readonly clock: Clock,
  ) {}

  async create(userId: string, input: { name: string; storageQuotaBytes?: number | null }): Promise<Organization> {
    const name = input.name.trim();
    if (name.length === 0 || name.length > 200) throw new AppError('invalid_request', 'organization name must be 1-200 characters');
    const quota = input.storageQuotaBytes ?? null;
    if (quota !== null && (!Number.isSafeInteger(quota) || quota < 0)) throw new AppError('invalid_request', 'storage quota must be a whole number of bytes >= 0');
    const now = this.clock.now().toISOString();
    return inTransaction(this.db, (tx) => this.orgs.on(tx).createWithAdmin({ id: randomUUID(), name, storageQuotaBytes: quota, now }, userId));
  }

  /**
   * The user's organizations. A user without any gets a personal one (named after them, as admin), so
   * every user can sync from the first request without an administrator setting things up.
   */
  async listForUser(userId: string): Promise<Membership[]> {
    const memberships = await this.orgs.listForUser(userId);
    if (memberships.length > 0) return memberships;
    const user = await this.users.findById(userId);
    if (!user) throw new AppError('unauthorized', 'unknown user');
    const now = this.clock.now().toISOString();
    await inTransaction(this.db, (tx) => this.orgs.on(tx).ensurePersonal(userId, user.username, now));
    return this.orgs.listForUser(userId);
  }

  /**
   * The organization a request acts in: the `X-Organization` header (an id the caller is a member of)
   * or the caller's default (oldest) membership. Not a member → 403, and nothing of that organization
   * is read or written.
   */
  async resolveContext(userId: string, requested: string | undefined): Promise<OrgContext> {
    if (requested !== undefined && requested !== '') {
      if (!ORG_ID.test(requested)) throw new AppError('invalid_request', 'X-Organization must be an organization id');
      const role = await this.orgs.findRole(requested, userId);
      if (!role) throw new AppError('forbidden', 'you are not a member of that organization');
      return { organizationId: requested, userId, role };
    }
    const [first] = await this.listForUser(userId);
    return { organizationId: first!.organization.id, userId, role: first!.role };
  }

  listMembers(ctx: OrgContext): Promise<Member[]> {
    return this.orgs.listMembers(ctx.organizationId);
  }

  /** Admins add users (by username) or change their role. */
  async setMember(ctx: OrgContext, username: string, role: OrgRole): Promise<Member> {
    this.requireAdmin(ctx);
    if (!ORG_ROLES.includes(role)) throw new AppError('invalid_request', `role must be one of ${ORG_ROLES.join(', ')}`);
    const user = await this.users.findByUsername(username);
    if (!user) throw new AppError('not_found', `user "${username}" not found`);
    if (role !== 'admin' && (await this.orgs.findRole(ctx.organizationId, user.id)) === 'admin' && (await this.orgs.countAdmins(ctx.organizationId)) <= 1) {
      throw new AppError('conflict', 'an organization keeps at least one admin');
    }
    const now = this.clock.now().toISOString();
    await this.orgs.upsertMember(ctx.organizationId, user.id, role, now);
    return { userId: user.id, username: user.username, role, joinedAt: now };
  }

  async removeMember(ctx: OrgContext, userId: string): Promise<void> {
    this.requireAdmin(ctx);
    const role = await this.orgs.findRole(ctx.organizationId, userId);
    if (!role) throw new AppError('not_found', 'no such member');
    if (role === 'admin' && (await this.orgs.countAdmins(ctx.organizationId)) <= 1) throw new AppError('conflict', 'an organization keeps at least one admin');
    await this.orgs.removeMember(ctx.organizationId, userId);
  }

  async isMember(organizationId: string, userId: string): Promise<boolean> {
    return (await this.orgs.findRole(organizationId, userId)) !== undefined;
  }

  requireAdmin(ctx: OrgContext): void {
    if (ctx.role !== 'admin') throw new AppError('forbidden', 'this needs the admin role in the organization');
  }
}
