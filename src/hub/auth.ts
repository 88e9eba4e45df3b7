// Connection tokens: HS256 JWTs issued by the host site (jose does the JOSE work).
// Claims: sub (user id), name, info, roles, channels, exp.
import { errors as joseErrors, jwtVerify, SignJWT } from 'jose';
import { z } from 'zod';
import { KoboldError } from '../errors.js';
import type { Principal } from './types.js';

export const ANONYMOUS: Principal = Object.freeze({ userId: '', roles: [], channels: [] });

export interface TokenOptions {
  /** The HMAC secret shared with the site that issues tokens (at least 32 bytes). */
  secret: string;
  /** Reject tokens without `exp` (default true: a leaked token must not work forever). */
  requireExpiry?: boolean;
  issuer?: string;
  audience?: string;
}

const claimsSchema = z.object({
  sub: z.string().min(1, 'sub (the user id) is empty').max(255),
  name: z.string().max(255).optional(),
  info: z.record(z.string(), z.unknown()).optional(),
  roles: z.array(z.string()).max(100).optional(),
  channels: z.array(z.string()).max(1000).optional(),
  exp: z.number().optional(),
});

export type HubTokenClaims = Omit<z.input<typeof claimsSchema>, 'exp'>;

export type TokenVerifier = (token: string) => Promise<Principal>;

function secretKey(secret: string): Uint8Array {
  const key = new TextEncoder().encode(secret);
  if (key.length < 32) throw new KoboldError('KOBOLD_ERR_HUB_OPTIONS', { option: 'auth.secret', reason: 'must be at least 32 bytes' });
  return key;
}

/** Bounds of the verified-token cache: a longer token is verified every time. */
const MAX_KEPT_TOKEN_LENGTH = 4096;
const MAX_KEPT_TOKENS = 1000;

/**
 * Checks tokens; every failure is KOBOLD_ERR_HUB_TOKEN_INVALID or _EXPIRED with the reason.
 * A token that passed is not checked again until it expires (polls send the same token on
 * every request): at most MAX_KEPT_TOKENS, by their exact text, the oldest going first.
 */
export function createTokenVerifier(options: TokenOptions): TokenVerifier {
  const verify = tokenChecker(options);
  const verified = new Map<string, Principal>();
  return async (token) => {
    const known = verified.get(token);
    if (known !== undefined) {
      if (known.expiresAt === undefined || Date.now() < known.expiresAt) return known;
      verified.delete(token);
    }
    const principal = await verify(token);
    if (token.length <= MAX_KEPT_TOKEN_LENGTH) {
      if (verified.size >= MAX_KEPT_TOKENS) verified.delete(verified.keys().next().value as string);
      verified.set(token, principal);
    }
    return principal;
  };
}

function tokenChecker(options: TokenOptions): TokenVerifier {
  const key = secretKey(options.secret);
  const requireExpiry = options.requireExpiry ?? true;
  return async (token) => {
    let payload;
    try {
      ({ payload } = await jwtVerify(token, key, {
        algorithms: ['HS256'],
        issuer: options.issuer,
        audience: options.audience,
        requiredClaims: requireExpiry ? ['exp'] : [],
      }));
    } catch (error) {
      throw tokenError(error);
    }
    const claims = claimsSchema.safeParse(payload);
    if (!claims.success) {
      const issue = claims.error.issues[0];
      throw new KoboldError('KOBOLD_ERR_HUB_TOKEN_INVALID', { reason: `claim ${issue.path.join('.')}: ${issue.message}` });
    }
    const { sub, name, info, roles, channels, exp } = claims.data;
    const publicInfo = name === undefined ? info : { ...info, name };
    return {
      userId: sub,
      ...(publicInfo === undefined ? {} : { info: publicInfo }),
      roles: roles ?? [],
      channels: channels ?? [],
      ...(exp === undefined ? {} : { expiresAt: exp * 1000 }),
    };
  };
}

function tokenError(error: unknown): KoboldError {
  if (error instanceof joseErrors.JWTExpired) return new KoboldError('KOBOLD_ERR_HUB_TOKEN_EXPIRED');
  if (error instanceof joseErrors.JOSEAlgNotAllowed) {
    return new KoboldError('KOBOLD_ERR_HUB_TOKEN_INVALID', { reason: 'algorithm not allowed (only HS256 is accepted; unsigned tokens never are)' });
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new KoboldError('KOBOLD_ERR_HUB_TOKEN_INVALID', { reason: 'signature does not match (wrong key or altered token)' });
  }
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    return new KoboldError('KOBOLD_ERR_HUB_TOKEN_INVALID', { reason: `claim ${error.claim}: ${error.reason}` });
  }
  if (error instanceof joseErrors.JOSEError) return new KoboldError('KOBOLD_ERR_HUB_TOKEN_INVALID', { reason: error.message });
  return new KoboldError('KOBOLD_ERR_HUB_TOKEN_INVALID', { reason: 'not a JWT' });
}

/** Issues a token (for Node hosts and tests; other languages use any JWT library with HS256). */
export async function signHubToken(secret: string, claims: HubTokenClaims, expiresInSeconds: number): Promise<string> {
  const { sub, ...rest } = claims;
  return new SignJWT(rest)
    .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
    .setSubject(sub)
    .setIssuedAt()
    .setExpirationTime(Math.floor(Date.now() / 1000) + expiresInSeconds)
    .sign(secretKey(secret));
}
