import { randomUUID } from 'node:crypto';
import type { Command } from 'commander';
import { randomToken } from '../lib/crypto.ts';
import type { OrgContext } from '../modules/organizations/organizations.types.ts';
import { CliError, withApp, type CliContext } from './context.ts';

/**
 * `stormvault seed-demo`: an organization with three users (an admin and two members), a device each,
 * projects, tasks in every status, threaded comments, one edit merged automatically and one open
 * conflict, so the sync API can be tried at once. Prints the users' passwords and API keys once.
 */
export function registerSeedDemoCommand(program: Command, ctx: CliContext): void {
  program
    .command('seed-demo')
    .description('create a demo organization with users, devices, projects, tasks, comments and a conflict')
    .option('--prefix <name>', 'prefix of the demo usernames (run again with another prefix for a second set)', 'demo')
    .action(async (opts: { prefix: string }) => {
      if (!/^[a-z][a-z0-9-]{0,20}$/.test(opts.prefix)) throw new CliError(`--prefix: 1-21 lowercase letters, digits or "-", got "${opts.prefix}"`);
      await withApp(ctx, async (app) => {
        const names = ['alice', 'bob', 'carol'].map((n) => `${opts.prefix}-${n}`);
        for (const name of names) {
          if (await app.users.getByUsername(name).then(() => true, () => false)) throw new CliError(`user ${name} already exists: the demo was seeded already (use --prefix)`);
        }
        const people = [];
        for (const username of names) {
          const password = randomToken(12);
          const user = await app.users.create({ username, password });
          const { key } = await app.apiKeys.create(user.id, 'seed-demo');
          people.push({ user, password, key });
        }
        const [alice, bob, carol] = people as [(typeof people)[0], (typeof people)[0], (typeof people)[0]];
        const org = await app.organizations.create(alice.user.id, { name: `${opts.prefix} team` });
        const admin: OrgContext = { organizationId: org.id, userId: alice.user.id, role: 'admin' };
        await app.organizations.setMember(admin, bob.user.username, 'member');
        await app.organizations.setMember(admin, carol.user.username, 'member');
        const asBob: OrgContext = { ...admin, userId: bob.user.id, role: 'member' };
        const laptop = await app.devices.register(alice.user.id, 'alice laptop');
        const phone = await app.devices.register(bob.user.id, 'bob phone');
        await app.devices.register(carol.user.id, 'carol tablet');

        const website = await app.records.create(admin, 'project', { name: 'Website relaunch' });
        const office = await app.records.create(admin, 'project', { name: 'Office move' });
        const plan: Array<[string, string, string, string[], string | null]> = [
          ['Draft the sitemap', 'done', 'high', ['planning'], website.id],
          ['Pick a colour palette', 'in_progress', 'medium', ['design'], website.id],
          ['Write the About page', 'todo', 'medium', ['content'], website.id],
          ['Set up redirects', 'todo', 'urgent', ['ops'], website.id],
          ['Old blog migration', 'cancelled', 'low', ['content'], website.id],
          ['Book the movers', 'in_progress', 'high', ['logistics'], office.id],
          ['Label the boxes', 'todo', 'low', ['logistics'], office.id],
          ['Order new desks', 'todo', 'medium', ['purchasing'], office.id],
        ];
        const tasks = [];
        for (const [i, [title, status, priority, tags, projectId]] of plan.entries()) {
          const assignee = people[i % people.length]!.user.id;
          const due = new Date(app.clock.now().getTime() + (i + 1) * 86_400_000).toISOString().slice(0, 10);
          tasks.push(await app.records.create(admin, 'task', { title, status, priority, tags, project_id: projectId, assignee_id: assignee, due_date: due }));
        }
        const root = await app.records.create(asBob, 'comment', { task_id: tasks[1]!.id, body: 'Blue or green?' });
        await app.records.create(admin, 'comment', { task_id: tasks[1]!.id, parent_id: root.id, body: 'Green, like the logo.' });
        await app.records.create(asBob, 'comment', { task_id: tasks[5]!.id, body: 'Movers confirmed for the 14th.' });

        // Offline edits from two devices on the same task: different fields merge, the same field conflicts.
        const t = tasks[2]!;
        const base = t.vectorClock;
        await app.sync.push(admin, laptop.id, [{ mutation_id: 1, entity: 'task', op: 'upsert', id: t.id, vector_clock: { ...base, [laptop.id]: 1 }, data: { title: 'Write the About us page' } }]);
        await app.sync.push(asBob, phone.id, [
          { mutation_id: 1, entity: 'task', op: 'upsert', id: t.id, vector_clock: { ...base, [phone.id]: 1 }, data: { priority: 'high' } },
          { mutation_id: 2, entity: 'task', op: 'upsert', id: t.id, vector_clock: { ...base, [phone.id]: 2 }, data: { title: 'Write the Team page' } },
        ]);
        await app.sync.push(admin, laptop.id, [{ mutation_id: 2, entity: 'task', op: 'upsert', id: randomUUID(), vector_clock: { [laptop.id]: 2 }, data: { title: 'Made offline on the laptop', project_id: website.id } }]);

        ctx.stdout(`seeded organization "${org.name}" (${org.id}): 2 projects, ${tasks.length + 1} tasks, 3 comments, 1 open conflict\n`);
        ctx.stdout('users (shown once):\n');
        for (const p of people) ctx.stdout(`  ${p.user.username.padEnd(16)} password ${p.password}  API key ${p.key}\n`);
        ctx.stdout(`devices: ${laptop.id} (alice laptop), ${phone.id} (bob phone)\n`);
      }, ['auth', 'sync']);
    });
}
