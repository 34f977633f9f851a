/**
 * Task, queue and schedule names (the worker CLI checks --queue against it too). Its own file so the CLI
 * can check --queue without loading the framework and cron-parser (issue 12, CLI start-up).
 */
export const NAME_RE = /^[a-z0-9][a-z0-9._-]{0,199}$/;
