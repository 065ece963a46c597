/**
 * An MQTT 5 PUBLISH's (or will's) properties onto the broker's Message: what is passed on
 * unchanged kept as wire bytes, the message expiry interval kept as a number to count down.
 */
import { encodePropertiesBody, type Properties } from '@tern/protocol';
import type { Message } from '@tern/session';

/**
 * Keeps the properties the receiver gets as sent (payload format indicator, content type,
 * response topic, correlation data, user properties in order [MQTT-3.3.2-17] [MQTT-3.3.2-18])
 * and the expiry interval; the topic alias and subscription identifiers are the sender's
 * alone and are dropped (MQTT 5 section 3.3.2.3.4).
 */
export function applyPublishProperties(message: Message, p: Properties): void {
  const expiry = p.messageExpiryInterval;
  if (expiry !== undefined && expiry > 0) {
    message.expiryInterval = expiry;
    if (message.time === 0) message.time = Date.now();
  }
  if (
    p.payloadFormatIndicator === undefined &&
    p.contentType === undefined &&
    p.responseTopic === undefined &&
    p.correlationData === undefined &&
    p.userProperties === undefined
  ) {
    return;
  }
  message.properties = encodePropertiesBody({
    payloadFormatIndicator: p.payloadFormatIndicator,
    contentType: p.contentType,
    responseTopic: p.responseTopic,
    correlationData: p.correlationData,
    userProperties: p.userProperties,
  });
}
