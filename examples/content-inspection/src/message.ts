/** A user message waiting for inspection. */
export interface Message {
  readonly id: string;
  readonly text: string;
}

/** Something the inspection API flagged in a message. */
export interface Finding {
  readonly messageId: string;
  readonly label: string;
}

export const MESSAGE_QUEUE = 'messages';
export const ALERT_QUEUE = 'alerts';
