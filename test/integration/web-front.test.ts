import { describe, expect, it } from 'vitest';
import { api } from '../helpers/api.ts';
import { createConcert, joinOk, patchQueue, queueStatus } from '../helpers/concerts.ts';

describe('web front support', () => {
  it('tells a waiting fan through Queue-Paused when the operator pauses and resumes the line', async () => {
    const concert = await createConcert({ queue: { paused: false } });
    const fan = await joinOk(concert.id, `fan-${crypto.randomUUID()}`);
    const pausedHeader = async () => {
      const response = await queueStatus(fan.token);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ status: 'waiting', position: 1 });
      return response.headers.get('Queue-Paused');
    };

    expect(await pausedHeader()).toBe('false');
    expect((await patchQueue(concert.id, { paused: true })).status).toBe(200);
    expect(await pausedHeader()).toBe('true');
    expect((await patchQueue(concert.id, { paused: false })).status).toBe(200);
    expect(await pausedHeader()).toBe('false');
  });

  it('loads Swagger UI for /docs from this origin, not a CDN', async () => {
    const html = await (await api('/docs')).text();
    const assets = [...html.matchAll(/(?:src|href)="([^"]+)"/g)].map((match) => match[1]);
    expect(assets).toEqual(['/vendor/swagger-ui-dist/swagger-ui.css', '/vendor/swagger-ui-dist/swagger-ui-bundle.js']);
  });

  it('serves the fan page for its client-side routes (a concert page, My tickets), and API paths keep their 404', async () => {
    for (const path of [`/c/${crypto.randomUUID()}`, '/tickets']) {
      const response = await api(path);
      expect(response.status, path).toBe(200);
      expect(response.headers.get('Content-Type')).toMatch(/^text\/html/);
      expect(await response.text()).toContain('<script type="module" src="/app/fan.js"></script>');
    }
    const missing = await api('/c');
    expect(missing.status).toBe(404);
    expect(await missing.json()).toMatchObject({ code: 'ROUTE_NOT_FOUND' });
  });
});
