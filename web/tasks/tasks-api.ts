import { apiJson, jsonBody } from '../lib/session.ts';

export const STATUSES = ['todo', 'in_progress', 'done', 'cancelled'] as const;
export type Status = (typeof STATUSES)[number];
export const STATUS_LABELS: Record<Status, string> = { todo: 'To do', in_progress: 'In progress', done: 'Done', cancelled: 'Cancelled' };
export const PRIORITIES = ['low', 'medium', 'high', 'urgent'] as const;

export interface Task {
  id: string;
  title: string;
  description: string | null;
  status: Status;
  priority: string;
  due_date: string | null;
  assignee_id: string | null;
  project_id: string | null;
  tags: string[] | null;
  version: number;
  updated_at: string;
  created_at: string;
  deleted_at?: string | null;
}

export interface Comment {
  id: string;
  task_id: string;
  parent_id: string | null;
  body: string;
  created_by: string;
  created_at: string;
}

export interface HistoryEntry {
  id: string;
  user_id: string | null;
  device_id: string | null;
  op: string;
  changes: Record<string, { old?: unknown; new?: unknown } | unknown>;
  version: number;
  created_at: string;
}

interface Page<T> {
  items: T[];
  next_offset: number | null;
}

/** Every page of a list (200 at a time), up to `max` items. */
export async function allPages<T>(url: string, max = 2000): Promise<T[]> {
  const out: T[] = [];
  let offset: number | null = 0;
  while (offset !== null && out.length < max) {
    const sep = url.includes('?') ? '&' : '?';
    const page: Page<T> = await apiJson(`${url}${sep}limit=200&offset=${offset}`);
    out.push(...page.items);
    offset = page.next_offset;
  }
  return out;
}

export const listTasks = (query: URLSearchParams) => allPages<Task>(`/api/v1/tasks${query.toString() ? `?${query}` : ''}`);
export const createTask = (body: Partial<Task>) => apiJson<Task>('/api/v1/tasks', jsonBody('POST', body));
/** A change against the version on screen: the server answers 412 when someone changed it meanwhile. */
export const updateTask = (task: Task, patch: Partial<Task>) => apiJson<Task>(`/api/v1/tasks/${encodeURIComponent(task.id)}`, jsonBody('PATCH', patch, { 'if-match': `"${task.version}"` }));
export const taskComments = (id: string) => allPages<Comment>(`/api/v1/tasks/${encodeURIComponent(id)}/comments`);
export const taskHistory = (id: string) => allPages<HistoryEntry>(`/api/v1/tasks/${encodeURIComponent(id)}/history`);
export const addComment = (taskId: string, body: string, parentId: string | null) => apiJson<Comment>('/api/v1/comments', jsonBody('POST', { task_id: taskId, body, parent_id: parentId }));
