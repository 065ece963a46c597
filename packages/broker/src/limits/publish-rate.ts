/**
 * maxPublishRate: a token bucket per client, holding one second's worth of PUBLISH packets.
 * A client over the rate is slowed, never dropped: every packet already read is handled, and
 * its socket is not read again until the bucket has paid back the debt (TCP then slows the
 * sender). Only that client waits; the worker goes on serving the others.
 */
import type { Client } from '../client.js';
import { limitHit } from './client-limits.js';

/** Spends one token for a PUBLISH from `client` at `rate` packets per second. */
export function spendPublishToken(client: Client, rate: number): void {
  const now = Date.now();
  let tokens = client.rateTokens + ((now - client.rateStamp) * rate) / 1000;
  // A burst of up to one second's worth is let through at once.
  if (tokens > rate) tokens = rate;
  tokens -= 1;
  client.rateTokens = tokens;
  client.rateStamp = now;
  // Under the rate, or already paused (packets of the chunk in hand add to the debt).
  if (tokens >= 0 || client.rateTimer !== null) return;
  if (limitHit(client, 'max-publish-rate')) {
    client.log.info({ limit: 'max-publish-rate', rate }, 'publisher over maxPublishRate: reading its socket slower');
  }
  client.pauseReading();
  client.rateTimer = setTimeout(resumeAfterDebt, Math.ceil((-tokens * 1000) / rate), client);
  client.rateTimer.unref();
}

/** The debt is paid back: read again (the next PUBLISH pauses again if more debt was made). */
function resumeAfterDebt(client: Client): void {
  client.rateTimer = null;
  client.resumeReading();
}
