/**
 * The authentication and authorization plug-in (`authPlugin`): an ES module of the user's
 * that can check a database or an HTTP service. It exports any of four functions, each
 * sync or async:
 *
 *   authenticate({ clientId, username, password, remoteAddress })
 *     -> boolean | { allow: boolean, reason?: string }
 *   authorizePublish({ clientId, username, topic, qos, retain }) -> boolean
 *   authorizeSubscribe({ clientId, username, filter, qos }) -> boolean | 0 | 1 | 2 (granted QoS)
 *   authenticateEnhanced({ clientId, username, method, data, remoteAddress, step, reauth, state })
 *     -> { continue: Buffer } | { allow: true, data?: Buffer, username?: string }
 *        | { allow: false, reason?: string, badMethod?: boolean }
 *
 * (authenticateEnhanced is MQTT 5 enhanced authentication: v5/enhanced-auth.ts runs its AUTH
 * exchanges.)
 *
 * Every call is bounded by authPluginTimeoutMs. A call that throws, answers something else,
 * or takes longer is a refusal (and a failure, counted and logged): a broken plug-in shuts
 * clients out rather than lets them in.
 */
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

export interface AuthenticateRequest {
  clientId: string;
  /** The CONNECT's user name; undefined when it carried none. */
  username: string | undefined;
  /** The CONNECT's password bytes; undefined when it carried none. */
  password: Buffer | undefined;
  remoteAddress: string | undefined;
}

export interface PublishRequest {
  clientId: string;
  /** The user name the client was let in as; null for an anonymous client. */
  username: string | null;
  topic: string;
  qos: number;
  retain: boolean;
}

export interface SubscribeRequest {
  clientId: string;
  username: string | null;
  filter: string;
  /** The QoS the client asked for. */
  qos: number;
}

/** One step of an MQTT 5 enhanced authentication (a CONNECT or AUTH carrying a method). */
export interface EnhancedAuthRequest {
  clientId: string;
  /** The CONNECT's user name; undefined when it carried none. */
  username: string | undefined;
  /** The Authentication Method (the same in every step of the connection). */
  method: string;
  /** The Authentication Data of the CONNECT or AUTH; undefined when it carried none. */
  data: Buffer | undefined;
  remoteAddress: string | undefined;
  /** 0 for the CONNECT (or the client's AUTH 0x19), then 1, 2, ... for each AUTH 0x18 answer. */
  step: number;
  /** True for a re-authentication (after CONNACK), false for the CONNECT's exchange. */
  reauth: boolean;
  /** One object per connection, the same in every call for it: the plug-in's to keep things in. */
  state: Record<string, unknown>;
}

type Answer<T> = T | Promise<T>;
type AuthenticateFn = (request: AuthenticateRequest) => Answer<unknown>;
type PublishFn = (request: PublishRequest) => Answer<unknown>;
type SubscribeFn = (request: SubscribeRequest) => Answer<unknown>;
type EnhancedFn = (request: EnhancedAuthRequest) => Answer<unknown>;

/** A plug-in that cannot be used: stops start-up with one line naming the key. */
export class AuthPluginError extends Error {
  override readonly name = 'AuthPluginError';
  readonly code = 'TERN_AUTH_PLUGIN';
}

/** What one call came to. `failed` names the error or the timeout when the call failed. */
export interface Verdict {
  allow: boolean;
  /** Why it was refused, in words for the log (the plug-in's reason, or the failure). */
  reason: string;
  failed: boolean;
}

/** A subscription's answer: the QoS granted, or 0x80 when refused. */
export interface SubscribeVerdict {
  granted: number;
  failed: boolean;
  reason: string;
}

/**
 * What one step of enhanced authentication came to: another round (AUTH 0x18 with `data`),
 * success (with final `data` and the user to let the client in as, when the plug-in named
 * one), or a refusal (`failed` when the call threw, timed out or answered something else).
 */
