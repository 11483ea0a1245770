import { createApp } from './app.ts';

export { ConcertRoom } from './durable-objects/concert-room/index.ts';
export { ConcertLobby } from './durable-objects/concert-lobby.ts';

const app = createApp();

export default {
  fetch: app.fetch,
} satisfies ExportedHandler<Env>;
