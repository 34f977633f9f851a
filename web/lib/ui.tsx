import type { ComponentChildren } from 'preact';
import { signal } from '@preact/signals';
import { useEffect, useRef } from 'preact/hooks';

/** Messages at the bottom of the screen (role=status, so screen readers announce them). */
export const toasts = signal<Array<{ id: number; text: string; kind: 'info' | 'error' }>>([]);
let toastSeq = 0;

export function toast(text: string, kind: 'info' | 'error' = 'info'): void {
  const id = ++toastSeq;
  toasts.value = [...toasts.value.slice(-2), { id, text, kind }];
  setTimeout(() => (toasts.value = toasts.value.filter((t) => t.id !== id)), kind === 'error' ? 8000 : 4000);
}

/** The message to show for anything thrown: the API's own message when it sent one. */
export function messageOf(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function Toasts() {
  return (
    <div class="toasts" role="status" aria-live="polite">
      {toasts.value.map((t) => (
        <div key={t.id} class={`toast toast-${t.kind}`}>
          {t.text}
        </div>
      ))}
    </div>
  );
}

export function ErrorBox({ error }: { error: unknown }) {
  if (!error) return null;
  return (
    <div class="error-box" role="alert">
      {messageOf(error)}
    </div>
  );
}

/**
 * A modal <dialog>: the browser traps focus, Escape closes it, and focus returns to where it was.
 * `onClose` runs however it is closed.
 */
export function Modal({ title, onClose, children, wide }: { title: string; onClose: () => void; children: ComponentChildren; wide?: boolean }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const dialog = ref.current!;
    const previous = document.activeElement as HTMLElement | null;
    dialog.showModal();
    return () => {
      if (dialog.open) dialog.close();
      previous?.focus?.();
    };
  }, []);
  return (
    <dialog ref={ref} class={wide ? 'modal modal-wide' : 'modal'} aria-label={title} onClose={onClose} onCancel={onClose}>
      <header class="modal-head">
        <h2>{title}</h2>
        <button type="button" class="icon" aria-label="Close" onClick={onClose}>
          ×
        </button>
      </header>
      <div class="modal-body">{children}</div>
    </dialog>
  );
}

export function Confirm({ title, message, confirmLabel, danger, onConfirm, onClose }: {
  title: string;
  message: ComponentChildren;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => void | Promise<void>;
  onClose: () => void;
}) {
  return (
    <Modal title={title} onClose={onClose}>
      <p>{message}</p>
      <div class="actions">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button
          type="button"
          class={danger ? 'danger' : 'primary'}
          onClick={async () => {
            await onConfirm();
            onClose();
          }}
        >
          {confirmLabel}
        </button>
      </div>
    </Modal>
  );
}

export function Spinner({ label = 'Loading…' }: { label?: string }) {
  return (
    <p class="muted" role="status">
      {label}
    </p>
  );
}
