/** A share link as services see it (never the token itself: only its hash is stored). */
export interface ShareLink {
  id: string;
  ownerId: string;
  fileId: number;
  /** Current path of the shared entry (follows moves: links point at the index row, not the path). */
  path: string;
  isDirectory: boolean;
  hasPassword: boolean;
  expiresAt: string | null;
  maxDownloads: number | null;
  downloadCount: number;
  createdAt: string;
  revokedAt: string | null;
}

/** The API shape of a link (GET /api/v1/shares and POST /api/v1/shares, which adds token and url). */
export interface ShareLinkView {
  id: string;
  path: string;
  is_directory: boolean;
  has_password: boolean;
  expires_at: string | null;
  max_downloads: number | null;
  download_count: number;
  created_at: string;
  /** 'active', or why the link no longer works. */
  status: 'active' | 'expired' | 'exhausted' | 'revoked';
}

export function statusOf(link: ShareLink, now: Date): ShareLinkView['status'] {
  if (link.revokedAt !== null) return 'revoked';
  if (link.expiresAt !== null && link.expiresAt <= now.toISOString()) return 'expired';
  if (link.maxDownloads !== null && link.downloadCount >= link.maxDownloads) return 'exhausted';
  return 'active';
}

export function toView(link: ShareLink, now: Date): ShareLinkView {
  return {
    id: link.id,
    path: link.path,
    is_directory: link.isDirectory,
    has_password: link.hasPassword,
    expires_at: link.expiresAt,
    max_downloads: link.maxDownloads,
    download_count: link.downloadCount,
    created_at: link.createdAt,
    status: statusOf(link, now),
  };
}
