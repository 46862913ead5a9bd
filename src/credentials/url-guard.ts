/**
 * No credential ever travels in a URL, where proxies, browsers and access
 * logs would keep it: a request or upgrade whose query has a key that looks
 * like one is refused before anything reads it.
 */
import { CitadelError } from '../errors/catalogue.ts';

/** Query keys that look like a credential: refused, so no token ever travels in a URL. */
export function carriesCredential(url: URL): boolean {
  for (const [key, value] of url.searchParams) {
    if (/token|secret|auth|key/i.test(key)) return true;
    if (/(?:^|[^a-z])(?:cat|cad|ces)_[0-9a-f]{8}-/i.test(value)) return true;
  }
  return false;
}

export function credentialInUrl(): CitadelError {
  return new CitadelError('invalid_request', {
    message: 'credentials are never accepted in a URL; use the Authorization header',
  });
}
