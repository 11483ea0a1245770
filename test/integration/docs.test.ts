import { describe, expect, it } from 'vitest';
import { api } from '../helpers/api.ts';

describe('API documentation', () => {
  it('serves an OpenAPI 3.1 document covering the contract’s paths', async () => {
    const response = await api('/openapi.json');
    expect(response.status).toBe(200);
    const doc = await response.json<{ openapi: string; paths: Record<string, unknown> }>();
    expect(doc.openapi).toBe('3.1.0');
    for (const path of [
      '/health',
      '/concerts',
      '/concerts/{id}',
      '/concerts/{id}/seats',
      '/queue/token',
      '/queue/challenge',
      '/queue/status',
      '/queue/ws',
      '/reservations',
      '/reservations/{key}',
      '/reservations/{id}',
      '/payment',
      '/payments',
      '/balance',
      '/balance/{userId}',
      '/balance/charge',
      '/balance/use',
      '/balance/history',
      '/admin/concerts',
      '/admin/concerts/{id}/queue',
      '/admin/concerts/{id}/stats',
      '/concerts/{id}/waitlist',
      '/concerts/{id}/waitlist/me',
    ]) {
      expect(doc.paths, path).toHaveProperty([path]);
    }
  });

  it('documents the queue WebSocket, with the close code of a socket its place replaced', async () => {
    const doc = await (await api('/openapi.json')).json<{ paths: Record<string, { get?: { description?: string } }> }>();
    expect(doc.paths['/queue/ws']?.get?.description).toMatch(/4008 "replaced"/);
  });

  it('serves a browsable UI at /docs', async () => {
    const response = await api('/docs');
    expect(response.status).toBe(200);
    expect(response.headers.get('Content-Type')).toMatch(/text\/html/);
    expect(await response.text()).toMatch(/openapi\.json/);
  });
});
