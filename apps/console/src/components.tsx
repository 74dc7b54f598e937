import type { ComponentChildren } from 'preact';
import type { TaskStatus } from './api';

export function StatusBadge({ status }: { status: TaskStatus }) {
  return <span class={`badge s-${status}`}>{status}</span>;
}

export function ProgressBar({
  percent,
  status,
  label,
}: {
  percent: number;
  status: TaskStatus;
  label?: string | null;
}) {
  const shown = status === 'succeeded' ? 100 : Math.max(0, Math.min(100, percent));
  return (
    <div
      class={`bar s-${status}`}
      role="progressbar"
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={shown}
      title={label ?? undefined}
    >
      <div class="fill" style={{ width: `${shown}%` }} />
      <span class="pct">{shown}%</span>
    </div>
  );
}

export function Problem({ error }: { error: string | null }) {
  return error ? <p class="error">{error}</p> : null;
}

export function Section({
  title,
  actions,
  children,
}: {
  title: string;
  actions?: ComponentChildren;
  children: ComponentChildren;
}) {
  return (
    <section>
      <div class="section-head">
        <h2>{title}</h2>
        <div class="actions">{actions}</div>
      </div>
      {children}
    </section>
  );
}

/** A small line chart of `values` (oldest first), scaled to its own maximum. */
export function Sparkline({ values, width = 220, height = 36 }: { values: number[]; width?: number; height?: number }) {
  if (values.length < 2) return <svg class="spark" width={width} height={height} />;
  const max = Math.max(1, ...values);
  const step = width / (values.length - 1);
  const points = values
    .map((v, i) => `${(i * step).toFixed(1)},${(height - 2 - (v / max) * (height - 4)).toFixed(1)}`)
    .join(' ');
  return (
    <svg class="spark" width={width} height={height} viewBox={`0 0 ${width} ${height}`} aria-label={`max ${max}`}>
      <polyline points={points} fill="none" stroke="currentColor" stroke-width="1.5" />
    </svg>
  );
}
