import { expect } from 'vitest';

/** Asserts an RFC 9457 problem response with the given status and code, and nothing internal. */
export async function expectProblem(response: Response, status: number, code: string): Promise<Record<string, unknown>> {
  expect(response.status).toBe(status);
  expect(response.headers.get('Content-Type')).toMatch(/^application\/problem\+json/);
  const body = await response.json<Record<string, unknown>>();
  expect(body).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String), requestId: expect.any(String) });
  expect(JSON.stringify(body)).not.toMatch(/stack|at .*\.ts:\d+|SQLSTATE|127\.0\.0\.1|ECONNREFUSED/i);
  return body;
}
