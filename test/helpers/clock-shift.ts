// Runs the suite as if today were another day (`TEST_TODAY=2027-06-01 npx vitest run …`), to show
// that no test depends on the calendar. workerd reads the host clock past libfaketime, so the shift is
// made inside the isolate the tests and the rooms share (test/helpers/room-time.ts); PostgreSQL runs
// under libfaketime with the same offset (test/global-setup.ts), so `now()` in SQL agrees with
// `Date.now()` here. With no TEST_TODAY the offset is 0 and nothing is touched.
import { beforeAll, inject } from 'vitest';
import { advanceRoomClock } from './room-time.ts';

const offset = inject('clockOffsetMs');

if (offset) {
  const alarmsShifted = advanceRoomClock(offset);
  beforeAll(() => alarmsShifted);
}
