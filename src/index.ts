import { createApp } from './app.ts';

export { ConcertRoom } from './durable-objects/concert-room/index.ts';

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
