import { useEffect, useRef } from "react";

/** A modal confirmation (native <dialog>: focus trap and Escape come with it). */
export function ConfirmDialog(props: { open: boolean; title: string; body: string; confirm: string; busy?: boolean; onConfirm: () => void; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.open && !d.open) d.showModal();
    if (!props.open && d.open) d.close();
  }, [props.open]);
  return (
    <dialog
      ref={ref}
      aria-labelledby="confirm-title"
      onClose={props.onClose}
      className="m-auto max-w-md rounded-lg border border-slate-300 bg-white p-5 text-slate-900 backdrop:bg-black/50 dark:border-slate-700 dark:bg-slate-900 dark:text-slate-100"
    >
      <h2 id="confirm-title" className="text-lg font-semibold">
        {props.title}
      </h2>
      <p className="mt-2 text-sm">{props.body}</p>
      <div className="mt-4 flex justify-end gap-2">
        <button type="button" className="btn-secondary" onClick={props.onClose} autoFocus>
          Keep it
        </button>
        <button type="button" className="btn-danger" disabled={props.busy} onClick={props.onConfirm}>
          {props.confirm}
        </button>
      </div>
    </dialog>
  );
}
