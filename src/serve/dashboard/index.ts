import type { ServerPlugin } from '../index.js';
import { createStoreDeps } from './deps-store.js';
import { LiveFeed } from './live-feed.js';
import { dashboardPlugin } from './plugin.js';

/**
 * The daemon's entry point for the dashboard (src/app.ts loads it when present): builds the
 * store-backed deps and mounts the plugin in its own encapsulated context. The dashboard's login
 * session is also accepted by the ops API's auth hook (/api/results, /metrics) so a logged-in
 * browser can open them.
 */
export const registerDashboard: ServerPlugin = async (app, ctx) => {
  // The live feed listens to the bus for as long as the server runs.
  const feed = new LiveFeed(ctx.bus);
  feed.start();
  app.addHook('onClose', async () => feed.stop());
  const deps = createStoreDeps(ctx, feed);
  await app.register(dashboardPlugin, {
    deps,
    uploadMaxBytes: Math.round(ctx.config.http.upload_max_mb * 1024 * 1024),
    liveStreamsPerIdentity: ctx.config.http.live_streams_per_identity,
    lis: ctx.lis,
    bearerFailures: ctx.auth.bearerFailures,
    userTokens: ctx.auth.userTokens,
    onAuth: (authenticate) => ctx.auth.authenticators.push(authenticate),
  });
};

export default registerDashboard;