export type EnhancedVerdict =
  | { kind: 'continue'; data: Buffer }
  | { kind: 'allow'; data: Buffer | undefined; username: string | undefined }
  | { kind: 'deny'; reason: string; failed: boolean; badMethod: boolean };

const FUNCTIONS = ['authenticate', 'authorizePublish', 'authorizeSubscribe', 'authenticateEnhanced'] as const;
const SUBACK_FAILURE = 0x80;

export class AuthPlugin {
  readonly path: string;
  readonly authenticateFn: AuthenticateFn | null;
  readonly publishFn: PublishFn | null;
  readonly subscribeFn: SubscribeFn | null;
  readonly enhancedFn: EnhancedFn | null;
  /** authPluginTimeoutMs; a reload changes it. */
  timeoutMs: number;

  constructor(path: string, module: Record<string, unknown>, timeoutMs: number) {
    this.path = path;
    this.timeoutMs = timeoutMs;
    this.authenticateFn = (module.authenticate as AuthenticateFn | undefined) ?? null;
    this.publishFn = (module.authorizePublish as PublishFn | undefined) ?? null;
    this.subscribeFn = (module.authorizeSubscribe as SubscribeFn | undefined) ?? null;
    this.enhancedFn = (module.authenticateEnhanced as EnhancedFn | undefined) ?? null;
  }

  async authenticate(request: AuthenticateRequest): Promise<Verdict> {
    const call = await this.call(this.authenticateFn as AuthenticateFn, request);
    if (!call.ok) return { allow: false, reason: call.reason, failed: true };
    const answer = call.value;
    if (answer === true || answer === false) return { allow: answer, reason: '', failed: false };
    if (typeof answer === 'object' && answer !== null && typeof (answer as { allow?: unknown }).allow === 'boolean') {
      const { allow, reason } = answer as { allow: boolean; reason?: unknown };
      return { allow, reason: typeof reason === 'string' ? reason : '', failed: false };
    }
    return { allow: false, reason: `unexpected answer ${describe(answer)}`, failed: true };
  }

  async authorizePublish(request: PublishRequest): Promise<Verdict> {
    const call = await this.call(this.publishFn as PublishFn, request);
    if (!call.ok) return { allow: false, reason: call.reason, failed: true };
    if (typeof call.value === 'boolean') return { allow: call.value, reason: '', failed: false };
    return { allow: false, reason: `unexpected answer ${describe(call.value)}`, failed: true };
  }

  async authorizeSubscribe(request: SubscribeRequest): Promise<SubscribeVerdict> {
    const call = await this.call(this.subscribeFn as SubscribeFn, request);
    if (!call.ok) return { granted: SUBACK_FAILURE, reason: call.reason, failed: true };
    const answer = call.value;
    if (answer === true) return { granted: request.qos, reason: '', failed: false };
    if (answer === false || answer === SUBACK_FAILURE) return { granted: SUBACK_FAILURE, reason: '', failed: false };
    // A QoS lower than asked for is a grant at that QoS [MQTT-3.9.3-1]; never a higher one.
    if (answer === 0 || answer === 1 || answer === 2) {
      return { granted: Math.min(answer, request.qos), reason: '', failed: false };
    }
    return { granted: SUBACK_FAILURE, reason: `unexpected answer ${describe(answer)}`, failed: true };
  }

