// Mirrors migrations/*.sql, which are the source of truth: this file only gives drizzle the shapes.
import { sql } from 'drizzle-orm';
import {
  bigint,
  boolean,
  check,
  date,
  index,
  integer,
  jsonb,
  pgTable,
  primaryKey,
  text,
  timestamp,
  unique,
  uniqueIndex,
  uuid,
} from 'drizzle-orm/pg-core';

const timestamptz = (name: string) => timestamp(name, { withTimezone: true, mode: 'date' });

export const concerts = pgTable(
  'concerts',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    title: text('title').notNull(),
    venue: text('venue').notNull(),
    date: date('date', { mode: 'string' }).notNull(),
    startsAt: timestamptz('starts_at').notNull(),
    salesOpenAt: timestamptz('sales_open_at').notNull(),
    seatCount: integer('seat_count').notNull(),
    queueConfig: jsonb('queue_config').$type<Record<string, unknown>>().notNull().default({}),
    refundFee: integer('refund_fee').notNull().default(0),
    refundCutoffHours: integer('refund_cutoff_hours').notNull().default(24),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [index('concerts_date_idx').on(t.date)],
);

export const seatStatuses = ['available', 'held', 'sold'] as const;
export type SeatStatus = (typeof seatStatuses)[number];

export const seats = pgTable(
  'seats',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    concertId: uuid('concert_id')
      .notNull()
      .references(() => concerts.id, { onDelete: 'cascade' }),
    seatNumber: integer('seat_number').notNull(),
    section: text('section').notNull().default('general'),
    price: integer('price').notNull(),
    status: text('status', { enum: seatStatuses }).notNull().default('available'),
  },
  (t) => [
    unique('seats_concert_seat_number_key').on(t.concertId, t.seatNumber),
    index('seats_concert_status_idx').on(t.concertId, t.status),
  ],
);

export const reservationStatuses = ['held', 'confirmed', 'expired', 'cancelled', 'refunded'] as const;
export type ReservationStatus = (typeof reservationStatuses)[number];

export const reservations = pgTable(
  'reservations',
  {
    id: uuid('id').primaryKey().defaultRandom(),
    concertId: uuid('concert_id')
      .notNull()
      .references(() => concerts.id, { onDelete: 'cascade' }),
    userId: text('user_id').notNull(),
    status: text('status', { enum: reservationStatuses }).notNull(),
    amount: integer('amount').notNull(),
    expiresAt: timestamptz('expires_at').notNull(),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
    confirmedAt: timestamptz('confirmed_at'),
    refundedAt: timestamptz('refunded_at'),
  },
  (t) => [
    index('reservations_user_created_idx').on(t.userId, t.createdAt),
    index('reservations_held_expires_idx').on(t.expiresAt).where(sql`status = 'held'`),
    index('reservations_concert_idx').on(t.concertId),
    // Reconciliation reads a concert's live reservations only (migrations/0004).
    index('reservations_concert_live_idx').on(t.concertId).where(sql`status IN ('held', 'confirmed')`),
  ],
);

export const reservationSeats = pgTable(
  'reservation_seats',
  {
    reservationId: uuid('reservation_id')
      .notNull()
      .references(() => reservations.id, { onDelete: 'cascade' }),
    seatId: bigint('seat_id', { mode: 'number' })
      .notNull()
      .references(() => seats.id, { onDelete: 'cascade' }),
    active: boolean('active').notNull().default(true),
  },
  (t) => [
    primaryKey({ columns: [t.reservationId, t.seatId] }),
    uniqueIndex('reservation_seats_one_live_per_seat').on(t.seatId).where(sql`active`),
  ],
);

// Bigint columns are read as numbers: the 1e9 balance cap keeps every value far below 2^53.
export const balances = pgTable(
  'balances',
  {
    userId: text('user_id').primaryKey(),
    amount: bigint('amount', { mode: 'number' }).notNull().default(0),
    fence: bigint('fence', { mode: 'number' }).notNull().default(0),
  },
  (t) => [check('balances_amount_check', sql`${t.amount} BETWEEN 0 AND 1000000000`)],
);

export const ledgerKinds = ['charge', 'use', 'payment', 'refund'] as const;
export type LedgerKind = (typeof ledgerKinds)[number];

export const balanceLedger = pgTable(
  'balance_ledger',
  {
    id: bigint('id', { mode: 'number' }).primaryKey().generatedAlwaysAsIdentity(),
    userId: text('user_id').notNull(),
    delta: bigint('delta', { mode: 'number' }).notNull(),
    balanceAfter: bigint('balance_after', { mode: 'number' }).notNull(),
    kind: text('kind', { enum: ledgerKinds }).notNull(),
    reference: text('reference'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [index('balance_ledger_user_id_idx').on(t.userId, t.id.desc())],
);

export const payments = pgTable('payments', {
  id: uuid('id').primaryKey().defaultRandom(),
  reservationId: uuid('reservation_id')
    .notNull()
    .unique()
    .references(() => reservations.id),
  userId: text('user_id').notNull(),
  amount: integer('amount').notNull(),
  createdAt: timestamptz('created_at').notNull().defaultNow(),
});

export const idempotencyKeys = pgTable(
  'idempotency_keys',
  {
    userId: text('user_id').notNull(),
    key: text('key').notNull(),
    requestHash: text('request_hash').notNull(),
    statusCode: integer('status_code'),
    body: jsonb('body'),
    createdAt: timestamptz('created_at').notNull().defaultNow(),
  },
  (t) => [primaryKey({ columns: [t.userId, t.key] }), index('idempotency_keys_created_idx').on(t.createdAt)],
);
