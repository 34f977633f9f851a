/**
 * The caller of a request or a CLI command, as resolved by authentication. It lives outside the feature
 * modules so the HTTP core can carry it without importing them (issue 8: http/ never imports modules/).
 */
export interface Principal {
  userId: string;
  username: string;
  isAdmin: boolean;
  /** 'password': HTTP Basic with username + password (WebDAV, issue 13). */
  via: 'api_key' | 'jwt' | 'password';
}
