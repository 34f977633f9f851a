import { Fragment, type ComponentChildren } from 'preact';
import { useLayoutEffect, useRef, useState } from 'preact/hooks';

/**
 * Renders only the rows in view (plus a few either side) inside a scroller whose inner height is that of
 * every row, so 10,000 entries cost as much as 30 (bench/web.ts measures frame times while scrolling).
 * Rows have one fixed height, which keeps the arithmetic exact and the scroll position stable.
 */
export function VirtualList({ count, rowHeight, renderRow, label, overscan = 5 }: {
  count: number;
  rowHeight: number;
  renderRow: (index: number) => ComponentChildren;
  label: string;
  overscan?: number;
}) {
  const scroller = useRef<HTMLDivElement>(null);
  // The first row in view, not the scroll offset: scrolling within a row re-renders nothing.
  const [top, setTop] = useState(0);
  const [height, setHeight] = useState(600);

  useLayoutEffect(() => {
    const el = scroller.current!;
    const observer = new ResizeObserver(() => setHeight(el.clientHeight || 600));
    observer.observe(el);
    setHeight(el.clientHeight || 600);
    return () => observer.disconnect();
  }, []);

  const first = Math.max(0, top - overscan);
  const last = Math.min(count, top + Math.ceil(height / rowHeight) + 1 + overscan);
  const rows: ComponentChildren[] = [];
  // Keyed by slot, not by entry: while scrolling, the same few DOM rows are patched in place instead of
  // being torn down and rebuilt every frame.
  for (let i = first; i < last; i++) rows.push(<Fragment key={i % (last - first || 1)}>{renderRow(i)}</Fragment>);

  return (
    <div
      ref={scroller}
      class="vlist"
      role="rowgroup"
      aria-label={label}
      data-count={count}
      onScroll={(e) => setTop(Math.floor(e.currentTarget.scrollTop / rowHeight))}
    >
      <div class="vlist-inner" style={{ height: `${count * rowHeight}px` }}>
        <div class="vlist-window" style={{ transform: `translateY(${first * rowHeight}px)` }}>
          {rows}
        </div>
      </div>
    </div>
  );
}
