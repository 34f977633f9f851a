import type { ComponentChildren } from 'preact';

/** One column of a {@link DataTable}: its header and how a row fills its cell. */
export interface Column<T> {
  /** Header text; with `hideLabel` it is read by screen readers only (a column of buttons). */
  label: string;
  hideLabel?: boolean;
  cell: (row: T) => ComponentChildren;
}

/**
 * The tables of the views (tasks list, devices, versions, sites, publish log, users, keys, background
 * tasks, alerts, share links): a caption (visually hidden unless `showCaption`) that names the table, header cells
 * with `scope="col"`, and a wrapper that scrolls sideways on narrow screens instead of the page (360 px).
 * The wrapper is a labelled, focusable region, so a keyboard can scroll it too (axe: scrollable-region-focusable).
 */
export function DataTable<T>({ caption, columns, rows, rowKey, rowProps, showCaption }: {
  caption: string;
  columns: ReadonlyArray<Column<T>>;
  rows: readonly T[];
  rowKey: (row: T) => string;
  /** Extra attributes of a row: data-* hooks for tests, a class. */
  rowProps?: (row: T) => Record<string, string | undefined>;
  showCaption?: boolean;
}) {
  return (
    <div class="table-wrap" role="region" aria-label={`${caption} table`} tabIndex={0}>
      <table class="data">
        <caption class={showCaption ? undefined : 'visually-hidden'}>{caption}</caption>
        <thead>
          <tr>
            {columns.map((c) => (
              <th key={c.label} scope="col">
                {c.hideLabel ? <span class="visually-hidden">{c.label}</span> : c.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((r) => (
            <tr key={rowKey(r)} {...rowProps?.(r)}>
              {columns.map((c) => (
                <td key={c.label}>{c.cell(r)}</td>
              ))}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
