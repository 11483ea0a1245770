/**
 * Lets many independent flows (bench:rush's fans, each an async script with its own waits) share
 * one closed-loop generator (./load.ts): a flow awaits `send(request)`, and the generator's clients
 * take queued requests in order, so at most `concurrency` requests are in flight over that many
 * keep-alive connections, however many flows there are. Latency is the generator's (from send to
 * the last byte of the body), not the time a request waited in this queue.
 */
import { runLoad } from './load.ts';
import type { LoadResponse, LoadResult, LoadStep, RequestSpec } from './load.ts';

interface Pending {
  resolve: (response: LoadResponse) => void;
  reject: (error: unknown) => void;
}

export class Dispatcher {
  private readonly queued: RequestSpec[] = [];
  private readonly idle: ((request: RequestSpec | undefined) => void)[] = [];
  private readonly pending = new Map<RequestSpec, Pending>();
  private closed = false;

  /** Queues `request`; resolves with its answer, rejects when it got none (connection error, time-out). */
  send(request: RequestSpec): Promise<LoadResponse> {
    if (this.closed) return Promise.reject(new Error('dispatcher closed'));
    return new Promise((resolve, reject) => {
      this.pending.set(request, { resolve, reject });
      const client = this.idle.shift();
      if (client) client(request);
      else this.queued.push(request);
    });
  }

  /** Requests waiting for a free client. */
  get backlog(): number {
    return this.queued.length;
  }

  /** No more requests: idle clients end, and `run` resolves once what is in flight has settled. */
  close(): void {
    this.closed = true;
    for (const client of this.idle.splice(0)) client(undefined);
  }

  /**
   * Runs the generator until {@link close}: `step` gives the connection settings (base URL, clients,
   * time-outs, CPU sources); its `durationMs` is a safety cap on the whole run.
   */
  async run(step: Omit<LoadStep, 'next' | 'onResponse' | 'onError'>): Promise<LoadResult> {
    try {
      return await this.generate(step);
    } finally {
      // Stopped by its cap or an interruption: nothing queued will be sent now.
      this.closed = true;
      for (const [request, pending] of this.pending) {
        this.pending.delete(request);
        pending.reject(new Error(`the generator stopped before sending ${request.method ?? 'GET'} ${request.path}`));
      }
    }
  }

  private generate(step: Omit<LoadStep, 'next' | 'onResponse' | 'onError'>): Promise<LoadResult> {
    return runLoad({
      ...step,
      next: () => {
        const request = this.queued.shift();
        if (request || this.closed) return request;
        return new Promise<RequestSpec | undefined>((resolve) => this.idle.push(resolve));
      },
      onResponse: (response, request) => this.settle(request)?.resolve(response),
      onError: (error, request) => this.settle(request)?.reject(error),
    });
  }

  private settle(request: RequestSpec): Pending | undefined {
    const pending = this.pending.get(request);
    this.pending.delete(request);
    return pending;
  }
}