  /**
   * One step of enhanced authentication. Exactly one of `continue` (a Buffer) and `allow` (a
   * boolean) must be given; `data` (a Buffer) and `username` (a string) are optional with
   * allow: true, `reason` (a string) and `badMethod` (true: the method is not offered) with
   * allow: false. Anything else is a failure.
   */
  async authenticateEnhanced(request: EnhancedAuthRequest): Promise<EnhancedVerdict> {
    const call = await this.call(this.enhancedFn as EnhancedFn, request);
    if (!call.ok) return { kind: 'deny', reason: call.reason, failed: true, badMethod: false };
    const answer = call.value;
    const failure = (): EnhancedVerdict => ({
      kind: 'deny',
      reason: `unexpected answer ${describeAnswer(answer)}`,
      failed: true,
      badMethod: false,
    });
    if (typeof answer !== 'object' || answer === null) return failure();
    const a = answer as {
      continue?: unknown;
      allow?: unknown;
      data?: unknown;
      username?: unknown;
      reason?: unknown;
      badMethod?: unknown;
    };
    if (a.continue !== undefined) {
      if (a.allow !== undefined || !(a.continue instanceof Uint8Array)) return failure();
      return { kind: 'continue', data: asBuffer(a.continue) };
    }
    if (a.allow === true) {
      if (a.data !== undefined && !(a.data instanceof Uint8Array)) return failure();
      if (a.username !== undefined && typeof a.username !== 'string') return failure();
      const data = a.data === undefined ? undefined : asBuffer(a.data);
      return { kind: 'allow', data, username: a.username };
    }
    if (a.allow === false) {
      const reason = typeof a.reason === 'string' ? a.reason : '';
      return { kind: 'deny', reason, failed: false, badMethod: a.badMethod === true };
    }
    return failure();
  }

  /** Calls `fn`, bounded by the timeout; never rejects. */
  private call<R>(
    fn: (request: R) => unknown,
    request: R,
  ): Promise<{ ok: true; value: unknown } | { ok: false; reason: string }> {
    const timeoutMs = this.timeoutMs;
    return new Promise((settle) => {
      const timer = setTimeout(() => settle({ ok: false, reason: `timed out after ${timeoutMs} ms` }), timeoutMs);
      // A hung call must not keep a stopping process alive.
      timer.unref();
      const done = (outcome: { ok: true; value: unknown } | { ok: false; reason: string }): void => {
        clearTimeout(timer);
        settle(outcome);
      };
      try {
        Promise.resolve(fn(request)).then(
          (value) => done({ ok: true, value }),
          (err: unknown) => done({ ok: false, reason: `threw: ${errorText(err)}` }),
        );
      } catch (err) {
        done({ ok: false, reason: `threw: ${errorText(err)}` });
      }
    });
  }
}

/**
 * Imports the module at `path` (relative to the working directory) and checks that it
 * exports at least one of the four functions, and nothing else under their names. A
 * CommonJS module's functions arrive on its default export, and are found there too.
 */
export async function loadAuthPlugin(path: string, timeoutMs: number): Promise<AuthPlugin> {
  let module: Record<string, unknown>;
  try {
    module = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
  } catch (err) {
    const e = err as { code?: string };
    throw new AuthPluginError(`authPlugin ${path}: cannot load it (${e.code ?? firstLine(errorText(err))})`);
  }
  const fallback = module.default;
  const exports: Record<string, unknown> = {};
  for (const name of FUNCTIONS) {
    const own = module[name];
    const value =
      own !== undefined
        ? own
        : typeof fallback === 'object' && fallback !== null
          ? (fallback as Record<string, unknown>)[name]
          : undefined;
    if (value === undefined) continue;
    if (typeof value !== 'function') throw new AuthPluginError(`authPlugin ${path}: ${name} is not a function`);
    exports[name] = value;
  }
  if (Object.keys(exports).length === 0) {
    throw new AuthPluginError(`authPlugin ${path}: exports none of ${FUNCTIONS.join(', ')}`);
  }
  return new AuthPlugin(path, exports, timeoutMs);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function firstLine(text: string): string {
  const end = text.indexOf('\n');
  return end < 0 ? text : text.slice(0, end);
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** An answer object in a few words for the log: its keys, never its bytes. */
function describeAnswer(value: unknown): string {
  if (typeof value !== 'object' || value === null) return describe(value);
  const keys = Object.keys(value);
  const text = keys.length === 0 ? '{}' : `{ ${keys.join(', ')} }`;
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}

function describe(value: unknown): string {
  const text = typeof value === 'string' ? JSON.stringify(value) : String(value);
  return text.length > 40 ? `${text.slice(0, 40)}...` : text;
}
