// HMAC-SHA256 for webhook signatures, on the runtime's Web Crypto (`crypto.subtle`,
// native code in StarlingMonkey: a pure-JS SHA-256 would run in the interpreter and
// cost far more fuel). Comparisons of digests are constant-time.

const encoder = new TextEncoder();

export type Bytes = string | Uint8Array;

function bytes(data: Bytes): Uint8Array {
  return typeof data === 'string' ? encoder.encode(data) : data;
}

/** HMAC-SHA256 of the concatenation of `parts` with `secret`. */
export async function hmacSha256(secret: Bytes, ...parts: Bytes[]): Promise<Uint8Array> {
  const key = await crypto.subtle.importKey('raw', bytes(secret) as BufferSource, { name: 'HMAC', hash: 'SHA-256' }, false, ['sign']);
  const chunks = parts.map(bytes);
  const message = new Uint8Array(chunks.reduce((n, c) => n + c.length, 0));
  let at = 0;
  for (const chunk of chunks) {
    message.set(chunk, at);
    at += chunk.length;
  }
  return new Uint8Array(await crypto.subtle.sign('HMAC', key, message));
}

export function toHex(data: Uint8Array): string {
  let out = '';
  for (const b of data) {
    out += b.toString(16).padStart(2, '0');
  }
  return out;
}

/** Bytes of a hex string; `undefined` when it is not hex. */
export function fromHex(text: string): Uint8Array | undefined {
  if (text.length % 2 !== 0 || !/^[0-9a-fA-F]*$/.test(text)) {
    return undefined;
  }
  const out = new Uint8Array(text.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(text.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

export function toBase64(data: Uint8Array): string {
  let binary = '';
  for (const b of data) {
    binary += String.fromCharCode(b);
  }
  return btoa(binary);
}

/** Bytes of a base64 string; `undefined` when it is not base64. */
export function fromBase64(text: string): Uint8Array | undefined {
  try {
    const binary = atob(text);
    const out = new Uint8Array(binary.length);
    for (let i = 0; i < binary.length; i++) {
      out[i] = binary.charCodeAt(i);
    }
    return out;
  } catch {
    return undefined;
  }
}

export async function hmacSha256Hex(secret: Bytes, ...parts: Bytes[]): Promise<string> {
  return toHex(await hmacSha256(secret, ...parts));
}

export async function hmacSha256Base64(secret: Bytes, ...parts: Bytes[]): Promise<string> {
  return toBase64(await hmacSha256(secret, ...parts));
}

/** Whether `a` and `b` are equal, in time that depends only on their lengths. */
export function constantTimeEqual(a: Bytes, b: Bytes): boolean {
  const x = bytes(a);
  const y = bytes(b);
  let diff = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) {
    diff |= (x[i % (x.length || 1)] ?? 0) ^ (y[i % (y.length || 1)] ?? 0);
  }
  return diff === 0;
}

/** GitHub's `x-hub-signature-256` header value for `body`: `sha256=<hex>`. */
export async function signGithub(secret: Bytes, body: Bytes): Promise<string> {
  return `sha256=${await hmacSha256Hex(secret, body)}`;
}

/** Whether `header` (GitHub's `x-hub-signature-256`) signs `body` with `secret`. */
export async function verifyGithubSignature(secret: Bytes, body: Bytes, header: string): Promise<boolean> {
  const hex = header.trim();
  if (!hex.startsWith('sha256=')) {
    return false;
  }
  const expected = fromHex(hex.slice('sha256='.length));
  return expected !== undefined && constantTimeEqual(await hmacSha256(secret, body), expected);
}

/**
 * Whether `signature` (Zendesk's `x-zendesk-webhook-signature`) is the base64
 * HMAC-SHA256 of `timestamp` (`x-zendesk-webhook-signature-timestamp`) followed by
 * `body`, with the webhook's signing secret.
 */
export async function verifyZendeskSignature(secret: Bytes, timestamp: string, body: Bytes, signature: string): Promise<boolean> {
  const expected = fromBase64(signature.trim());
  return expected !== undefined && constantTimeEqual(await hmacSha256(secret, timestamp, body), expected);
}
