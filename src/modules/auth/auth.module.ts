import type { Core, ModuleParts } from '../../core.ts';
import { ApiKeysRepository } from './api-keys.repository.ts';
import { ApiKeysService } from './api-keys.service.ts';
import { authRoutes, type AuthRouteDeps } from './auth.routes.ts';
import { AuthService, type UserCredentials } from './auth.service.ts';
import { defineAuthTasks } from './auth.tasks.ts';
import { RefreshTokensRepository } from './refresh-tokens.repository.ts';
import { VerifiedPasswords } from './verified-passwords.ts';

export interface AuthModule extends ModuleParts {
  readonly auth: AuthService;
  readonly apiKeys: ApiKeysService;
}

export function createAuthModule(core: Core, deps: { users: UserCredentials; registerDevice?: AuthRouteDeps['registerDevice'] }): AuthModule {
  const { config, clock } = core;
  const apiKeys = new ApiKeysService(new ApiKeysRepository(core.db), clock);
  const auth = new AuthService(
    deps.users,
    new RefreshTokensRepository(core.db),
    core.throttles.login,
    clock,
    {
      jwtSecret: config.auth.jwtSecret!,
      accessTokenTtlSeconds: config.auth.accessTokenTtlSeconds,
      refreshTokenTtlSeconds: config.auth.refreshTokenTtlSeconds,
    },
    new VerifiedPasswords(clock),
  );
  return { auth, apiKeys, routes: [authRoutes({ auth, apiKeys, registerDevice: deps.registerDevice, refreshTokenTtlSeconds: config.auth.refreshTokenTtlSeconds })], tasks: defineAuthTasks(core.tasks, core.throttles) };
}
