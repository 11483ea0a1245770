// How the room tells the world after a change: its admission snapshot to the edge cache, and statuses
// to the queue sockets, each gathered so a burst of changes costs one publish and one push per socket.
import { publishSnapshot } from '../../lib/edge-cache.ts';
import { describeError, logJson } from '../../lib/logging.ts';
import type { AdmissionSnapshot } from './model.ts';
import type { QueueSockets } from './sockets.ts';

/**
 * How long socket pushes are gathered before they go out: a burst of changes sends each socket at
 * most one message (the latest) per interval. @default 100
 */
export const PUSH_COALESCE_MS = 100;

/**
 * Longest a snapshot whose only change is admissions within the current window waits before it is
 * published; every other change is published at once. @default 500
 */
export const SNAPSHOT_PUBLISH_INTERVAL_MS = 500;

export class Announcements {
  /** The snapshot last published to the edge (as JSON), so an unchanged one is not published again. */
  private publishedSnapshot: string | undefined;
  private publishTimer: ReturnType<typeof setTimeout> | undefined;
  /** Pushes gathered for the next flush (see PUSH_COALESCE_MS). */
  private pushTimer: ReturnType<typeof setTimeout> | undefined;
  private pushEveryone = false;
  private readonly pushSeqs = new Set<number>();
  /** Read at each publish: a room's name may not be known yet when it is constructed. */
  private readonly concertId: () => string | undefined;
  private readonly sockets: () => QueueSockets;
  private readonly snapshot: () => AdmissionSnapshot;

  constructor(concertId: () => string | undefined, sockets: () => QueueSockets, snapshot: () => AdmissionSnapshot) {
    this.concertId = concertId;
    this.sockets = sockets;
    this.snapshot = snapshot;
  }

  /** Places whose own status changed: each is pushed its own at the next flush. */
  placesChanged(seqs: Iterable<number>): void {
    for (const seq of seqs) this.pushSeqs.add(seq);
  }

  /** Pushes every socket now (the sockets asked for it, e.g. after hibernation). */
  pushEveryoneNow(): void {
    this.pushEveryone = true;
    this.flushPushes();
  }

  /**
   * After a change. A snapshot whose window, settings, pause or sold-out moved is published to the
   * edge before the caller is answered; one where only admissions within the window moved (the
   * watermark) is published within SNAPSHOT_PUBLISH_INTERVAL_MS, because the edge answers a poll from
   * a snapshot only when the place is certainly still waiting whatever the window did since (see
   * certainlyWaiting). Every moved snapshot reaches the waiting sockets; places whose own status
   * changed are pushed theirs. Socket pushes are gathered for PUSH_COALESCE_MS.
   */
  async afterChange(): Promise<void> {
    const snap = this.snapshot();
    const json = JSON.stringify(snap);
    if (json !== this.publishedSnapshot) {
      this.pushEveryone = true;
      const { watermark: _w, admittedInWindow: _a, ...material } = snap;
      const published = this.publishedSnapshot === undefined ? undefined : (JSON.parse(this.publishedSnapshot) as AdmissionSnapshot);
      const { watermark: _pw, admittedInWindow: _pa, ...publishedMaterial } = published ?? ({} as AdmissionSnapshot);
      if (published === undefined || JSON.stringify(material) !== JSON.stringify(publishedMaterial)) await this.publish();
      else this.publishTimer ??= setTimeout(() => void this.publish(), SNAPSHOT_PUBLISH_INTERVAL_MS);
    }
    if ((this.pushEveryone || this.pushSeqs.size > 0) && this.pushTimer === undefined) {
      this.pushTimer = setTimeout(() => {
        this.pushTimer = undefined;
        this.flushPushes();
      }, PUSH_COALESCE_MS);
    }
  }

  /** Publishes the current snapshot to the edge cache (this location's; others refresh within its TTL). */
  private async publish(): Promise<void> {
    clearTimeout(this.publishTimer);
    this.publishTimer = undefined;
    const concertId = this.concertId();
    if (!concertId) return;
    const snap = this.snapshot();
    const json = JSON.stringify(snap);
    if (json === this.publishedSnapshot) return;
    this.publishedSnapshot = json;
    try {
      await publishSnapshot(concertId, snap);
    } catch (error) {
      this.publishedSnapshot = undefined;
      logJson('warn', 'snapshot publish failed', { concertId, ...describeError(error) });
    }
  }

  /** Sends the gathered pushes (see QueueSockets.flush). */
  private flushPushes(): void {
    const seqs = new Set(this.pushSeqs);
    const everyone = this.pushEveryone;
    this.pushEveryone = false;
    this.pushSeqs.clear();
    this.sockets().flush(everyone, seqs);
  }
}
