/** Pieces both pages use: the problem box, a ticking clock, and form helpers. */
import { useEffect, useState } from 'hono/jsx/dom';
import type { Problem } from './api.ts';

/** Shows an API error as its problem+json title and detail; nothing when there is none. */
export function ProblemBox({ problem }: { problem: Problem | undefined }) {
  if (!problem) return null;
  return (
    <div class="problem" role="alert" data-code={problem.code ?? ''}>
      <strong>{problem.title}</strong>
      {problem.detail ? <span> — {problem.detail}</span> : null}
      {problem.requestId ? <small> (request {problem.requestId})</small> : null}
    </div>
  );
}

/** Milliseconds since the epoch, re-rendering every `everyMs`. */
export function useNow(everyMs = 1000): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    const timer = setInterval(() => setNow(Date.now()), everyMs);
    return () => clearInterval(timer);
  }, [everyMs]);
  return now;
}

/** `m:ss` until `iso`, or 0:00 once it has passed. */
export function remaining(iso: string, now: number): { text: string; over: boolean } {
  const seconds = Math.max(0, Math.ceil((Date.parse(iso) - now) / 1000));
  return { text: `${Math.floor(seconds / 60)}:${String(seconds % 60).padStart(2, '0')}`, over: seconds === 0 };
}

/** The named fields of a submitted form, as strings. */
export function formFields(event: Event): Record<string, string> {
  event.preventDefault();
  const data = new FormData(event.currentTarget as HTMLFormElement);
  return Object.fromEntries([...data.entries()].map(([key, value]) => [key, typeof value === 'string' ? value : value.name]));
}

/** Today's date as YYYY-MM-DD in the visitor's time zone (what a date input expects). */
export function today(): string {
  const now = new Date();
  return new Date(now.getTime() - now.getTimezoneOffset() * 60_000).toISOString().slice(0, 10);
}

/**
 * Runs `read` now and every `everyMs` until the component goes or `deps` change. `read` is given a
 * function that says whether that has happened meanwhile, so a late reply never lands on a newer view.
 */
export function usePolling(read: (stopped: () => boolean) => Promise<void>, everyMs: number, deps: unknown[]): void {
  useEffect(() => {
    let stopped = false;
    const run = () => void read(() => stopped);
    run();
    const timer = setInterval(run, everyMs);
    return () => {
      stopped = true;
      clearInterval(timer);
    };
  }, deps);
}

/** `2 d 03:04:05`, `03:04:05` or `4:05` until `iso` (for openings days away); `over` once it has passed. */
export function countdown(iso: string, now: number): { text: string; over: boolean } {
  const total = Math.max(0, Math.ceil((Date.parse(iso) - now) / 1000));
  const days = Math.floor(total / 86_400);
  const hours = Math.floor((total % 86_400) / 3600);
  const minutes = Math.floor((total % 3600) / 60);
  const seconds = total % 60;
  const two = (n: number) => String(n).padStart(2, '0');
  const clock = hours || days ? `${two(hours)}:${two(minutes)}:${two(seconds)}` : `${minutes}:${two(seconds)}`;
  return { text: days ? `${days} d ${clock}` : clock, over: total === 0 };
}

/** A calendar date (YYYY-MM-DD, the concert's own day) as "Sunday 6 December 2026", never shifted by time zone. */
export function formatDay(date: string): string {
  return new Date(`${date}T12:00:00Z`).toLocaleDateString(undefined, { weekday: 'long', day: 'numeric', month: 'long', year: 'numeric', timeZone: 'UTC' });
}

/** An instant as the visitor's local date and time, e.g. "6 Dec 2026, 20:00". */
export function formatTime(iso: string): string {
  return new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
}

/** The date `days` after today, as YYYY-MM-DD in the visitor's time zone. */
export function dayAfterToday(days: number): string {
  const now = new Date();
  return new Date(now.getTime() + days * 86_400_000 - now.getTimezoneOffset() * 60_000).toISOString().slice(0, 10);
}
