import { describe, expect, it } from 'vitest';
import { seedWith } from '../../scripts/seed.ts';
import { UuidSchema } from '../../src/lib/schemas.ts';
import { api } from '../helpers/api.ts';
import { directQuery, openDirectClient } from '../helpers/postgres.ts';

describe('the dev seed (scripts/seed.ts)', () => {
  it('gives every seeded concert an id the API accepts, so each one answers 200 when `npm run dev` seeded it', async () => {
    const client = await openDirectClient();
    try {
      await seedWith(client.query, { concerts: 30, seatsPerConcert: 2 });
    } finally {
      await client.close();
    }
    const rows = await directQuery<{ id: string }>(
      `SELECT id FROM concerts WHERE venue = 'Frontrow Hall' AND title LIKE 'Frontrow Live #%' AND date BETWEEN current_date AND current_date + 29`,
    );
    expect(rows).toHaveLength(30);
    for (const { id } of rows) {
      expect(UuidSchema.safeParse(id).success, id).toBe(true);
      const response = await api(`/concerts/${id}/seats`);
      expect(response.status, id).toBe(200);
      await response.arrayBuffer();
    }
  });
});
