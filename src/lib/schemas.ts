// zod schemas shared by validation, the OpenAPI document and tests.
import { z } from '@hono/zod-openapi';
import { QUEUE_CONFIG_LIMITS } from '../durable-objects/concert-room/model.ts';
import { DEFAULT_SURGE_JOINS_PER_SECOND, MAX_ENTRY_POW_COST } from './entry-proof.ts';

export const UuidSchema = z.uuid().openapi({ example: '6f1c2a52-8d0e-4c4e-9a55-0e2f4c7b9a10' });

/** A calendar date, validated as a real one (2026-02-30 fails). */
export const DateSchema = z.iso.date().openapi({ example: '2026-12-24' });

export const DateTimeSchema = z.iso.datetime({ offset: true }).openapi({ example: '2026-12-24T20:00:00Z' });

export const ConcertIdParams = z.object({ id: UuidSchema.openapi({ param: { name: 'id', in: 'path' } }) });

const positiveInt = (max: number) => z.number().int().min(1).max(max);

/** What a join must bring (issue 20, docs/entry.md): `proofOfWork: null` asks for nothing. */
export const EntryConfigSchema = z
  .strictObject({
    proofOfWork: z
      .strictObject({
        cost: positiveInt(MAX_ENTRY_POW_COST).openapi({
          description: 'Mean attempts a fan\'s solver makes (each PBKDF2-SHA-256 of 1,000 rounds; 500 ≈ 0.2 s of one native core); also the least a join accepts',
        }),
        surgeJoinsPerSecond: positiveInt(1_000_000)
          .default(DEFAULT_SURGE_JOINS_PER_SECOND)
          .openapi({
            description: `From this many joins a second, new challenges cost 2× (4× from twice the rate, 8× from four times, never more). @default ${DEFAULT_SURGE_JOINS_PER_SECOND}`,
          }),
      })
      .nullable(),
  })
  .openapi('EntryConfig');

/** Admin-settable queue settings; every field optional on PATCH. */
export const QueueConfigPatchSchema = z
  .strictObject({
    admitPerWindow: positiveInt(QUEUE_CONFIG_LIMITS.admitPerWindow),
    windowSeconds: positiveInt(QUEUE_CONFIG_LIMITS.windowSeconds),
    maxActive: positiveInt(QUEUE_CONFIG_LIMITS.maxActive).nullable(),
    sessionSeconds: positiveInt(QUEUE_CONFIG_LIMITS.sessionSeconds),
    holdSeconds: positiveInt(QUEUE_CONFIG_LIMITS.holdSeconds),
    paused: z.boolean(),
    lobbyShards: positiveInt(QUEUE_CONFIG_LIMITS.lobbyShards).openapi({
      description:
        'Lobby objects that gather joins into batches for the room (README: Lobby shards), for on-sales with more joins a second than one room takes. 1: every join goes to the room. @default 1',
    }),
    openingOrder: z.enum(['shuffle', 'fifo']).openapi({
      description: "Pre-queue order: fans who joined before sales opened are drawn at random at opening ('shuffle', auditable through GET /concerts/{id}/opening) or kept in arrival order ('fifo'). Fixed once sales open. @default 'shuffle'",
    }),
    waitlistOfferSeconds: positiveInt(QUEUE_CONFIG_LIMITS.waitlistOfferSeconds),
    entry: EntryConfigSchema.openapi({ description: 'A proof of work asked on joining (null: none). @default {proofOfWork: null}' }),
  })
  .partial()
  .openapi('QueueConfigPatch');

export const QueueConfigSchema = z
  .object({
    admitPerWindow: z.number().int(),
    windowSeconds: z.number().int(),
    maxActive: z.number().int().nullable(),
    sessionSeconds: z.number().int(),
    holdSeconds: z.number().int(),
    paused: z.boolean(),
    openingOrder: z.enum(['shuffle', 'fifo']),
    lobbyShards: z.number().int(),
    waitlistOfferSeconds: z.number().int(),
    entry: z.object({
      proofOfWork: z.object({ cost: z.number().int(), surgeJoinsPerSecond: z.number().int() }).nullable(),
    }),
  })
  .openapi('QueueConfig');
