// The académie's OpenID Connect provider as the tests start it: node-oidc-provider (OpenID Certified),
// configured from the JSON file named by the first argument (written by tests/sign_in/academie_provider.py):
//   { port, issuer, audience, keys: [private JWK, ...] (the first signs), clients: [client metadata],
//     users: { sub: { FrEduRne: [...], FrEduFonctAdm, FrEduRneResp, groups: [...], ... } } }
// Users sign in through the development login form (any password); Passpro's client is first party, so its
// grant is given without a consent page. Access tokens asked for the API (resource indicator `audience`)
// are JWTs (RS256) carrying the user's directory claims. Key rotation: restart with another key first.
//
// For the hostile tests only: POST /__test/tamper {"mode": ...} rewrites the ID token of the NEXT token
// response (alg_none, foreign_key, wrong_audience, wrong_audience_with_azp, wrong_issuer, expired, wrong_nonce),
// as a network attacker or a broken provider would, so the relying party's own checks are what is tested.

import { readFileSync } from 'node:fs';

import * as jose from 'jose';
import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const { users, audience } = config;
const DIRECTORY_CLAIMS = ['FrEduRne', 'FrEduFonctAdm', 'FrEduRneResp', 'FrEduResDel', 'groups', 'name', 'email'];

function directoryClaims(sub) {
  const user = users[sub];
  if (!user) return undefined;
  return Object.fromEntries(Object.entries(user).filter(([claim]) => DIRECTORY_CLAIMS.includes(claim)));
}

const provider = new Provider(config.issuer, {
  clients: config.clients,
  jwks: { keys: config.keys },
  cookies: { keys: [config.cookie_key] },
  scopes: ['openid', 'profile'],
  claims: { openid: ['sub'], profile: DIRECTORY_CLAIMS },
  conformIdTokenClaims: false, // the directory claims in the ID token itself
  pkce: { required: () => true },
  ttl: { AccessToken: 3600, IdToken: 3600, AuthorizationCode: 60, Interaction: 600, Session: 3600, Grant: 3600 },
  findAccount(_ctx, sub) {
    if (!users[sub]) return undefined;
    return { accountId: sub, claims: async () => ({ sub, ...directoryClaims(sub) }) };
  },
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) {
      const found = await ctx.oidc.provider.Grant.find(grantId);
      if (found) return found;
    }
    // Passpro is the académie's own application: what it asks is granted without a consent page.
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope('openid profile');
    grant.addResourceScope(audience, 'api');
    await grant.save();
    return grant;
  },
  features: {
    devInteractions: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async (_ctx, _client, oneOf) => oneOf,
      useGrantedResource: async () => true,
      getResourceServerInfo: async (_ctx, resource) => {
        if (resource !== audience) throw new Provider.errors.InvalidTarget();
        return { scope: 'api', audience, accessTokenTTL: 3600, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
  extraTokenClaims: async (_ctx, token) => (token.kind === 'AccessToken' && token.accountId
    ? directoryClaims(token.accountId) : undefined),
});

// --- tampering, for the hostile tests ------------------------------------------------------------------
let tamper = null;
const signing = config.keys[0];
const foreign = await jose.generateKeyPair('RS256', { extractable: true });

async function tampered(idToken, mode) {
  const header = jose.decodeProtectedHeader(idToken);
  const claims = jose.decodeJwt(idToken);
  const now = Math.floor(Date.now() / 1000);
  const b64 = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  if (mode === 'alg_none') return `${b64({ alg: 'none', typ: 'JWT' })}.${b64(claims)}.`;
  const changed = {
    wrong_audience: { aud: 'another-application' },
    wrong_audience_with_azp: { aud: 'another-application', azp: claims.aud },  // azp alone must not do
    wrong_issuer: { iss: 'https://faux-fournisseur.example' },
    expired: { iat: now - 7200, exp: now - 3600 },
    wrong_nonce: { nonce: 'pas-le-bon-nonce' },
    foreign_key: {},
  }[mode];
  if (!changed) throw new Error(`unknown tamper mode ${mode}`);
  const key = mode === 'foreign_key' ? foreign.privateKey : await jose.importJWK(signing, 'RS256');
  return new jose.SignJWT({ ...claims, ...changed }).setProtectedHeader({ alg: 'RS256', kid: header.kid }).sign(key);
}

provider.use(async (ctx, next) => {
  if (ctx.path === '/__test/tamper' && ctx.method === 'POST') {
    const chunks = [];
    for await (const chunk of ctx.req) chunks.push(chunk);
    tamper = JSON.parse(Buffer.concat(chunks).toString() || '{}').mode || null;
    ctx.status = 204;
    return;
  }
  await next();
  if (ctx.path === '/token' && tamper && ctx.body && typeof ctx.body === 'object' && ctx.body.id_token) {
    const mode = tamper;
    tamper = null;
    ctx.body = { ...ctx.body, id_token: await tampered(ctx.body.id_token, mode) };
  }
});

provider.listen(config.port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${config.issuer}`);
});
