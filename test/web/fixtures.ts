import { randomUUID } from 'node:crypto';

type Inject = (method: string, url: string, payload?: unknown) => Promise<{ json: () => any; statusCode: number }>;

/**
 * A sync conflict made the way real devices make one (issue 14's e2e): a laptop and a phone register, the
 * laptop writes a task twice, the phone then writes it having seen only the laptop's first version.
 * Returns the task id and the phone's push answer (its result is `conflict`).
 */
export async function conflictByTwoDevices(api: Inject) {
  const laptop = (await api('POST', '/api/v1/devices', { name: 'laptop' })).json().id as string;
  const phone = (await api('POST', '/api/v1/devices', { name: 'phone' })).json().id as string;
  const id = randomUUID();
  const push = (device: string, mutation: number, clock: Record<string, number>, title: string) =>
    api('POST', '/api/v1/sync/push', { device_id: device, changes: [{ mutation_id: mutation, entity: 'task', op: 'upsert', id, vector_clock: clock, data: { title, status: 'todo', priority: 'low', tags: [] } }] });
  await push(laptop, 1, { [laptop]: 1 }, 'Plan the offsite');
  await push(laptop, 2, { [laptop]: 2 }, 'Plan the offsite (laptop)');
  const phonePush = await push(phone, 1, { [laptop]: 1, [phone]: 1 }, 'Plan the offsite (phone)');
  return { id, phonePush };
}
