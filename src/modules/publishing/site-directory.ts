import type { Clock, Timer } from '../../clock.ts';
import type { Logger } from '../../logger.ts';
import type { SignalBus } from '../../coordination/signal-bus.port.ts';
import type { PublishingRepository } from './publishing.repository.ts';
import type { Site } from './publishing.types.ts';

export const SETTINGS_CHANNEL = 'stormvault_publish_settings';

/** Timers the directory polls with: the app's Clock (DESIGN.md: no global timers). */
export type PollTimers = Pick<Clock, 'setInterval' | 'clearInterval'>;

/**
 * This process's view of site settings (issue 11: a settings change reaches every process in < 1 s).
 * Sites are cached by name and dropped as soon as the global settings version moves. The version moves in
 * the transaction of every change; the writer then nudges every process through the SignalBus
 * (PostgreSQL NOTIFY or Redis pub/sub), and every process also polls the version every `pollMs` as the
 * backstop for a lost nudge (and the only path between SQLite processes, where polling one row of a local
 * file costs microseconds).
 */
export class SiteDirectory {
  private readonly byName = new Map<string, Site>();
  private version = -1;
  private timer: Timer | undefined;
  private polling = false;
  private unsubscribe: (() => void) | null = null;
  private readonly waiters = new Set<{ version: number; resolve: () => void }>();

  constructor(
    private readonly repo: PublishingRepository,
    private readonly bus: SignalBus,
    private readonly pollMs: number,
    private readonly logger: Pick<Logger, 'warn'>,
    private readonly timers: PollTimers,
  ) {}

  async start(): Promise<void> {
    this.observe(await this.repo.currentVersion());
    this.unsubscribe = await this.bus.subscribe(SETTINGS_CHANNEL, (payload) => {
      const v = Number(payload);
      if (Number.isSafeInteger(v)) this.observe(v);
    });
    const handle = this.timers.setInterval(() => {
      // One poll at a time: a slow database (or a test clock jumping hours ahead) must not pile them up.
      if (this.polling) return;
      this.polling = true;
      this.repo
        .currentVersion()
        .then((v) => this.observe(v))
        .catch((err: unknown) => this.logger.warn({ err }, 'publishing: could not poll the settings version'))
        .finally(() => {
          this.polling = false;
        });
    }, this.pollMs);
    this.timer = handle.unref();
  }

  async stop(): Promise<void> {
    this.timers.clearInterval(this.timer);
    this.timer = undefined;
    this.unsubscribe?.();
    this.unsubscribe = null;
  }

  /** The settings version this process has seen. */
  get knownVersion(): number {
    return this.version;
  }

  /** The site named `name` as of the newest version seen; undefined when there is none. */
  async find(name: string): Promise<Site | undefined> {
    const cached = this.byName.get(name);
    if (cached) return cached;
    const versionBefore = this.version;
    const site = await this.repo.findSiteByName(name);
    // A change seen while reading may have raced the read: keep only what is known to be current.
    if (site && this.version === versionBefore && site.settingsVersion <= this.version) this.byName.set(name, site);
    return site;
  }

  /** Called by the writer after its commit: applies here at once, then nudges every other process. */
  async changed(version: number): Promise<void> {
    this.observe(version);
    await this.bus.publish(SETTINGS_CHANNEL, String(version));
  }

  /** Resolves once this process has seen `version` (tests and the propagation bench). */
  waitFor(version: number): Promise<void> {
    if (this.version >= version) return Promise.resolve();
    return new Promise((resolve) => this.waiters.add({ version, resolve }));
  }

  private observe(version: number): void {
    if (version <= this.version) return;
    this.version = version;
    this.byName.clear();
    for (const w of this.waiters) {
      if (w.version <= version) {
        this.waiters.delete(w);
        w.resolve();
      }
    }
  }
}
