/** A reminder to send at a given time (the job's `runAt`). */
export interface Reminder {
  readonly user: string;
  readonly text: string;
}

/** The recurring digest; one job per cron tick. */
export interface Digest {
  readonly report: string;
}

/** A welcome email: however many times signup is retried, the user gets one. */
export interface Welcome {
  readonly user: string;
}

export const REMINDER_QUEUE = 'reminders';
export const DIGEST_QUEUE = 'digests';
export const WELCOME_QUEUE = 'welcome-emails';
